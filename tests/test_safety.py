"""What a hostile user of the `mriseg` command finds, as tests: nothing lost, nothing skipped, nothing moved.

Each test runs `mriseg.cli.main` in this process on tiny cases and a random-weight model, and checks the exit
status, the one-line message and the files on disk. The test names are the rules they hold to."""
import hashlib, json, os, shutil, subprocess
from pathlib import Path
import numpy as np
import nibabel as nib
import pytest
import SimpleITK as sitk
from mriseg.cli import main
from mriseg.datasets import write_case, find_cases
from mriseg.io import MODALITIES, BRATS, mask_record
from mriseg.model import create_model, save_model
from mriseg.preprocess import PrepConfig

SHAPE = (24, 24, 16)

def tiny_image(seed=0, offset=0.):
    "Four modalities of a box brain with a bright nested tumour, background 0 (+ `offset` everywhere), and its labels."
    rng = np.random.default_rng(seed)
    img, lab = np.zeros((4, *SHAPE), np.float32), np.zeros(SHAPE, np.uint8)
    img[:, 3:21, 3:21, 2:14] = rng.uniform(80, 120, (4, 18, 18, 12))
    lab[8:14, 8:14, 5:10] = 2; lab[9:13, 9:13, 6:9] = 1; lab[10:12, 10:12, 7:8] = 4
    img[:, lab > 0] += 300
    return np.round(img + offset), lab

def dataset(root, layout='brats2021', n=2, ids=None, **kw):
    ids = ids or {'brats2021': [f'BraTS2021_{i:05d}' for i in range(n)], 'msd': [f'BRATS_{i:03d}' for i in range(1, n + 1)],
                  'nnunet': [f'case_{i:03d}' for i in range(1, n + 1)]}[layout]
    return [write_case(root, c, *tiny_image(i, **kw), layout=layout) for i, c in enumerate(ids)]

def save_tiny_model(folder, seed=0):
    torch = pytest.importorskip('torch')
    torch.manual_seed(seed)
    model = create_model('resnet18', n_in=4, img_size=(32, 32))
    save_model(model, folder, dict(preprocessing=PrepConfig().to_dict(), context=1, slice_size=[32, 32], regions=['WT', 'TC', 'ET'],
                                   modalities=list(MODALITIES), scheme=BRATS.to_dict()))
    return folder

@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp('model')/'model')

def cli(capsys, *args):
    "(exit status, stdout, stderr) of `mriseg ARGS`, run in this process."
    try: rc = main([str(a) for a in args])
    except SystemExit as e: rc = e.code  # argparse refuses bad flags with exit status 2
    out, err = capsys.readouterr()
    assert 'Traceback' not in err, err
    return rc, out, err

def one_line_error(rc, err, *parts):
    assert rc not in (0, None), err
    last = err.strip().splitlines()[-1]  # argparse puts its usage above the error line
    assert 'Traceback' not in err and last.startswith(('mriseg: error: ', 'mriseg ')), err
    for p in parts: assert str(p) in last, (p, err)

def snapshot(root):
    "sha256 of every file under `root`."
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(root).rglob('*')) if p.is_file()}

# 1. no command writes where find_cases reads
@pytest.mark.parametrize('layout, folder', [('msd', 'imagesTr'), ('nnunet', 'labelsTr'), ('nnunet', 'imagesTr'), ('brats2021', 'BraTS2021_00001')])
def test_out_inside_the_dataset_is_refused(tmp_path, capsys, model, layout, folder):
    dataset(tmp_path/'ds', layout)
    before = snapshot(tmp_path/'ds')
    for extra in ([], ['--overwrite']):
        rc, out, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'ds'/folder, *extra)
        one_line_error(rc, err, tmp_path/'ds'/folder, 'is a folder of the input dataset')
    rc, _, err = cli(capsys, 'evaluate', tmp_path/'ds'/folder, tmp_path/'ds', '--out', tmp_path/'ds'/folder)
    one_line_error(rc, err, 'is a folder of the input dataset')
    assert snapshot(tmp_path/'ds') == before
    assert len(find_cases(tmp_path/'ds')) == 2

def test_out_of_a_split_is_checked_against_every_case(tmp_path, capsys, model):
    dataset(tmp_path/'ds', n=3)
    (tmp_path/'run').mkdir()
    (tmp_path/'run'/'split.csv').write_text('case_id,set\nBraTS2021_00000,train\nBraTS2021_00001,valid\nBraTS2021_00002,test\n')
    rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--split', tmp_path/'run', '--out', tmp_path/'ds'/'BraTS2021_00000')
    one_line_error(rc, err, 'is a folder of the input dataset')

