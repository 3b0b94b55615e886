"""`mriseg app` in a real browser: Debian's Chromium, driven by Playwright, against the server on 127.0.0.1.

The test opens a case by uploading its files in the page, segments it, sees the overlay, draws a correction and saves
it, downloads the report, and counts every request that would leave 127.0.0.1 (there must be none). Screenshots are
saved in the test's output folder. `.ci/run` installs Chromium (apt) and sets MRISEG_REQUIRE_BROWSER=1, so there a
missing browser fails the test instead of skipping it."""
import json, os, shutil, socket, threading, time
from pathlib import Path
import numpy as np
import pytest

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run']

def _need_browser():
    from mriseg.app import STATIC
    missing = [what for what, ok in [('Chromium at /usr/bin/chromium', Path(CHROMIUM).exists()),
                                     ('NiiVue in mriseg/static (make niivue)', (STATIC/'niivue.js').exists())] if not ok]
    try: import playwright.sync_api  # noqa: F401
    except ImportError: missing.append('playwright (pip)')
    if missing:
        if os.environ.get('MRISEG_REQUIRE_BROWSER'): pytest.fail(f"the browser test needs {', '.join(missing)}")
        pytest.skip(f"needs {', '.join(missing)}")

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _model(folder):
    "A random-weight model the app can load."
    import torch
    from mriseg.model import create_model, save_model
    from mriseg.preprocess import PrepConfig
    from mriseg.io import MODALITIES, BRATS
    torch.manual_seed(0)
    save_model(create_model('resnet18', n_in=4, img_size=(64, 64)), folder,
               dict(preprocessing=PrepConfig().to_dict(), context=1, slice_size=[64, 64], regions=['WT', 'TC', 'ET'],
                    modalities=list(MODALITIES), scheme=BRATS.to_dict()))
    return folder

class _Serving:
    "`app` served on 127.0.0.1 on a thread: its address is `url`."
    def __init__(self, app):
        import uvicorn
        port = _free_port()
        self.srv = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning'))
        self.t = threading.Thread(target=self.srv.run, daemon=True); self.t.start()
        for _ in range(200):
            if self.srv.started: break
            time.sleep(.05)
        self.url = f'http://127.0.0.1:{port}/'
    def stop(self): self.srv.should_exit = True; self.t.join(10)

def _page(p, url, outside, errors):
    "Chromium at `url` once the page is ready; requests beyond 127.0.0.1 blocked and listed in `outside`, errors in `errors`."
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_page(viewport={'width': 1500, 'height': 1000}, accept_downloads=True)
    def route(r):
        host = r.request.url.split('/')[2] if '://' in r.request.url else ''
        if r.request.url.startswith(('data:', 'blob:')) or host.split(':')[0] == '127.0.0.1': r.continue_()
        else: outside.append(r.request.url); r.abort()
    page.route('**/*', route)
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector('body[data-ready=yes]', timeout=60_000)
    return browser, page

@pytest.fixture
def server(tmp_path):
    _need_browser()
    from mriseg.app import create_app
    from mriseg.phantom import make_phantom_case
    from mriseg.datasets import write_case
    img, lab, aff = make_phantom_case(7, (96, 96, 62))
    ref = write_case(tmp_path/'upload', 'BraTS2021_00007', img, lab, aff)
    app = create_app(_model(tmp_path/'model'), work=tmp_path/'work')
    s = _Serving(app)
    yield s.url, ref, app
    s.stop()

