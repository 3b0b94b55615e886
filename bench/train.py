"""Training slices/s end to end (what `mriseg.train.train` runs) against the model step alone, as a ratio.

End to end: phantom cases -> `PrepCache` -> `slice_dataloaders` (tumour-aware slices read from the
memory-mapped cache, `SegAugment` on the device) -> a fastai `Learner` with `DiceBCELoss` and the
region Dice metrics, `fit_one_cycle`; timed over the training batches of each epoch.
Model step alone: the same network, batch size, dtype and slice size on one batch already in memory
(forward, `DiceBCELoss`, backward, AdamW step). The two alternate, trial by trial, so both see the
same load on the machine; the medians are reported, and the ratio both of the medians and as the
median of each trial's back-to-back pair.

    .venv/bin/python bench/train.py                          # cpu preset on a 10-case (96,96,64) phantom
    .venv/bin/python bench/train.py --breakdown              # also time the parts, to see where the time goes
    .venv/bin/python bench/train.py --device cuda --preset gpu

Prints the figures and writes bench/results/train_<device>.json (or --json). Timings are reported,
never asserted.
"""
import argparse, json, os, platform, resource, statistics, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import torch
import fastai
from fastai.learner import Learner
from fastai.callback.core import Callback
from fastai.callback.schedule import fit_one_cycle  # noqa: F401 (patches Learner)
from fastai.callback.fp16 import to_bf16  # noqa: F401 (patches Learner)
from fastai.callback.channelslast import to_channelslast  # noqa: F401 (patches Learner)
from fastai.optimizer import Adam
import mriseg
from mriseg.io import MODALITIES
from mriseg.datasets import find_cases
from mriseg.preprocess import PrepCache, PrepConfig
from mriseg.splits import split_cases
from mriseg.data import slice_dataloaders
from mriseg.losses import DiceBCELoss
from mriseg.metrics import region_dice_metrics
from mriseg.model import create_model
from mriseg.settings import train_settings
from mriseg.run import Run, ModelConfig
from mriseg.train import RunKeeper

from _common import cpu_model, tune_malloc  # bench/ is on sys.path when a script runs

def machine_info(dev):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return dict(cores=cores, cpu_model=cpu_model(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
                fastai=fastai.__version__, python=platform.python_version(), device=str(dev),
                device_name=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else cpu_model())

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

class Clock:
    "Wall seconds of a block (the device synchronised at both ends), and this process's user and system CPU seconds and minor page faults."
    def __init__(self, dev): self.dev = dev
    def __enter__(self):
        sync(self.dev); self.t, self.r = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF); return self
    def __exit__(self, *exc):
        sync(self.dev); r = resource.getrusage(resource.RUSAGE_SELF)
        self.wall, self.user, self.sys = time.perf_counter() - self.t, r.ru_utime - self.r.ru_utime, r.ru_stime - self.r.ru_stime
        self.cpu, self.faults = self.user + self.sys, r.ru_minflt - self.r.ru_minflt
        self.stats = dict(wall_s=self.wall, cpu_s=self.cpu, sys_s=self.sys, faults=self.faults)

class TrainClock(Callback):
    "Times the training phase of each epoch (from `before_train` to `after_train`), counting its batches, and the validation phase."
    order = -100
    def __init__(self, dev): self.dev, self.runs, self.valid = dev, [], []
    def before_train(self): self.n, self.clock = 0, Clock(self.dev).__enter__(); self.ticks = [self.clock.t]
    def after_batch(self):
        if self.training: self.n += 1; self.ticks.append(time.perf_counter())
    def after_train(self):
        self.clock.__exit__()
        self.runs.append(dict(self.clock.stats, batches=self.n, batch_ms=[round(1000 * (b - a)) for a, b in zip(self.ticks, self.ticks[1:])]))
    def before_validate(self): self.vclock = Clock(self.dev).__enter__()
    def after_validate(self): self.vclock.__exit__(); self.valid.append(self.vclock.wall)

class Mark(Callback):
    "Notes the time at `after_epoch` in `marks[key]`, at callback order `order` (to time the callbacks between two marks)."
    def __init__(self, order, marks, key): self.order, self.marks, self.key = order, marks, key
    def after_epoch(self): self.marks.setdefault(self.key, []).append(time.perf_counter())

# ---------------------------------------------------------------- setup
def phantom_cases(folder, n, shape, seed=0):
    from mriseg.phantom import make_phantom_cohort
    return make_phantom_cohort(Path(folder)/'data', n=n, seed=seed, shape=tuple(shape))