# 2. duplicate case ids
def test_duplicate_case_ids_are_refused(tmp_path, capsys, model):
    write_case(tmp_path/'ds'/'siteA', 'BraTS2021_00002', *tiny_image(0))
    write_case(tmp_path/'ds'/'siteB', 'BraTS2021_00002', *tiny_image(1))
    for cmd in (['info', tmp_path/'ds'], ['predict', model, tmp_path/'ds', '--out', tmp_path/'pred']):
        rc, _, err = cli(capsys, *cmd)
        one_line_error(rc, err, 'case id BraTS2021_00002 is used twice', tmp_path/'ds'/'siteA'/'BraTS2021_00002', tmp_path/'ds'/'siteB'/'BraTS2021_00002')
    assert not list((tmp_path/'pred').glob('*.nii.gz')) if (tmp_path/'pred').exists() else True

# 3. symlinked case folders
def test_symlinked_case_folders_are_read(tmp_path, capsys, model):
    dataset(tmp_path/'store', n=2); write_case(tmp_path/'ds', 'BraTS2021_00009', *tiny_image(3))
    (tmp_path/'ds'/'BraTS2021_00000').symlink_to(tmp_path/'store'/'BraTS2021_00000')
    (tmp_path/'ds'/'loop').symlink_to(tmp_path/'ds')
    (tmp_path/'links').mkdir(); (tmp_path/'links'/'BraTS2021_00001').symlink_to(tmp_path/'store'/'BraTS2021_00001')
    rc, out, _ = cli(capsys, 'info', tmp_path/'ds')
    assert rc == 0 and '2 cases' in out, out
    rc, out, err = cli(capsys, 'predict', model, tmp_path/'links', '--out', tmp_path/'pred')
    assert rc == 0, err
    assert [p.name for p in (tmp_path/'pred').glob('*.nii.gz')] == ['BraTS2021_00001.nii.gz']

# 4. two files for one modality
@pytest.mark.parametrize('make_twin', [lambda f: f.with_name(f.name.replace('_t1ce', '_T1CE')),
                                       lambda f: f.with_name(f.name.replace('.nii.gz', '.nii'))])
def test_two_files_for_one_modality_are_refused(tmp_path, capsys, model, make_twin):
    ref = dataset(tmp_path/'ds', n=1)[0]
    f = ref.images[1][0]; twin = make_twin(f)
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.float32), np.eye(4)), twin)  # a zero-filled copy
    rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, 'holds two files for', f.name, twin.name)

# 5. gzip CRC and length
@pytest.mark.parametrize('damage', [lambda b: b[:-6] + bytes([b[-6] ^ 1]) + b[-5:], lambda b: b[:-4]], ids=['crc-bit', 'cut-length'])
def test_gzip_crc_and_length_are_checked(tmp_path, capsys, model, damage):
    ref = dataset(tmp_path/'ds', n=1)[0]
    f = ref.images[2][0]; f.write_bytes(damage(f.read_bytes()))
    rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, f'{f}: is corrupt or truncated (gzip')
    assert not list((tmp_path/'pred').glob('*.nii.gz'))

# 6 and 11. a run that trains nothing, and bad arguments, stop before any work and name the flag
@pytest.mark.parametrize('args, flag', [(['train', 'DS', '--out', 'RUN', '--epochs', '0'], '--epochs'),
                                        (['train', 'DS', '--out', 'RUN', '--bs', '0'], '--bs'),
                                        (['train', 'DS', '--out', 'RUN', '--lr', '-1'], '--lr'),
                                        (['predict', 'MODEL', 'DS', '--out', 'RUN', '--bs', '0'], '--bs'),
                                        (['predict', 'MODEL', 'DS', '--out', 'RUN', '--bs', '-1'], '--bs'),
                                        (['predict', 'MODEL', 'DS', '--out', 'RUN', '--device', 'bogus'], '--device'),
                                        (['train', 'DS', '--out', 'RUN', '--device', 'bogus'], '--device')])
def test_bad_arguments_name_the_flag(tmp_path, capsys, model, args, flag):
    dataset(tmp_path/'ds', n=3)
    args = [{'DS': tmp_path/'ds', 'RUN': tmp_path/'run', 'MODEL': model}.get(a, a) for a in args]
    rc, out, err = cli(capsys, *args)
    one_line_error(rc, err, f'argument {flag}')
    assert 'best model' not in out and not (tmp_path/'run').exists()

