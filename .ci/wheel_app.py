"""Checks the wheel's app: `mriseg app` (installed with the [app] extra) serves the page and the bundled NiiVue."""
import json, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
mriseg = str(Path(sys.executable).parent/'mriseg')
with tempfile.TemporaryDirectory() as work:
    p = subprocess.Popen([mriseg, 'app', '--port', str(port), '--work', work], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        base, got = f'http://127.0.0.1:{port}', {}
        for _ in range(300):
            try: health = json.loads(urllib.request.urlopen(f'{base}/api/health', timeout=2).read()); break
            except OSError: time.sleep(.2)
        else: sys.exit(f"wheel: mriseg app did not answer on port {port}")
        for path in ('/', '/static/app.js', '/static/niivue.js', '/static/NIIVUE.txt'):
            got[path] = urllib.request.urlopen(base + path, timeout=10).read()
        assert health['viewer'] is True, health
        assert b'static/app.js' in got['/'] and len(got['/static/niivue.js']) > 1_000_000, {k: len(v) for k, v in got.items()}
    finally:
        p.terminate(); out = p.communicate(timeout=20)[0]
    assert f'http://127.0.0.1:{port}/' in out, out
print(f"wheel: mriseg app served the page and NiiVue ({len(got['/static/niivue.js']) / 2**20:.1f} MB) on 127.0.0.1")