def build(args, dev, tmp):
    "(settings, dls, learn): the pieces `mriseg.train.train` builds, on a phantom cohort or `args.data`."
    s = train_settings(args.preset, **({'bs': args.bs} if args.bs else {}), **({'context': args.context} if args.context else {}))
    t = time.perf_counter()
    refs = [r for r in find_cases(args.data) if r.label is not None] if args.data else phantom_cases(tmp, args.cases, args.shape)
    t_phantom = time.perf_counter() - t
    cache = PrepCache(Path(tmp)/'cache', PrepConfig())
    t = time.perf_counter(); cache.build(refs, progress=False); t_cache = time.perf_counter() - t
    split = split_cases([r.case_id for r in refs], s.valid_pct, s.test_pct, s.seed)
    sets = dict(zip(split.case_id, split['set']))
    pick = lambda name: [cache.get(r) for r in refs if sets[r.case_id] == name]
    torch.manual_seed(s.seed)
    # n_per_epoch: `batches` training batches per epoch; a one-batch validation set (not timed) keeps epochs short
    dls = slice_dataloaders(pick('train'), pick('valid'), bs=s.bs, size=s.size, context=s.context,
                            tumour_frac=s.tumour_frac, n_per_epoch=args.batches * s.bs, valid_n=s.bs,
                            device=dev, seed=s.seed)
    regions = refs[0].scheme.region_names
    model = create_model(s.arch, n_in=len(MODALITIES) * s.context, regions=regions, img_size=s.size,
                         self_attention=s.self_attention, last_cross=s.last_cross, bottle=s.bottle)
    learn = Learner(dls, model, loss_func=DiceBCELoss(s.dice_weight, s.bce_weight), metrics=region_dice_metrics(regions))
    if dev.type == 'cuda': learn.to_bf16().to_channelslast()
    # train's RunKeeper (history.csv, curves.png, best model, checkpoint after every epoch), timed between two marks
    config = ModelConfig(list(regions), PrepConfig(), s.size, s.context, train=s, preset=args.preset)
    learn.marks, learn.flush_s = {}, []
    learn.add_cbs([Mark(RunKeeper.order - 1, learn.marks, 'before_keeper'), RunKeeper(Run(Path(tmp)/'run'), config),
                   Mark(RunKeeper.order + 1, learn.marks, 'after_keeper')])
    setup = dict(cases=len(refs), shape=list(args.shape) if not args.data else None, data=str(args.data) if args.data else 'phantom',
                 phantom_s=round(t_phantom, 2), cache_build_s=round(t_cache, 2), train_slices=len(dls.train_ds.index),
                 train_cases=len(dls.train_ds.prepped))
    return s, dls, learn, setup

# ---------------------------------------------------------------- the timed parts
def fixed_batch(dls, dev):
    "One augmented training batch as plain tensors on `dev`, kept in memory."
    x, y = dls.train.one_batch()[:2]
    return x.as_subclass(torch.Tensor).to(dev).contiguous(), y.as_subclass(torch.Tensor).to(dev).contiguous()

class ModelStep:
    "forward, loss, backward and an optimiser step of `model` on a batch held in memory."
    def __init__(self, model, loss_func, dev, lr, opt='torch', amp=None):
        self.model, self.loss, self.dev = model, loss_func, dev
        params = [p for p in model.parameters() if p.requires_grad]
        # fastai's Adam defaults (betas .9/.99, eps 1e-5, decoupled wd .01), here as torch's AdamW
        self.opt = (torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01) if opt == 'torch'
                    else Adam(params, lr=lr))
        self.amp = dev.type == 'cuda' if amp is None else amp  # what learn.to_bf16().to_channelslast() does on a GPU
        if self.amp: model.to(memory_format=torch.channels_last)
    def __call__(self, x, y):
        if self.amp: x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.model(x)
            loss = self.loss(out, y)
        loss.backward()
        self.opt.step(); self.opt.zero_grad()
        return loss

def time_steps(step, x, y, n, dev):
    step.model.train()
    with Clock(dev) as c:
        for _ in range(n): step(x, y)
    return c.stats

def time_fit(learn, clock, lr):
    "One `fit_one_cycle` epoch; the seconds of its training phase."
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, lr)
    # write RunKeeper's files out now, so the disk writes do not fall on the next measurement
    t = time.perf_counter(); os.sync(); learn.flush_s.append(time.perf_counter() - t)
    return clock.runs[-1]

def time_data(dls, n, dev):
    "Iterate the training DataLoader alone: read, collate, to device, `SegAugment`."
    with Clock(dev) as c:
        k = 0
        for b in dls.train:
            k += 1
            if k == n: break
    return c.stats