def test_device_cuda_without_a_gpu_names_the_flag(tmp_path, capsys, model):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU')
    dataset(tmp_path/'ds', n=3)
    for args in (['predict', model, tmp_path/'ds', '--out', tmp_path/'pred'], ['train', tmp_path/'ds', '--out', tmp_path/'run']):
        rc, _, err = cli(capsys, *args, '--device', 'cuda')
        one_line_error(rc, err, 'argument --device', 'no CUDA GPU is visible here. Use --device cpu')
        assert 'device=' not in err

def test_train_that_keeps_no_model_fails(tmp_path, capsys):
    dataset(tmp_path/'ds', n=4)
    common = ['--size', '32x32', '--bs', 4, '--n-per-epoch', 4, '--valid-n', 4, '--device', 'cpu', '--epochs', 1]
    assert cli(capsys, 'train', tmp_path/'ds', '--out', tmp_path/'run', *common)[0] == 0
    shutil.rmtree(tmp_path/'run'/'model')
    rc, out, err = cli(capsys, 'train', tmp_path/'ds', '--out', tmp_path/'run', '--resume', *common)
    one_line_error(rc, err, 'no epoch of this run kept a model')
    assert 'best model' not in out

# 7-9. the mask carries the reference image's header geometry, and a header of its own otherwise
def _rewrite_geometry(ref, qform, qcode, sform, scode):
    for f in ref.files:
        img = nib.load(f)
        out = nib.Nifti1Image(np.asanyarray(img.dataobj), None, header=img.header)
        out.set_qform(qform, qcode); out.set_sform(sform, scode)
        h = out.header; h['cal_min'], h['cal_max'] = 0, 900; h.set_intent('t test', (12,)); h['descrip'] = b'scanner protocol 7'
        nib.save(out, f)

def _sitk_geometry(path):
    im = sitk.ReadImage(str(path))
    return np.array(im.GetOrigin()), np.array(im.GetSpacing()), np.array(im.GetDirection())

