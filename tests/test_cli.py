"""The `mriseg` command end to end, as a user runs it: real processes, real files, exit codes."""
import fcntl, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from mriseg.datasets import find_cases, write_case, regions
from mriseg.datasets import load_case

MRISEG = [str(Path(sys.executable).parent/'mriseg')]  # the installed console script

def run(*args, check=True):
    r = subprocess.run(MRISEG + [str(a) for a in args], capture_output=True, text=True)
    assert 'Traceback' not in r.stderr, r.stderr  # whatever the input: a result, or one line that says what to do
    if check: assert r.returncode == 0, r.stderr
    return r

def test_help_lists_commands():
    out = run('--help').stdout
    for cmd in ('phantom', 'info'): assert cmd in out

def test_python_dash_m_runs_the_command_line(tmp_path):
    "`python -m mriseg` is the same command (what torchrun and accelerate launch start), exit codes included."
    m = [sys.executable, '-m', 'mriseg']
    assert subprocess.run(m + ['--help'], capture_output=True, text=True).stdout == run('--help').stdout
    r = subprocess.run(m + ['info', tmp_path/'none'], capture_output=True, text=True)
    assert r.returncode == 2 and 'mriseg: error:' in r.stderr and 'Traceback' not in r.stderr

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

@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    "A tiny phantom cohort and a one-epoch run on it, made through the command line once per pytest run."
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base  # shared by the xdist workers of this run
    d = root/'e2e'
    with open(root/'e2e.lock', 'w') as lock:  # the first worker builds it; the others wait, then reuse it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (d/'built').exists():
            run('phantom', d/'data', '--n', 6, '--shape', '48x48x32', '--seed', 1)
            run('train', d/'data', '--out', d/'run', '--epochs', 1, '--size', '32x64', '--bs', 8, '--n-per-epoch', 16,
                '--valid-n', 8, '--device', 'cpu')
            (d/'built').touch()
    return d

def test_train_writes_a_run(trained):
    names = {p.name for p in (trained/'run').iterdir()}
    assert {'split.csv', 'history.csv', 'curves.png', 'model', 'checkpoint.pth'} <= names
    assert {p.name for p in (trained/'run'/'model').iterdir()} == {'model.pth', 'model.json'}
    import json
    from mriseg.runtime import bf16_pays
    assert json.loads((trained/'run'/'model'/'model.json').read_text())['train']['bf16'] == bf16_pays('cpu')  # --precision auto
    r = run('train', trained/'data', '--out', trained/'run', check=False)
    assert r.returncode == 2 and 'already holds a run' in r.stderr

def test_predict_and_evaluate(trained):
    from mriseg.splits import run_cases
    import nibabel as nib
    test = run_cases(trained/'run', trained/'data', 'test')
    case_dir = test[0].images[0][0].parent
    run('predict', trained/'run'/'model', case_dir, '--out', trained/'pred', '--device', 'cpu')
    out = trained/'pred'/f'{test[0].case_id}.nii.gz'
    src = nib.load(test[0].images[0][0])
    pred = nib.load(out)
    assert pred.shape == src.shape and np.allclose(pred.affine, src.affine)
    assert set(np.unique(np.asanyarray(pred.dataobj))) <= {0, 1, 2, 4}
    before = out.stat().st_mtime_ns
    r = run('predict', trained/'run'/'model', case_dir, '--out', trained/'pred', '--device', 'cpu')
    assert out.stat().st_mtime_ns == before and 'kept 1 of 1' in r.stdout
    report = trained/'report'
    r = run('evaluate', trained/'pred', case_dir, '--out', report)
    assert 'WT' in r.stdout and 'dice' in r.stdout.lower()
    import pandas as pd
    summary = pd.read_csv(report/'summary.csv')
    assert list(summary.columns) == ['region', 'dice_mean', 'dice_std', 'dice_median', 'iou_mean', 'hd95_mean', 'hd95_median', 'n']
    assert summary.region.tolist() == ['WT', 'TC', 'ET']
    for f in ('per_case.csv', 'boxplot.png', 'worst_cases.png'): assert (report/f).stat().st_size > 0
    before = (report/'summary.csv').stat().st_mtime_ns
    r = run('evaluate', trained/'pred', case_dir, '--out', report, check=False)
    assert r.returncode == 2 and 'already holds a report' in r.stderr and (report/'summary.csv').stat().st_mtime_ns == before
    run('evaluate', trained/'pred', case_dir, '--out', report, '--overwrite')
    assert (report/'summary.csv').stat().st_mtime_ns != before

def test_predict_and_evaluate_a_split(trained):
    "--split RUN takes the run's test patients out of the whole dataset, for both commands."
    import pandas as pd
    split = pd.read_csv(trained/'run'/'split.csv')
    test = sorted(split.case_id[split['set'] == 'test'])
    run('predict', trained/'run'/'model', trained/'data', '--split', trained/'run', '--out', trained/'split-pred', '--device', 'cpu')
    assert sorted(p.name for p in (trained/'split-pred').iterdir()) == [f'{c}.nii.gz' for c in test]
    run('evaluate', trained/'split-pred', trained/'data', '--split', trained/'run'/'split.csv', '--out', trained/'split-report')
    assert sorted(set(pd.read_csv(trained/'split-report'/'per_case.csv').case)) == test
    r = run('evaluate', trained/'split-pred', trained/'data', '--out', trained/'all-report', check=False)  # the whole dataset
    assert r.returncode == 2 and 'no prediction for case' in r.stderr and not (trained/'all-report').exists()

