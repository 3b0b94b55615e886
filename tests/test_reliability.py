"""Reliability: one output set per case, one writer per folder, one line (never a traceback) on any input, and every
input checked before any output is written. Each test runs `mriseg.cli.main` in this process (or the installed
command), on tiny cases and a random-weight model, and checks the exit status, the one-line message and the files."""
import errno, json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from test_safety import cli, dataset, one_line_error, snapshot, save_tiny_model, tiny_image, _copy_model
from mriseg.datasets import find_cases, write_case, as_case_refs
from mriseg.io import folder_lock, LOCK_FILE, mask_record
from mriseg.labels import MrisegError

MRISEG = str(Path(sys.executable).parent/'mriseg')
TINY = ['--arch', 'resnet18', '--size', '32x32', '--bs', 4, '--n-per-epoch', 4, '--valid-n', 4, '--device', 'cpu',
        '--precision', 'fp32']

@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp('model')/'model')

@pytest.fixture(scope='module')
def other(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp('other')/'model', seed=1)

# 1. a case's outputs are one set: written, replaced and judged stale together
def test_overwrite_replaces_the_whole_output_set(tmp_path, capsys, model, other):
    dataset(tmp_path/'ds', n=1)
    probs, mask = tmp_path/'pred'/'BraTS2021_00000_probs.nii.gz', tmp_path/'pred'/'BraTS2021_00000.nii.gz'
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--save-probs')[0] == 0
    assert probs.exists() and mask_record(probs)['weights_sha256'] == mask_record(mask)['weights_sha256']
    rc, _, err = cli(capsys, 'predict', other, tmp_path/'ds', '--out', tmp_path/'pred', '--overwrite')
    assert rc == 0, err
    assert not probs.exists()  # the first model's probabilities are not left beside the second's mask
    assert mask_record(mask)['weights_sha256'] == json.loads((other/'model.json').read_text())['weights_sha256']
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--overwrite', '--save-probs')[0] == 0
    assert mask_record(probs)['weights_sha256'] == mask_record(mask)['weights_sha256']
    mask.unlink()  # a set with its mask gone is predicted again, probabilities too
    before = probs.stat().st_mtime_ns
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--save-probs')[0] == 0
    assert mask.exists() and probs.stat().st_mtime_ns != before