def _oblique(deg):
    th = np.deg2rad(deg)
    a = np.diag([1., 1., 2., 1.]); a[:2, :2] = [[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]; a[:3, 3] = [-10, 12, -8]
    return a

@pytest.mark.parametrize('geometry', [
    dict(qform=_oblique(10), qcode=1, sform=_oblique(0), scode=2),  # qform and sform disagree
    dict(qform=None, qcode=0, sform=None, scode=0),                 # no orientation given at all
    dict(qform=_oblique(0) @ np.diag([-1, 1, 1, 1.]), qcode=1, sform=None, scode=0),  # qform only, qfac -1
], ids=['qform-sform-disagree', 'both-codes-0', 'qform-only'])
def test_mask_keeps_the_images_header_geometry(tmp_path, capsys, model, geometry):
    ref = dataset(tmp_path/'ds', n=1)[0]
    _rewrite_geometry(ref, **geometry)
    rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--save-probs')
    assert rc == 0, err
    src = nib.load(ref.images[0][0]).header
    for out in (tmp_path/'pred'/f'{ref.case_id}.nii.gz', tmp_path/'pred'/f'{ref.case_id}_probs.nii.gz'):
        h = nib.load(out).header
        assert [int(h[k]) for k in ('qform_code', 'sform_code')] == [int(src[k]) for k in ('qform_code', 'sform_code')]
        for k in ('quatern_b', 'quatern_c', 'quatern_d', 'qoffset_x', 'qoffset_y', 'qoffset_z', 'srow_x', 'srow_y', 'srow_z'):
            np.testing.assert_allclose(h[k], src[k], atol=1e-6, err_msg=k)
        np.testing.assert_allclose(h['pixdim'][:4], src['pixdim'][:4], atol=1e-6)  # qfac and voxel sizes
        assert h.get_xyzt_units() == src.get_xyzt_units()
        if out.name.endswith('_probs.nii.gz'): continue
        for a, b in zip(_sitk_geometry(out), _sitk_geometry(ref.images[0][0])): np.testing.assert_allclose(a, b, atol=1e-5)
        assert (float(h['cal_min']), float(h['cal_max']), int(h['intent_code'])) == (0., 4., 0)
        assert h['descrip'].item().startswith(b'mriseg ') and b'model ' in h['descrip'].item()

# 10. --out an existing file, or a folder that cannot be written, before any work
@pytest.mark.parametrize('command', ['predict', 'evaluate', 'train'])
def test_out_that_is_a_file_or_unwritable(tmp_path, capsys, model, command):
    dataset(tmp_path/'ds', n=3)
    (tmp_path/'pred').mkdir(); (tmp_path/'taken').write_text('a file of the user')
    lead = {'predict': [model, tmp_path/'ds'], 'evaluate': [tmp_path/'pred', tmp_path/'ds'], 'train': [tmp_path/'ds']}[command]
    rc, _, err = cli(capsys, command, *lead, '--out', tmp_path/'taken')
    one_line_error(rc, err, f"{tmp_path/'taken'}: is a file, not a folder")
    assert (tmp_path/'taken').read_text() == 'a file of the user'
    rc, _, err = cli(capsys, command, *lead, '--out', '/proc/mriseg-out')
    one_line_error(rc, err, '/proc/mriseg-out: cannot be written')

# 12 and 13. model.json and model.pth that are wrong in a user's hands
def _copy_model(model, dst, **json_edits):
    shutil.copytree(model, dst)
    cfg = json.loads((dst/'model.json').read_text()) | json_edits
    (dst/'model.json').write_text(json.dumps(cfg))
    return dst

def _set_pth(folder, data:bytes):
    (folder/'model.pth').write_bytes(data)
    cfg = json.loads((folder/'model.json').read_text()) | dict(weights_sha256=hashlib.sha256(data).hexdigest())
    (folder/'model.json').write_text(json.dumps(cfg))

def test_model_json_errors_name_the_file(tmp_path, capsys, model):
    dataset(tmp_path/'ds', n=1)
    m = _copy_model(model, tmp_path/'m1', format_version='2')
    rc, _, err = cli(capsys, 'predict', m, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, f"{m/'model.json'}: format_version is '2'")
    m = _copy_model(model, tmp_path/'m2', context=2)
    rc, _, err = cli(capsys, 'predict', m, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, f"{m/'model.json'}: context=2")

def test_model_pth_refusals_say_what_was_found(tmp_path, capsys, model):
    import pickle, torch
    dataset(tmp_path/'ds', n=1)
    m = _copy_model(model, tmp_path/'m')
    _set_pth(m, b'these are not weights\n')
    rc, _, err = cli(capsys, 'predict', m, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, f"{m/'model.pth'}: not a PyTorch weights file (it starts with b'these are not we')")
    class Payload:
        def __reduce__(self): return (os.system, ('touch ' + str(tmp_path/'ran'),))
    for save in (lambda f: torch.save({'w': torch.zeros(1), 'x': Payload()}, f), lambda f: f.write_bytes(pickle.dumps({'x': Payload()}))):
        save(tmp_path/'evil.pth'); _set_pth(m, (tmp_path/'evil.pth').read_bytes())
        rc, _, err = cli(capsys, 'predict', m, tmp_path/'ds', '--out', tmp_path/'pred')
        one_line_error(rc, err, 'refused: it holds', 'mriseg will not load it')
        assert 'weights_only' not in err and '()' not in err
        assert not (tmp_path/'ran').exists()
    torch.save({'w': torch.zeros(1), 'x': Payload()}, tmp_path/'evil.pth'); _set_pth(m, (tmp_path/'evil.pth').read_bytes())
    assert 'the Python object posix.system' in cli(capsys, 'predict', m, tmp_path/'ds', '--out', tmp_path/'pred')[2]

# 14. messages from the command line name flags, not Python arguments
def test_messages_name_flags_not_python_arguments(tmp_path, capsys, model):
    refs = dataset(tmp_path/'ds', n=2)
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')[0] == 0
    assert cli(capsys, 'evaluate', tmp_path/'pred', tmp_path/'ds', '--out', tmp_path/'report')[0] == 0
    rc, _, err = cli(capsys, 'evaluate', tmp_path/'pred', tmp_path/'ds', '--out', tmp_path/'report')
    one_line_error(rc, err, 'already holds a report', '--overwrite'); assert '=True' not in err
    (tmp_path/'pred'/f'{refs[0].case_id}.nii.gz').unlink()
    rc, _, err = cli(capsys, 'evaluate', tmp_path/'pred', tmp_path/'ds', '--out', tmp_path/'report2')
    one_line_error(rc, err, '--missing empty'); assert "missing=" not in err
    lab = nib.load(refs[1].label); arr = np.asanyarray(lab.dataobj).copy(); arr[arr == 4] = 3  # BraTS 2023's enhancing label
    nib.save(nib.Nifti1Image(arr, lab.affine, lab.header), refs[1].label)
    rc, _, err = cli(capsys, 'info', tmp_path/'ds')
    one_line_error(rc, err, 'label values [3]', '--scheme brats2023'); assert 'scheme=' not in err and 'LabelScheme' not in err

# 15. predict reads images only
def test_predict_does_not_need_the_mask(tmp_path, capsys, model):
    ref = dataset(tmp_path/'ds', n=1)[0]
    ref.label.write_bytes(b'a broken mask')
    rc, out, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')
    assert rc == 0, err
    assert (tmp_path/'pred'/f'{ref.case_id}.nii.gz').exists()

# 16. temporary files of killed runs are cleaned up at the start, and only those
def test_temporary_files_of_killed_runs_are_removed(tmp_path, capsys, model):
    from mriseg.io import _HOST
    dataset(tmp_path/'ds', n=1)
    dead = subprocess.Popen(['true']); dead.wait()
    (tmp_path/'pred').mkdir()
    stale = tmp_path/'pred'/f'.tmp-mriseg-{_HOST}-{dead.pid}-0badc0de-BraTS2021_00000.nii.gz'
    mine = tmp_path/'pred'/'.tmp-notes.txt'
    stale.write_bytes(b'half a file'); mine.write_text('the user\'s')
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')[0] == 0
    assert not stale.exists() and mine.exists()
    half = tmp_path/'cohort'/'BraTS2021_00000'/f'.tmp-mriseg-{_HOST}-{dead.pid}-0badc0de-BraTS2021_00000_t1.nii.gz'
    half.parent.mkdir(parents=True); half.write_bytes(b'half a file')  # a killed `mriseg phantom`
    rc, _, err = cli(capsys, 'phantom', tmp_path/'cohort', '--n', 1, '--shape', '24x24x16', '--workers', 0)
    assert rc == 0 and not half.exists(), err

# 17. images whose background is not 0
def test_nonzero_background_is_refused(tmp_path, capsys, model):
    refs = dataset(tmp_path/'ds', n=1, offset=5.)
    rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, refs[0].images[0][0], 'the background is not 0', 'skull-stripped')
    assert not list((tmp_path/'pred').glob('*.nii*'))