def test_predict_shards(trained, tmp_path):
    "--shard I/N: the shards are disjoint, and together they are a single run's masks, byte for byte."
    model, data = trained/'run'/'model', trained/'data'
    run('predict', model, data, '--out', tmp_path/'whole', '--device', 'cpu')
    made = []
    for i in range(3):
        r = run('predict', model, data, '--out', tmp_path/'shards', '--device', 'cpu', '--shard', f'{i}/3')
        assert f'(shard {i}/3)' in r.stdout
        made.append(sorted(p.name for p in (tmp_path/'shards').iterdir() if p.name not in sum(made, [])))
    assert [len(m) for m in made] == [2, 2, 2] and len(set(sum(made, []))) == 6
    for p in sorted((tmp_path/'whole').iterdir()): assert (tmp_path/'shards'/p.name).read_bytes() == p.read_bytes()
    r = run('predict', model, data, '--out', tmp_path/'bad', '--shard', '3/3', check=False)
    assert r.returncode == 2 and '--shard' in r.stderr and not (tmp_path/'bad').exists()

def test_pretrained_needs_the_weights_on_disk(trained, tmp_path):
    "--pretrained never downloads: without torchvision's file in the hub cache it stops, naming the file, before any work."
    env = dict(os.environ, TORCH_HOME=str(tmp_path/'torch'))
    r = subprocess.run(MRISEG + ['train', str(trained/'data'), '--out', str(tmp_path/'run'), '--pretrained', '--arch',
                                 'resnet18', '--epochs', '1', '--device', 'cpu'], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and 'resnet18' in r.stderr and 'never downloads' in r.stderr, r.stderr
    assert str(tmp_path/'torch'/'hub'/'checkpoints') in r.stderr and not (tmp_path/'run').exists()

def test_predict_bad_model(tmp_path, trained):
    (tmp_path/'model').mkdir()
    r = run('predict', tmp_path/'model', trained/'data', '--out', tmp_path/'pred', check=False)
    assert r.returncode == 2 and 'model.json' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'pred').exists() or not any((tmp_path/'pred').iterdir())

def test_a_declared_scheme_end_to_end(tmp_path):
    "--scheme: the phantom's tumour read as one lesion region, trained, predicted and scored as such."
    import json, pandas as pd, nibabel as nib
    run('phantom', tmp_path/'data', '--n', 5, '--shape', '48x48x32', '--seed', 2)
    scheme = tmp_path/'lesion.json'
    scheme.write_text(json.dumps(dict(name='lesion', regions=dict(lesion=[1]), raw={'0': 0, '1': 1, '2': 1, '4': 1})))
    run('train', tmp_path/'data', '--out', tmp_path/'run', '--scheme', scheme, '--epochs', 1, '--size', '32x64', '--bs', 8,
        '--n-per-epoch', 16, '--valid-n', 8, '--device', 'cpu', '--precision', 'fp32')
    cfg = json.loads((tmp_path/'run'/'model'/'model.json').read_text())
    assert cfg['regions'] == ['lesion'] and cfg['train']['bf16'] is False
    r = run('predict', tmp_path/'run'/'model', tmp_path/'data', '--split', tmp_path/'run', '--out', tmp_path/'pred', check=False)
    assert r.returncode == 2 and '--scheme MODEL/model.json' in r.stderr  # the data's own scheme has WT, TC, ET
    run('predict', tmp_path/'run'/'model', tmp_path/'data', '--split', tmp_path/'run', '--out', tmp_path/'pred',
        '--scheme', tmp_path/'run'/'model'/'model.json', '--device', 'cpu')
    out, = (tmp_path/'pred').iterdir()
    assert set(np.unique(np.asanyarray(nib.load(out).dataobj))) <= {0, 1}  # written in the scheme's own values
    run('evaluate', tmp_path/'pred', tmp_path/'data', '--split', tmp_path/'run', '--scheme', scheme, '--out', tmp_path/'report')
    assert pd.read_csv(tmp_path/'report'/'summary.csv').region.tolist() == ['lesion']
    import shutil; shutil.rmtree(tmp_path/'run')  # ~0.5 GB of weights and checkpoint: CI disks are small

