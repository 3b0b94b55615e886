"""`torch.compile` on the U-Net as the `Learner` trains it, against eager mode, on the CPU preset: seconds per epoch.

Builds `seg_dataloaders` + `seg_learner` on a phantom cohort (made in a temporary folder, 12 cases at 96x96x64 unless
--data is given) and fits the same epochs twice, eager and compiled (`seg_learner(compile=True)`, which is
`mriseg.model.compile_model`). The first compiled epoch includes the compilation; the steady epochs are reported
apart. Prints the figures and writes bench/results/compile_<device>.json (or --json). Timings are reported, never
asserted.

    .venv/bin/python bench/compile.py
    .venv/bin/python bench/compile.py --device cuda --preset gpu --data DIR
"""
import argparse, json, platform, statistics, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import torch
from fastai.callback.core import Callback
import mriseg
from mriseg.settings import PRESETS, train_settings
from mriseg.train import seg_dataloaders, seg_learner

from _common import cpu_model, tune_malloc  # bench/ is on sys.path when a script runs

class EpochTimes(Callback):
    "Wall seconds of each epoch's training part."
    order = 99
    def before_fit(self): self.times = []
    def before_train(self): self.t = time.perf_counter()
    def after_train(self): self.times.append(time.perf_counter() - self.t)

def fit(data, s, device, compile, epochs):
    torch.manual_seed(0)
    dls = seg_dataloaders(data, **s.to_dict(),
                          device=device, progress=False)
    learn = seg_learner(dls, compile=compile, cbs=EpochTimes())
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, s.lr)
    return learn.epoch_times.times, learn.recorder.values[-1][-1]

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data'); ap.add_argument('--device', default='cpu'); ap.add_argument('--preset', default='cpu')
    ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--json')
    a = ap.parse_args()
    tune_malloc()
    s = train_settings(a.preset)
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data
        if data is None:
            from mriseg.phantom import make_phantom_cohort
            data = Path(tmp)/'phantom'; make_phantom_cohort(data, n=12, shape=(96, 96, 64), n_workers=1)
        res = {}
        for name, comp in (('eager', False), ('compiled', True)):
            try:
                times, dice = fit(data, s, a.device, comp, a.epochs)
                res[name] = dict(first_epoch_s=times[0], steady_epoch_s=statistics.median(times[1:]), valid_dice_mean=dice)
            except Exception as e: res[name] = dict(error=f'{type(e).__name__}: {str(e)[:300]}')
            print(name, res[name])
    if 'steady_epoch_s' in res.get('compiled', {}):
        res['speedup'] = res['eager']['steady_epoch_s'] / res['compiled']['steady_epoch_s']
        res['compile_s'] = res['compiled']['first_epoch_s'] - res['compiled']['steady_epoch_s']
        print(f"compiled: {res['speedup']:.2f}x the eager speed per epoch once compiled; compiling took about "
              f"{res['compile_s']:.0f} s")
    out = dict(what=__doc__.split('\n')[0], cpu=cpu_model(), device=a.device, preset=a.preset, epochs=a.epochs,
               torch=torch.__version__, mriseg=mriseg.__version__, python=platform.python_version(),
               gpu=torch.cuda.get_device_name() if a.device.startswith('cuda') else None,
               when=datetime.now(timezone.utc).isoformat(timespec='seconds'), **res)
    path = Path(a.json or Path(__file__).parent/'results'/f"compile_{a.device.split(':')[0]}.json")
    path.parent.mkdir(parents=True, exist_ok=True); path.write_text(json.dumps(out, indent=1))
    print(f"{out['cpu']}; written {path}")

if __name__ == '__main__': main()