def test_open_segment_correct_report_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright
    url, ref, app = server
    shots = tmp_path/'screenshots'; shots.mkdir()
    outside, errors = [], []
    with sync_playwright() as p:
        browser, page = _page(p, url, outside, errors)
        assert 'For research use, not for diagnosis' in page.inner_text('header')
        # open: the four sequences and the expert mask, uploaded through the form
        files = {'t1': 0, 't1ce': 1, 't2': 2, 'flair': 3}
        for name, i in files.items(): page.set_input_files(f'input[name={name}]', str(ref.images[i][0]))
        page.set_input_files('input[name=seg]', str(ref.label))
        page.click('#upload')
        page.wait_for_function("document.querySelector('#case-name').textContent.startsWith('')"
                               " && window.mrisegViews && window.mrisegViews.main.volumes.length === 1", timeout=60_000)
        page.wait_for_function("window.mrisegViews.t2.volumes.length === 1", timeout=60_000)
        page.screenshot(path=str(shots/'1-opened.png'))
        # segment: the overlay comes, the status says done
        page.click('#segment')
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')", timeout=300_000)
        page.wait_for_function("window.mrisegViews.main.volumes.length === 2 && "
                               "document.querySelector('#region-table') !== null", timeout=60_000)
        assert page.evaluate("window.mrisegViews.flair.volumes.length") == 2
        page.screenshot(path=str(shots/'2-segmented.png'))
        # the crosshairs are one: a click in the FLAIR view moves the main view's and the others'
        pos = "window.mrisegViews.%s.scene.crosshairPos.map(v => Math.round(v * 1000))"
        before_pos = page.evaluate(pos % 'main')
        fl = page.locator('#gl-flair').bounding_box()
        page.mouse.click(fl['x'] + fl['width'] * .42, fl['y'] + fl['height'] * .35)
        page.wait_for_function(f"JSON.stringify({pos % 'main'}) !== '{json.dumps(before_pos, separators=(',', ':'))}'",
                               timeout=10_000)
        assert page.evaluate(pos % 'main') == page.evaluate(pos % 't1') == page.evaluate(pos % 'flair')
        cid = app.state.store.all()[-1]['id']
        before = json.loads(page.evaluate(f"fetch('api/cases/{cid}/measurements').then(r => r.text())"))
        # correct: draw oedema with a filled pen across the first 2D tile, and save it as version 1
        page.check('#edit')
        page.wait_for_function("window.mrisegViews.main.opts.drawingEnabled === true")
        page.click('button.pen[data-pen="2"]'); page.check('#fill')
        box = page.locator('#gl-main').bounding_box()
        drawn = 0
        for fx, fy in [(.25, .25), (.75, .25), (.25, .75), (.75, .75)]:
            x, y = box['x'] + fx * box['width'], box['y'] + fy * box['height']
            page.mouse.move(x - 25, y - 25); page.mouse.down()
            for dx, dy in [(25, -25), (25, 25), (-25, 25), (-25, -25)]: page.mouse.move(x + dx, y + dy, steps=4)
            page.mouse.up()
            drawn = page.evaluate("window.mrisegViews.main.drawBitmap.reduce((a, v) => a + (v === 2), 0)")
            if drawn > 10: break
        page.screenshot(path=str(shots/'3-drawn.png'))
        page.click('#save')
        page.wait_for_function("document.querySelector('#message').textContent.startsWith('saved as mask version 1')",
                               timeout=60_000)
        after = json.loads(page.evaluate(f"fetch('api/cases/{cid}/measurements').then(r => r.text())"))
        assert after['version'] == 1 and after['made_by'] == 'edited'
        assert after['regions'] != before['regions']  # the pen's oedema changed the mask's regions
        page.wait_for_function("document.querySelector('#measurements h3').textContent.includes('version 1')")
        # the report, downloaded as a person would
        with page.expect_download() as d: page.click('a.download:has-text("report")')
        pdf = tmp_path/'report.pdf'; d.value.save_as(pdf)
        assert pdf.read_bytes()[:5] == b'%PDF-'
        page.check('#show-expert'); page.wait_for_timeout(500)
        page.screenshot(path=str(shots/'4-corrected.png'), full_page=True)
        browser.close()
    assert outside == [], f'requests that left 127.0.0.1: {outside}'
    assert errors == [], errors
    assert all((shots/f).stat().st_size > 10_000 for f in ('1-opened.png', '2-segmented.png', '4-corrected.png'))

@pytest.fixture
def study_server(tmp_path):
    "A server that prepares studies on a 2.5 mm grid, and a zipped phantom DICOM study to open in it."
    _need_browser()
    pytest.importorskip('pydicom'); pytest.importorskip('highdicom')
    import zipfile
    from mriseg.app import create_app
    from mriseg.scanner import make_phantom_study
    s = make_phantom_study(tmp_path/'raw', seed=5, shape=(96, 96, 64))
    zipped = tmp_path/'PHANTOM-5.zip'
    with zipfile.ZipFile(zipped, 'w') as z:
        for f in sorted(s.root.rglob('*')):
            if f.is_file(): z.write(f, f.relative_to(s.root.parent))
    app = create_app(_model(tmp_path/'model'), work=tmp_path/'work', spacing=2.5)
    s = _Serving(app)
    yield s.url, zipped, app
    s.stop()

def test_dicom_study_to_dicom_seg_in_chromium(study_server, tmp_path):
    "A zipped DICOM study: the roles shown and confirmed, prepared, segmented, and the mask downloaded as a DICOM SEG."
    from playwright.sync_api import sync_playwright
    url, zipped, app = study_server
    shots = tmp_path/'screenshots'; shots.mkdir()
    outside, errors = [], []
    with sync_playwright() as p:
        browser, page = _page(p, url, outside, errors)
        page.set_input_files('input[name=study]', str(zipped))
        page.click('#study-upload')
        page.wait_for_selector('#study-table', timeout=60_000)
        table = page.inner_text('#study-table')
        assert 'T1 MPRAGE SAG POST GAD' in table and 'a localizer' in table
        chosen = {r: page.eval_on_selector(f'#study-roles select[data-role={r}]', 'e => e.options[e.selectedIndex].text')
                  for r in ('t1', 't1ce', 't2', 'flair')}
        assert chosen == {'t1': '2 T1 AX SE', 't1ce': '5 T1 MPRAGE SAG POST GAD', 't2': '3 T2 TSE AX', 'flair': '4 FLAIR AX'}
        assert "with contrast agent 'Gadobutrol'" in page.inner_text('#study-roles')  # why the T1ce is the T1ce
        page.screenshot(path=str(shots/'1-roles.png'))
        page.click('#study-prepare')
        page.wait_for_function("document.querySelector('#study-status').textContent.includes('prepared in')",
                               timeout=300_000)
        page.wait_for_function("window.mrisegViews && window.mrisegViews.t2.volumes.length === 1", timeout=60_000)
        assert page.inner_text('#case-name') == 'PHANTOM-5'
        page.click('#segment')
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')", timeout=300_000)
        page.wait_for_selector('a.download:has-text("DICOM SEG")', timeout=60_000)
        page.screenshot(path=str(shots/'2-segmented.png'))
        with page.expect_download() as d: page.click('a.download:has-text("DICOM SEG")')
        seg = tmp_path/'seg.dcm'; d.value.save_as(seg)
        browser.close()
    import pydicom
    ds = pydicom.dcmread(seg)
    assert ds.Modality == 'SEG' and len(ds.SegmentSequence) == 3
    assert outside == [], f'requests that left 127.0.0.1: {outside}'
    assert errors == [], errors