def test_protocol_from_the_command_line(trained, tmp_path):
    "--definition is recorded; --fold needs --folds; mriseg ensemble names models that predict together."
    import json
    import pandas as pd
    run('predict', trained/'run'/'model', trained/'data', '--split', trained/'run', '--out', tmp_path/'pred', '--device', 'cpu')
    for d in ('brats2023', 'voxel'):
        r = run('evaluate', tmp_path/'pred', trained/'data', '--split', trained/'run', '--out', tmp_path/d, '--definition', d)
        assert f'scored by the {d} definition' in r.stdout
        assert json.loads((tmp_path/d/'definition.json').read_text())['name'] == d
    a, b = (pd.read_csv(tmp_path/d/'per_case.csv') for d in ('brats2023', 'voxel'))
    assert (a.dice == b.dice).all()                          # the same overlap, by either definition
    r = run('evaluate', tmp_path/'pred', trained/'data', '--out', tmp_path/'x', '--definition', 'brats2022', check=False)
    assert r.returncode == 2 and "invalid choice: 'brats2022'" in r.stderr
    r = run('train', trained/'data', '--out', tmp_path/'cv', '--fold', 1, check=False)
    assert r.returncode == 2 and '--fold 1: needs --folds' in r.stderr and not (tmp_path/'cv').exists()
    run('ensemble', tmp_path/'ens', trained/'run'/'model', trained/'run'/'model')
    assert len(json.loads((tmp_path/'ens'/'ensemble.json').read_text())['members']) == 2
    r = run('predict', tmp_path/'ens', trained/'data', '--split', trained/'run', '--out', tmp_path/'pred-ens', '--device', 'cpu')
    one, two = (sorted(p.glob('*.nii.gz')) for p in (tmp_path/'pred', tmp_path/'pred-ens'))
    import nibabel as nib
    for p, q in zip(one, two):   # the mean of a model and itself is the model
        assert p.name == q.name and (np.asanyarray(nib.load(p).dataobj) == np.asanyarray(nib.load(q).dataobj)).all()
    r = run('ensemble', tmp_path/'ens', trained/'run'/'model', check=False)
    assert r.returncode == 2 and 'already exists' in r.stderr

def test_app_refuses_what_it_cannot_serve(tmp_path):
    "mriseg app: a model that is not one, or a data folder that is not there, is one line and exit status 2."
    r = run('app', '--model', tmp_path, '--work', tmp_path/'work', check=False)
    assert r.returncode == 2 and 'neither a model folder' in r.stderr
    r = run('app', '--data', tmp_path/'none', '--work', tmp_path/'work', check=False)
    assert r.returncode == 2 and 'is not a folder' in r.stderr
    r = run('app', '--port', '70000', check=False)
    assert r.returncode == 2 and 'argument --port' in r.stderr

def test_prepare_then_predict_back_to_the_scanner(trained, tmp_path):
    "A DICOM study through `mriseg prepare`, then `predict --native --dicom-seg`; and what either refuses."
    pydicom = pytest.importorskip('pydicom'); pytest.importorskip('highdicom')
    import json, nibabel as nib
    run('phantom', tmp_path/'raw', '--as', 'dicom', '--n', 1, '--shape', '96x96x64', '--seed', 2)
    study = tmp_path/'raw'/'PHANTOM-2-0'
    r = run('prepare', study, '--out', tmp_path/'cases', '--spacing', 2.5)
    assert 'T1 MPRAGE SAG POST GAD' in r.stdout and 'a localizer' in r.stdout
    case = next(p for p in (tmp_path/'cases').iterdir() if not p.name.startswith('.'))
    rec = json.loads((case/'prepare.json').read_text())
    assert set(rec['roles']) == {'t1', 't1ce', 't2', 'flair'} and rec['grid']['spacing'] == 2.5
    before = (case/'prepare.json').stat().st_mtime_ns
    r = run('prepare', study, '--out', tmp_path/'cases', check=False)
    assert r.returncode == 2 and 'already exists' in r.stderr and (case/'prepare.json').stat().st_mtime_ns == before
    run('predict', trained/'run'/'model', tmp_path/'cases', '--out', tmp_path/'pred', '--native', '--dicom-seg', '--device', 'cpu')
    for role in ('t1ce', 'flair'):
        img = nib.load(tmp_path/'pred'/f'{case.name}_{role}_native.nii.gz')
        assert np.allclose(img.affine, rec['roles'][role]['affine'], atol=1e-5) and list(img.shape) == rec['roles'][role]['shape']
    seg = pydicom.dcmread(tmp_path/'pred'/f'{case.name}_seg.dcm')
    assert seg.Modality == 'SEG' and len(seg.SegmentSequence) == 3
    t1ce = pydicom.dcmread(study/rec['roles']['t1ce']['files'][0], stop_before_pixels=True)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == t1ce.SeriesInstanceUID
    # a case prepare did not write: refused before any work
    brats = find_cases(trained/'data')[0].images[0][0].parent
    r = run('predict', trained/'run'/'model', brats, '--out', tmp_path/'p2', '--native', check=False)
    assert r.returncode == 2 and 'prepare.json' in r.stderr and not (tmp_path/'p2').exists()
    (tmp_path/'junk').mkdir(); (tmp_path/'junk'/'a.txt').write_text('x')
    r = run('prepare', tmp_path/'junk', '--out', tmp_path/'cases2', check=False)
    assert r.returncode == 2 and 'holds no MR images' in r.stderr and not (tmp_path/'cases2').exists()