def time_read(dls, n):
    "Only `SliceDataset.batch`: slices read from the memory-mapped cache into one array."
    ds, bs = dls.train_ds, dls.train.bs
    with Clock(torch.device('cpu')) as c:
        for i in range(n): ds.batch(list(range(i*bs % (len(ds) - bs), i*bs % (len(ds) - bs) + bs)))
    return c.stats

def time_aug(dls, n, dev):
    "Only `SegAugment` on a batch already on the device."
    aug = dls.train.after_batch.fs[0]
    x, y = dls.train_ds.batch(list(range(dls.train.bs)))
    b = (x.to(dev), y.to(dev))
    with Clock(dev) as c:
        for _ in range(n): aug(b, split_idx=0)
    return c.stats

# ---------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', default='cpu', choices=['cpu', 'gpu'], help='mriseg.settings.PRESETS entry: arch, slice size, bs')
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--bs', type=int, default=None, help='override the preset batch size')
    p.add_argument('--context', type=int, default=None, help='slices per modality (2.5D); default the preset\'s (1)')
    p.add_argument('--cases', type=int, default=10, help='phantom cases')
    p.add_argument('--shape', type=int, nargs=3, default=None, help='phantom shape; default 96 96 64 (cpu preset) or 240 240 155 (gpu)')
    p.add_argument('--data', default=None, help='a labelled dataset folder instead of the phantom')
    p.add_argument('--batches', type=int, default=None, help='training batches per trial; default 6 (cpu), 30 (cuda)')
    p.add_argument('--trials', type=int, default=5, help='timed trials of each kind, alternating')
    p.add_argument('--breakdown', action='store_true', help='also time reading, augmentation, the DataLoader and the fastai optimiser alone')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads; default: torch\'s own')
    p.add_argument('--mallopt', action='store_true', help='keep freed memory in the heap (glibc mallopt), to see what page faults cost')
    p.add_argument('--json', default=None, help='default bench/results/train_<device>.json')
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    if args.mallopt and not tune_malloc(): print('mallopt failed; running with glibc defaults')
    dev = torch.device(args.device)
    if dev.type == 'cuda' and not torch.cuda.is_available(): sys.exit('train.py: --device cuda but torch sees no GPU')
    args.shape = args.shape or ([96, 96, 64] if args.preset == 'cpu' else [240, 240, 155])
    args.batches = args.batches or (6 if dev.type == 'cpu' else 30)
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        s, dls, learn, setup = build(args, dev, tmp)
        bs, n = s.bs, args.batches
        print(f"\n{setup['cases']} cases ({setup['data']} {setup['shape']}: {setup['phantom_s']} s, cache {setup['cache_build_s']} s); "
              f"{s.arch} last_cross={s.last_cross} size {s.size} bs {bs}; {n} batches per trial, {args.trials} trials", flush=True)
        clock = TrainClock(dev); learn.add_cb(clock)
        x, y = fixed_batch(dls, dev)
        step = ModelStep(learn.model, learn.loss_func, dev, s.lr)
        kinds = dict(end_to_end=lambda: time_fit(learn, clock, s.lr),
                     model_only=lambda: time_steps(step, x, y, n, dev))
        if args.breakdown:
            fa_step = ModelStep(learn.model, learn.loss_func, dev, s.lr, opt='fastai')
            kinds.update(model_fastai_adam=lambda: time_steps(fa_step, x, y, n, dev),
                         dataloader=lambda: time_data(dls, n, dev),
                         read=lambda: time_read(dls, n),
                         augment=lambda: time_aug(dls, n, dev))
        for f in kinds.values(): f()  # warm up (first epoch, allocator, one-cycle set-up)
        res = {k: [] for k in kinds}
        loads = []
        for t in range(args.trials):
            order = list(kinds) if t % 2 == 0 else list(kinds)[::-1]  # alternate who goes first
            for k in order: res[k].append(kinds[k]())
            loads.append(os.getloadavg()[0])
            print(f"trial {t + 1}: " + ', '.join(f"{k} {n * bs / res[k][-1]['wall_s']:.1f}" for k in kinds) +
                  f" slices/s; load {loads[-1]:.2f}; end-to-end batches {res['end_to_end'][-1]['batch_ms']} ms", flush=True)
        written = {str(f.relative_to(Path(tmp)/'run')): round(f.stat().st_size / 2**20, 1) for f in (Path(tmp)/'run').rglob('*') if f.is_file()}
        if clock.runs[-1]['batches'] != n: print(f"warning: the timed epochs ran {clock.runs[-1]['batches']} batches, not {n}")

    keeper = [b - a for a, b in zip(learn.marks['before_keeper'], learn.marks['after_keeper'])][1:]
    valid = clock.valid[1:]  # seconds for `bs` validation slices
    med = lambda k, f='wall_s': statistics.median(r[f] for r in res[k])
    figs = {k: dict(slices_per_s=round(n * bs / med(k), 2), ms_per_batch=round(1000 * med(k) / n, 1),
                    cpu_ms_per_batch=round(1000 * med(k, 'cpu_s') / n, 1), sys_ms_per_batch=round(1000 * med(k, 'sys_s') / n, 1),
                    page_faults_per_batch=round(med(k, 'faults') / n), cpu_per_wall=round(med(k, 'cpu_s') / med(k), 2),
                    trials_slices_per_s=[round(n * bs / r['wall_s'], 2) for r in res[k]]) for k in res}
    figs['end_to_end']['trials_batch_ms'] = [r['batch_ms'] for r in res['end_to_end']]
    ratio = figs['end_to_end']['slices_per_s'] / figs['model_only']['slices_per_s']
    # each trial's pair ran back to back, so the median of the paired ratios is the steadier figure under changing load
    paired = [m['wall_s'] / e['wall_s'] for e, m in zip(res['end_to_end'], res['model_only'])]
    # a whole epoch of the preset: its training slices, its validation slices, then RunKeeper
    n_ep, n_val = s.n_per_epoch, s.valid_n or len(dls.valid_ds.index)
    t_ep = dict(train_s=n_ep / figs['end_to_end']['slices_per_s'], valid_s=n_val / bs * statistics.median(valid),
                keeper_s=statistics.median(keeper))
    epoch = dict(n_per_epoch=n_ep, valid_n=n_val, valid_slices_per_s=round(bs / statistics.median(valid), 1),
                 keeper_s_per_epoch=round(t_ep['keeper_s'], 2), keeper_s_trials=[round(k, 2) for k in keeper],
                 keeper_files_mb=written, sync_after_keeper_s=round(statistics.median(learn.flush_s[1:]), 2),
                 estimated_epoch_s={k: round(v, 1) for k, v in t_ep.items()},
                 estimated_training_slices_per_s_per_epoch=round(n_ep / sum(t_ep.values()), 2))
    load1 = os.getloadavg()
    line = lambda k: (f"{k:18s}: {figs[k]['slices_per_s']:8.1f} slices/s ({figs[k]['ms_per_batch']} ms/batch; CPU {figs[k]['cpu_ms_per_batch']} ms "
                      f"of which system {figs[k]['sys_ms_per_batch']} ms, {figs[k]['page_faults_per_batch']} page faults)")
    print(line('end_to_end')); print(line('model_only'))
    cpu_ratio = figs['model_only']['cpu_ms_per_batch'] / figs['end_to_end']['cpu_ms_per_batch']
    print(f"ratio             : {ratio:8.3f}  (end to end / model only, slices/s, of the medians; goal >= 0.9); "
          f"median of the {len(paired)} paired trials {statistics.median(paired):.3f}; by CPU time per batch {cpu_ratio:.3f}")
    for k in list(res)[2:]: print(line(k))
    print(f"one {args.preset}-preset epoch, estimated: {n_ep} training slices {t_ep['train_s']:.1f} s + {n_val} validation slices "
          f"{t_ep['valid_s']:.1f} s ({epoch['valid_slices_per_s']} slices/s) + RunKeeper {t_ep['keeper_s']:.2f} s "
          f"(writes {sum(written.values()):.0f} MB: {written}; os.sync after it {epoch['sync_after_keeper_s']} s) "
          f"= {epoch['estimated_training_slices_per_s_per_epoch']} training slices/s over the epoch")
    print(f"load average per trial: {' '.join(f'{l:.2f}' for l in loads)}; after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    out = Path(args.json or Path(__file__).parent/'results'/f'train_{dev.type}.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}
    doc = dict(bench='train', mriseg=mriseg.__version__, date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
               machine=machine_info(dev), preset=args.preset, settings=settings, setup=setup,
               batches_per_trial=n, trials=args.trials, mallopt=args.mallopt, ratio=round(ratio, 3),
               ratio_paired_median=round(statistics.median(paired), 3), ratio_paired=[round(r, 3) for r in paired], ratio_cpu_time=round(cpu_ratio, 3),
               end_to_end_slices_per_s=figs['end_to_end']['slices_per_s'], model_only_slices_per_s=figs['model_only']['slices_per_s'],
               figures=figs, epoch=epoch, load_avg_before=list(load0), load_avg_per_trial=loads, load_avg_after=list(load1),
               command=' '.join(sys.argv))
    out.write_text(json.dumps(doc, indent=1) + '\n')
    print(f"wrote {out}")

if __name__ == '__main__': main()
