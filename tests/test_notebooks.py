"""Runs every notebook's tests, as nbdev_test does, one pytest test per notebook (pytest -n 2 runs them in parallel)."""
import os, shutil, tempfile
from configparser import ConfigParser
from pathlib import Path
import pytest

ROOT = Path(__file__).parents[1]
NBS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if not any(part.startswith(('.', '_')) for part in p.relative_to(ROOT/'nbs').parts))

def _skip_flags():
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
    flags = set(cfg['DEFAULT'].get('tst_flags', '').split())
    return sorted(flags - set(os.environ.get('MRISEG_TEST_FLAGS', '').split()))

@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(ROOT/'nbs')) for p in NBS])
def test_notebook(nb, tmp_path):
    from nbdev.test import test_nb
    # The notebooks' scratch folders (tempfile.mkdtemp: cohorts, runs) land in this test's folder and go with it.
    old_tmp, old_env = tempfile.tempdir, os.environ.get('TMPDIR')
    tempfile.tempdir = os.environ['TMPDIR'] = str(tmp_path)
    try: ok, secs = test_nb(nb, skip_flags=_skip_flags(), basepath=ROOT)
    finally:
        tempfile.tempdir = old_tmp
        if old_env is None: os.environ.pop('TMPDIR', None)
        else: os.environ['TMPDIR'] = old_env
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert ok, f'{nb.name} failed its tests (the traceback is above)'