# 18 and 19. evaluate names what it did not score; outputs say which model made them
def test_evaluate_names_unscored_predictions(tmp_path, capsys, model):
    dataset(tmp_path/'ds', n=2)
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')[0] == 0
    shutil.copy(tmp_path/'pred'/'BraTS2021_00000.nii.gz', tmp_path/'pred'/'BraTS2021_00077.nii.gz')
    rc, out, err = cli(capsys, 'evaluate', tmp_path/'pred', tmp_path/'ds', '--out', tmp_path/'report')
    assert rc == 0, err
    assert '1 prediction file(s)' in out and 'BraTS2021_00077.nii.gz' in out and 'not scored' in out

def test_stale_predictions_of_another_model_stop(tmp_path, capsys, model):
    dataset(tmp_path/'ds', n=2)
    run_model = tmp_path/'run'/'model'
    shutil.copytree(model, run_model)
    assert cli(capsys, 'predict', run_model, tmp_path/'ds', '--out', tmp_path/'pred')[0] == 0
    first = json.loads((run_model/'model.json').read_text())['weights_sha256']
    assert mask_record(tmp_path/'pred'/'BraTS2021_00000.nii.gz')['weights_sha256'] == first
    rc, out, _ = cli(capsys, 'predict', run_model, tmp_path/'ds', '--out', tmp_path/'pred')
    assert rc == 0 and 'kept 2 of 2' in out
    shutil.rmtree(run_model); save_tiny_model(run_model, seed=1)  # trained again into the same run
    second = json.loads((run_model/'model.json').read_text())['weights_sha256']
    before = snapshot(tmp_path/'pred')
    rc, _, err = cli(capsys, 'predict', run_model, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, 'was made by another model', '2 of the 2 cases', '--overwrite')
    assert snapshot(tmp_path/'pred') == before
    assert cli(capsys, 'predict', run_model, tmp_path/'ds', '--out', tmp_path/'pred', '--overwrite')[0] == 0
    assert mask_record(tmp_path/'pred'/'BraTS2021_00001.nii.gz')['weights_sha256'] == second
    assert cli(capsys, 'evaluate', tmp_path/'pred', tmp_path/'ds', '--out', tmp_path/'report')[0] == 0
    import pandas as pd
    assert set(pd.read_csv(tmp_path/'report'/'per_case.csv').model) == {second[:12]}