# 2. one writer per folder: a second predict, evaluate or train into a folder being written is refused, naming the holder
def test_a_folder_being_written_is_refused(tmp_path, capsys, model):
    dataset(tmp_path/'ds', n=3)
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')[0] == 0
    for out, args in [(tmp_path/'pred', ['predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--overwrite']),
                      (tmp_path/'report', ['evaluate', tmp_path/'pred', tmp_path/'ds', '--out', tmp_path/'report']),
                      (tmp_path/'run', ['train', tmp_path/'ds', '--out', tmp_path/'run', '--epochs', 1, *TINY])]:
        before = {p: h for p, h in snapshot(tmp_path).items() if p.name != LOCK_FILE}  # a killed holder's may lie there
        holder = subprocess.Popen([sys.executable, '-c', 'import sys, time; from mriseg.io import folder_lock\n'
                                   f'with folder_lock({str(out)!r}, "mriseg predict"): print("held", flush=True); time.sleep(60)'],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == 'held'
            rc, _, err = cli(capsys, *args)
            one_line_error(rc, err, f'{out}: is being written by mriseg predict (process {holder.pid}', 'Wait until')
            assert {p: h for p, h in snapshot(tmp_path).items() if p.name != LOCK_FILE} == before
        finally: holder.kill(); holder.wait()
    # the holders were killed (SIGKILL): their lock files lie there, but the locks went with them
    assert cli(capsys, 'evaluate', tmp_path/'pred', tmp_path/'ds', '--out', tmp_path/'report')[0] == 0
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--overwrite')[0] == 0
    assert not (tmp_path/'report'/LOCK_FILE).exists() and not (tmp_path/'pred'/LOCK_FILE).exists()  # taken away

def test_shards_share_a_folder_and_a_whole_run_waits_for_them(tmp_path, capsys, model):
    dataset(tmp_path/'ds', n=2)
    with folder_lock(tmp_path/'pred', 'mriseg predict', shared=True):  # another shard, still writing
        assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--shard', '0/2')[0] == 0
        rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')
        one_line_error(rc, err, 'is being written by')
    assert cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred', '--shard', '1/2')[0] == 0
    assert sorted(p.name for p in (tmp_path/'pred').iterdir()) == ['BraTS2021_00000.nii.gz', 'BraTS2021_00001.nii.gz']

# 3. bad files in the torch hub cache: one line naming the file, nothing written
def _hub(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch'))
    from mriseg.model import pretrained_path
    return pretrained_path

@pytest.mark.parametrize('arch, bad', [('resnet18', 'truncated'), ('resnet18', 'another network'),
                                       ('pvt_v2_b0', 'broken safetensors')])
def test_bad_pretrained_weights_are_one_line(tmp_path, capsys, monkeypatch, arch, bad):
    import torchvision
    p = _hub(tmp_path, monkeypatch)(arch)
    p.parent.mkdir(parents=True)
    if bad == 'truncated':
        torch.save(torchvision.models.resnet18().state_dict(), tmp_path/'full.pth')
        p.write_bytes((tmp_path/'full.pth').read_bytes()[:100_000])
    elif bad == 'another network': torch.save(torchvision.models.mobilenet_v3_small().state_dict(), p)
    else: p.write_bytes(b'{"not": "a safetensors file"}' * 10)
    dataset(tmp_path/'ds', n=3)
    rc, out, err = cli(capsys, 'train', tmp_path/'ds', '--out', tmp_path/'run', '--pretrained', '--epochs', 1,
                       *TINY[:1], arch, *TINY[2:])
    one_line_error(rc, err, f"{p}: cannot be read as {arch}'s ImageNet weights", 'delete it')
    assert len(err.strip().splitlines()[-1]) < 600 and not (tmp_path/'run').exists()

# 4. malformed post-processing in ensemble.json
@pytest.mark.parametrize('rules', [{'min_component': {'WT': 'abc'}}, [1, 2], {'min_component': 5}, {'smallest': {}}])
def test_malformed_post_processing_is_one_line(tmp_path, capsys, model, rules):
    dataset(tmp_path/'ds', n=1)
    assert cli(capsys, 'ensemble', tmp_path/'ens', model)[0] == 0
    e = json.loads((tmp_path/'ens'/'ensemble.json').read_text()); e['postprocessing'] = rules
    (tmp_path/'ens'/'ensemble.json').write_text(json.dumps(e))
    rc, _, err = cli(capsys, 'predict', tmp_path/'ens', tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, str(tmp_path/'ens'/'ensemble.json'))
    assert not (tmp_path/'pred').exists() or not list((tmp_path/'pred').iterdir())

# 5. numbers out of range
@pytest.mark.parametrize('args, words', [(['predict', 'MODEL', 'DS', '--out', 'OUT', '--bs', '1e20'], 'argument --bs'),
                                         (['predict', 'MODEL', 'DS', '--out', 'OUT', '--bs', '100000000'], 'argument --bs'),
                                         (['train', 'DS', '--out', 'OUT', '--epochs', '1e20'], 'argument --epochs'),
                                         (['train', 'DS', '--out', 'OUT', '--epochs', '100000000000'], 'argument --epochs'),
                                         (['train', 'DS', '--out', 'OUT', '--size', '1000000000032x64'], 'argument --size'),
                                         (['train', 'DS', '--out', 'OUT', '--n-per-epoch', '1e12'], 'argument --n-per-epoch')])
def test_numbers_out_of_range_name_the_flag(tmp_path, capsys, model, args, words):
    dataset(tmp_path/'ds', n=1)
    args = [{'DS': tmp_path/'ds', 'OUT': tmp_path/'out', 'MODEL': model}.get(a, a) for a in args]
    one_line_error(*cli(capsys, *args)[::2], words)
    assert not (tmp_path/'out').exists()

@pytest.mark.parametrize('edit, words', [(dict(img_size=[10**12, 32]), 'img_size'), (dict(n_in=10**20), 'n_in'),
                                         (dict(n_in='four'), 'n_in'), (dict(arch='resnet9000'), 'arch'),
                                         (dict(regions=[]), 'regions')])
def test_model_json_numbers_out_of_range(tmp_path, model, edit, words):
    "The installed command, so that a C++ stack printed by torch would be seen too."
    dataset(tmp_path/'ds', n=1)
    m = _copy_model(model, tmp_path/'m')
    cfg = json.loads((m/'model.json').read_text()); cfg['model'] |= edit; (m/'model.json').write_text(json.dumps(cfg))
    r = subprocess.run([MRISEG, 'predict', m, tmp_path/'ds', '--out', tmp_path/'pred'], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stderr
    assert str(m/'model.json') in r.stderr and words in r.stderr and 'Traceback' not in r.stderr

# 6. a full disk names the file and says what to do
def test_disk_full_names_the_file(tmp_path, capsys, monkeypatch, model):
    import mriseg.io
    dataset(tmp_path/'ds', n=1)
    real = os.replace
    def full(src, dst):
        if str(dst).endswith('.nii.gz'): raise OSError(errno.ENOSPC, 'No space left on device')
        return real(src, dst)
    monkeypatch.setattr(mriseg.io.os, 'replace', full)
    rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, str(tmp_path/'pred'/'BraTS2021_00000.nii.gz'), 'the disk is full', 'Free some space')
    assert not [p for p in (tmp_path/'pred').iterdir()]  # no temporary file, no lock left

# 7. every case a command reads is checked before anything is written
def test_a_bad_last_case_stops_before_any_output(tmp_path, capsys, model):
    refs = dataset(tmp_path/'ds', n=4)
    img, lab = tiny_image(9); write_case(tmp_path/'ds', 'BraTS2021_00009', img * 0, lab)  # all zeros, read last
    rc, _, err = cli(capsys, 'predict', model, tmp_path/'ds', '--out', tmp_path/'pred')
    one_line_error(rc, err, 'case BraTS2021_00009', 'every modality is 0')
    assert not (tmp_path/'pred').exists() or not list((tmp_path/'pred').iterdir())
    rc, _, err = cli(capsys, 'train', tmp_path/'ds', '--out', tmp_path/'run', '--epochs', 1, *TINY)
    one_line_error(rc, err, 'case BraTS2021_00009', 'every modality is 0')
    assert not (tmp_path/'run').exists() or not list((tmp_path/'run').iterdir())  # no split.csv, no cache
    assert cli(capsys, 'predict', model, [r.images[0][0].parent for r in refs][0], '--out', tmp_path/'p1')[0] == 0
    lab_bad = tmp_path/'ds'/'BraTS2021_00003'/'BraTS2021_00003_seg.nii.gz'
    lab_bad.write_bytes(b'not a mask')
    shutil.copytree(tmp_path/'p1', tmp_path/'p2')
    rc, _, err = cli(capsys, 'evaluate', tmp_path/'p2', tmp_path/'ds', '--out', tmp_path/'report', '--missing', 'empty')
    one_line_error(rc, err, 'BraTS2021_00003')
    assert not (tmp_path/'report').exists() or not list((tmp_path/'report').iterdir())

# 8. RUN/model applies the post-processing chosen on validation, as RUN does: tested in chapter 12a

# 9. resume takes the run's own settings and refuses only what contradicts them
def test_resume_takes_the_runs_own_settings(tmp_path, capsys):
    dataset(tmp_path/'ds', n=4)
    run = tmp_path/'run'
    assert cli(capsys, 'train', tmp_path/'ds', '--out', run, '--epochs', 2, '--lr', '0.002', *TINY)[0] == 0
    ck = torch.load(run/'checkpoint.pth', weights_only=True); ck['epoch'] = 0; torch.save(ck, run/'checkpoint.pth')
    import pandas as pd
    pd.read_csv(run/'history.csv').iloc[:1].to_csv(run/'history.csv', index=False)  # as if stopped after epoch 0
    rc, _, err = cli(capsys, 'train', tmp_path/'ds', '--out', run, '--resume', '--epochs', 3)
    one_line_error(rc, err, 'epochs 3 (the run: 2)')
    rc, out, err = cli(capsys, 'train', tmp_path/'ds', '--out', run, '--resume', '--lr', '0.002', '--device', 'cpu')
    assert rc == 0, err
    assert pd.read_csv(run/'history.csv').epoch.tolist() == [0, 1]
    assert json.loads((run/'model'/'model.json').read_text())['train']['size'] == [32, 32]

# 10. an ensemble is never written into a model folder
def test_ensemble_out_forgotten_is_refused(tmp_path, capsys, model, other):
    before = snapshot(model)
    rc, _, err = cli(capsys, 'ensemble', model, other)
    one_line_error(rc, err, str(model), 'model folder')
    assert snapshot(model) == before

# 11. implausible voxel sizes
@pytest.mark.parametrize('spacing', [1e6, 25.0])
def test_implausible_spacing_is_refused(tmp_path, capsys, spacing):
    img, lab = tiny_image()
    ref = write_case(tmp_path/'ds', 'BraTS2021_00000', img, lab, affine=np.diag([spacing, 1, 1, 1]))
    rc, out, err = cli(capsys, 'info', tmp_path/'ds')
    one_line_error(rc, err, ref.images[0][0], 'voxel size')
    assert 'mL' not in out

# 12. the Python API checks its arguments up front, with the command line's messages
def test_api_arguments_are_checked_up_front(tmp_path, model):
    from mriseg.inference import predict_cases
    from mriseg.evaluate import evaluate
    refs = dataset(tmp_path/'ds', n=1)
    img, lab = tiny_image()
    write_case(tmp_path/'nn', 'case_001', img, lab, layout='nnunet')  # 3 is no canonical label (BraTS 2023 files use it)
    bad = [(lambda: predict_cases(model, 42, tmp_path/'pred'), 'refs=42'),
           (lambda: predict_cases(model, [tmp_path/'nowhere'], tmp_path/'pred'), 'does not exist'),
           (lambda: predict_cases(model, refs, tmp_path/'pred', tta='no'), "tta='no'"),
           (lambda: predict_cases(model, refs, tmp_path/'pred', min_size='x'), "min_size='x'"),
           (lambda: evaluate(None, tmp_path/'ds'), 'pred_dir=None'),
           (lambda: evaluate(tmp_path, [7]), '7 is neither'),
           (lambda: evaluate(tmp_path, tmp_path/'ds', n_worst='3'), 'n_worst'),
           (lambda: find_cases(None), 'root=None'),
           (lambda: write_case(tmp_path/'nn', 'case_002', img, lab + 2 * (lab == 1), layout='nnunet'), 'label values [3]')]
    for f, words in bad:
        with pytest.raises(MrisegError, match=None) as e: f()
        assert words in str(e.value), (words, str(e.value))
    assert not (tmp_path/'pred').exists()
    assert not (tmp_path/'nn'/'imagesTr'/'case_002_0000.nii.gz').exists()
    assert [r.case_id for r in as_case_refs([refs[0].images[0][0].parent])] == [refs[0].case_id]

# 13. a new user's first screen is clean
@pytest.mark.parametrize('command', ['predict', 'evaluate', 'ensemble', 'demo', 'train', 'info', 'phantom', 'app'])
def test_help_is_clean(command):
    r = subprocess.run([MRISEG, command, '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == '' and 'usage: mriseg' in r.stdout
