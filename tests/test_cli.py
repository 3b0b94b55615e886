"""The `mriseg` command end to end, as a user runs it: real processes, real files, exit codes."""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from mriseg.datasets import find_cases, write_case, regions
from mriseg.io import load_case

MRISEG = [str(Path(sys.executable).parent/'mriseg')]  # the installed console script

def run(*args, check=True):
    r = subprocess.run(MRISEG + [str(a) for a in args], capture_output=True, text=True)
    if check: assert r.returncode == 0, r.stderr
    return r

def test_help_lists_commands():
    out = run('--help').stdout
    for cmd in ('phantom', 'info'): assert cmd in out

def test_phantom_round_trip(tmp_path):
    out = tmp_path/'p'
    run('phantom', out, '--n', 4, '--shape', 'small', '--seed', 3)
    refs = find_cases(out)
    assert [r.case_id for r in refs] == [f'BraTS2021_{i:05d}' for i in range(4)]
    assert {r.layout for r in refs} == {'brats2021'}
    for ref in refs:
        case = load_case(ref)
        assert case.image.shape == (4, 96, 96, 64) and case.image.dtype == np.float32
        assert set(np.unique(case.label)) <= {0, 1, 2, 4} and (case.label > 0).any()
        wt, tc, et = regions(case.label)
        assert wt.sum() > tc.sum() >= et.sum()
    info = run('info', out).stdout
    assert '4 cases, layout brats2021, 4 with masks' in info

def test_phantom_never_overwrites(tmp_path):
    out = tmp_path/'p'
    run('phantom', out, '--n', 1, '--shape', '24x24x16')
    before = {p: p.stat().st_mtime_ns for p in out.rglob('*.nii.gz')}
    r = run('phantom', out, '--n', 1, '--shape', '24x24x16', check=False)
    assert r.returncode != 0 and 'already exists' in r.stderr and 'Traceback' not in r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*.nii.gz')} == before

@pytest.mark.parametrize('make_bad, message', [
    (lambda d: None, 'holds no cases mriseg can read'),
    (lambda d: (d/'BraTS2021_00000').mkdir() or (d/'BraTS2021_00000'/'BraTS2021_00000_t1.nii.gz').write_text('x'), "missing modality 't1ce'"),
])
def test_info_bad_input(tmp_path, make_bad, message):
    make_bad(tmp_path)
    r = run('info', tmp_path, check=False)
    assert r.returncode == 2
    assert message in r.stderr and str(tmp_path) in r.stderr and 'Traceback' not in r.stderr

def test_info_corrupt_file(tmp_path):
    rng = np.random.default_rng(0)
    ref = write_case(tmp_path, 'BraTS2021_00000', rng.integers(1, 500, (4, 16, 16, 16)), rng.choice([0, 1, 2, 4], (16, 16, 16)))
    f = ref.images[2][0]; f.write_bytes(f.read_bytes()[:200])
    r = run('info', tmp_path, check=False)
    assert r.returncode == 2 and f'{f}: is corrupt or truncated' in r.stderr
