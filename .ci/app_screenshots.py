"""Screenshots of `mriseg app` for the docs, taken in Debian's Chromium: the app on runs/demo, a phantom case opened,
segmented, corrected and measured. Writes nbs/tutorials/images/app_*.png.

Usage: `.venv/bin/python .ci/app_screenshots.py [--model runs/demo]` (Chromium: `apt-get install -y chromium`)."""
import argparse, socket, tempfile, threading, time
from pathlib import Path
import uvicorn
from playwright.sync_api import sync_playwright
from mriseg.app import create_app

ROOT = Path(__file__).parents[1]
ARGS = ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run']

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default='runs/demo'); p.add_argument('--seed', type=int, default=11)
    p.add_argument('--out', default=str(ROOT/'nbs'/'tutorials'/'images'))
    a = p.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as work:
        srv = uvicorn.Server(uvicorn.Config(create_app(a.model, work=work), host='127.0.0.1', port=port, log_level='warning'))
        threading.Thread(target=srv.run, daemon=True).start()
        while not srv.started: time.sleep(.05)
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path='/usr/bin/chromium', args=ARGS)
            page = b.new_page(viewport={'width': 1500, 'height': 1050})
            page.on('pageerror', lambda e: print('page error:', e))
            page.goto(f'http://127.0.0.1:{port}/')
            page.wait_for_selector('body[data-ready=yes]')
            page.fill('#seed', str(a.seed)); page.click('#phantom')
            page.wait_for_function("window.mrisegViews.flair.volumes.length === 1", timeout=180_000)
            page.check('#show-expert'); page.wait_for_timeout(1000)
            page.screenshot(path=str(out/'app_opened.png'))
            page.click('#segment')
            page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')", timeout=300_000)
            try: page.wait_for_selector('#region-table', timeout=120_000)
            except Exception:
                page.screenshot(path='/tmp/app_fail.png')
                raise SystemExit(f"no measurements: {page.inner_text('#message')!r} {page.inner_text('#status')!r}")
            page.wait_for_timeout(4000)
            page.screenshot(path=str(out/'app_segmented.png'))
            page.locator('#results').screenshot(path=str(out/'app_measurements.png'), timeout=120_000)
            b.close()
        srv.should_exit = True
    print(f"screenshots in {out}: " + ', '.join(sorted(p.name for p in out.glob('app_*.png'))))

if __name__ == '__main__': main()
