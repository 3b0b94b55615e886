"""DDP training as a cluster runs it, on CPUs: torchrun starts two processes (gloo) of `python -m mriseg train`."""
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
import torch

TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']
# The same slices scored by two processes and by one: float32 sums in another order (other thread counts, other
# kernels) can tip a voxel whose probability sits at 0.5, moving a Dice by about 1e-5; other slices or a wrong
# reduction move it by far more.
DICE_TOL = 1e-4
SETTINGS = ['--size', '32x32', '--bs', 4, '--n-per-epoch', 48, '--lr', 0.01, '--valid-n', 9, '--device', 'cpu', '--precision', 'fp32']

def torchrun(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run(TORCHRUN + ['-m', 'mriseg'] + [str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r

def single_process_dice(run, data):
    "The validation Dice of the run's saved model, computed by this one process on the same slices."
    from fastai.learner import Learner
    from mriseg.splits import load_split
    from mriseg.losses import DiceBCELoss
    from mriseg.metrics import region_dice_metrics
    from mriseg.model import load_model
    from mriseg.train import seg_dataloaders
    model, cfg = load_model(run/'model')
    t = cfg['train']
    dls = seg_dataloaders(data, bs=t['bs'], size=t['size'], n_per_epoch=t['n_per_epoch'], valid_n=t['valid_n'],
                          split=load_split(run/'split.csv'), cache=run/'cache', device='cpu', progress=False)
    learn = Learner(dls, model, loss_func=DiceBCELoss(), metrics=region_dice_metrics(cfg['regions']))
    with learn.no_bar(): return cfg["epoch"], list(learn.validate()[1:])

# a torchvision ResNet; timm encoders (ConvNeXt, and the cpu preset's PVT v2) with attention gates on the skips
NETWORKS = {'resnet18': ['--arch', 'resnet18'], 'convnext_atto-gated': ['--arch', 'convnext_atto', '--attention-gates'],
            'pvt_v2_b0-gated': ['--arch', 'pvt_v2_b0', '--attention-gates']}

@pytest.mark.parametrize('net', list(NETWORKS))
def test_ddp_run_on_cpu_writes_one_run_and_resumes(tmp_path, net):
    from mriseg.phantom import toy_cohort
    data, run = tmp_path/'data', tmp_path/'run'
    toy_cohort(data, n=6)
    r = torchrun('train', data, '--out', run, '--epochs', 2, *SETTINGS, *NETWORKS[net])
    assert r.stdout.count('best model:') == 1  # rank 0 speaks for the run
    assert {p.name for p in run.iterdir()} == {'split.csv', 'data.json', 'cache', 'history.csv', 'curves.png', 'model', 'checkpoint.pth'}
    hist = pd.read_csv(run/'history.csv')
    assert hist.epoch.tolist() == [0, 1]
    epoch, dices = single_process_dice(run, data)
    assert dices == pytest.approx(hist.iloc[epoch][['dice_WT', 'dice_TC', 'dice_ET', 'dice_mean']].tolist(), abs=DICE_TOL)
    # the run made to look stopped after its first epoch, then resumed in DDP with its own settings
    ck = torch.load(run/'checkpoint.pth', weights_only=True); ck['epoch'] = 0; torch.save(ck, run/'checkpoint.pth')
    hist.iloc[:1].to_csv(run/'history.csv', index=False)
    torchrun('train', data, '--out', run, '--resume')
    hist2 = pd.read_csv(run/'history.csv')
    assert hist2.epoch.tolist() == [0, 1] and hist2.iloc[:1].equals(hist.iloc[:1])
    ck = torch.load(run/'checkpoint.pth', weights_only=True)
    assert ck['config']['train']['arch'] == (net.split('-')[0])
    assert ck['epoch'] == 1 and not any(k.startswith('module.') for k in ck['model'])
    # the best model (the first run's, unless the resumed epoch beat it): its recorded Dice is one process's computation
    epoch, dices = single_process_dice(run, data)
    valid = json.loads((run/'model'/'model.json').read_text())['valid']
    assert dices == pytest.approx([valid[k] for k in ('dice_WT', 'dice_TC', 'dice_ET', 'dice_mean')], abs=DICE_TOL)
