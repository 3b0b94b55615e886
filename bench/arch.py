"""Architectures side by side: each network trained at one preset's budget on one cohort and split, scored on the
held-out test patients.

For each network: `mriseg.train.train` with the preset's settings for 10 epochs (`--epochs`): the same slices per
epoch, slice size, batch size, learning rate and seed; only the network changes, each named in full (`NETS`: the
encoder, `last_cross`, attention gates, self-attention), then `predict_cases` on the test patients of the run's
split (no TTA, no post-processing) and `evaluate` with the `brats2023` definition. Reported per network: test Dice and
HD95 per region (mean over patients), weights, seconds per training slice (the training phase of every epoch,
validation left out) and per predicted case (load, predict, write).

    .venv/bin/python bench/arch.py                        # cpu preset, the demo's cohort (data/phantom-demo)
    .venv/bin/python bench/arch.py --nets resnet18 convnext_atto --epochs 2
    .venv/bin/python bench/arch.py --seeds 1 2 --merge      # more seeds, added to the JSON already there
    .venv/bin/python bench/arch.py --device cuda --preset gpu --data data/phantom-full

Prints a table, writes bench/results/arch_<device>.json and the plot bench/results/arch_<device>.png (test Dice
against seconds per predicted case). With several seeds (`--seeds`; the patient split stays that of seed 0, the
seed changes the initial weights and the slices drawn), the table gives each network's mean over its seeds and the
JSON keeps every run. Timings are reported, never asserted.
"""
import argparse, itertools, json, os, resource, shutil, sys, time
from datetime import datetime, timezone
from pathlib import Path
import torch
import fastai.learner
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
import mriseg
from mriseg.datasets import find_cases
from mriseg.inference import predict_cases
from mriseg.evaluate import evaluate
from mriseg.model import load_model, TIMM_ARCHS
from mriseg.runtime import bf16_pays
from mriseg.preprocess import PrepCache, PrepConfig
from mriseg.splits import split_cases, run_cases
from mriseg.settings import train_settings
from mriseg.train import train

from _common import cpu_model, tune_malloc  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
# name -> the settings that make the network; the rest is the preset's
NETS = {'resnet18': dict(arch='resnet18'),
        'resnet18+gates': dict(arch='resnet18', attention_gates=True),
        'resnet18+self-attn': dict(arch='resnet18', self_attention=True),
        'resnet18+last-cross': dict(arch='resnet18', last_cross=True),
        'resnet34': dict(arch='resnet34'),
        **{a: dict(arch=a) for a in TIMM_ARCHS},
        # ConvNeXt and PVT start at 1/4 of the slice: no skip at 1/2; the last cross brings the input back at full size
        'convnext_atto+last-cross': dict(arch='convnext_atto', last_cross=True),
        'pvt_v2_b0+last-cross': dict(arch='pvt_v2_b0', last_cross=True)}
NETS = {k: dict(dict(last_cross=False, attention_gates=False, self_attention=False), **v) for k, v in NETS.items()}
BUDGET = dict(epochs=10)  # with the preset's slices per epoch, size, batch and lr: every network the same
REGIONS = ('WT', 'TC', 'ET')

class TrainPhase(Callback):
    "Wall and process CPU seconds of each epoch's training phase (`before_train` to `after_train`), slices seen."
    order, runs = -100, []
    def before_train(self): self.t, self.r, self.n = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF), 0
    def after_batch(self):
        if self.training: self.n += len(self.xb[0])
    def after_train(self):
        if self.learn.dls.device.type == 'cuda': torch.cuda.synchronize()
        r = resource.getrusage(resource.RUSAGE_SELF)
        TrainPhase.runs.append(dict(wall=time.perf_counter() - self.t, slices=self.n,
                                    cpu=r.ru_utime + r.ru_stime - self.r.ru_utime - self.r.ru_stime))

def bench_net(name, seed, data, work, args, cache, split):
    "Train, predict and score one network; its row of the table."
    s = dict(NETS[name], epochs=args.epochs)
    run = work/f'{name}-seed{seed}'
    if run.exists(): shutil.rmtree(run)
    TrainPhase.runs = []
    t = time.perf_counter()
    train(data, run, preset=args.preset, cache=cache, device=args.device, split=split, seed=seed, **s)
    train_wall = time.perf_counter() - t
    model, cfg = load_model(run/'model')
    refs = run_cases(run, data, 'test')
    t = time.perf_counter()
    predict_cases(run/'model', refs, run/'predictions', device=args.device, progress=False, overwrite=True)
    pred_s = (time.perf_counter() - t) / len(refs)
    per_case, summary = evaluate(run/'predictions', refs, definition='brats2023', progress=False, verbose=False)
    summ = summary.set_index('region')
    phase = TrainPhase.runs
    slices = sum(r['slices'] for r in phase)
    row = dict(net=name, seed=seed, **{k: v for k, v in s.items() if k != 'epochs'}, epochs=cfg['train']['epochs'],
               params=sum(p.numel() for p in model.parameters()), best_epoch=cfg.get('epoch'),
               s_per_train_slice=sum(r['wall'] for r in phase) / slices,
               cpu_s_per_train_slice=sum(r['cpu'] for r in phase) / slices,
               train_wall_s=round(train_wall, 1), s_per_case=pred_s, test_cases=len(refs),
               **{f'dice_{r}': float(summ.loc[r, 'dice_mean']) for r in REGIONS},
               **{f'hd95_{r}': float(summ.loc[r, 'hd95_mean']) for r in REGIONS},
               **{f'hd95_median_{r}': float(summ.loc[r, 'hd95_median']) for r in REGIONS})
    row['dice_mean'] = sum(row[f'dice_{r}'] for r in REGIONS) / len(REGIONS)
    row.update(et_cases(per_case))
    return row

def et_cases(per_case)->dict:
    "How the test patients without enhancing tumour fared: each scores ET Dice 1 if predicted empty, else 0."
    et = per_case[per_case.region == 'ET']
    none = et[et.targ_voxels == 0]
    return dict(no_et_patients=len(none), no_et_with_false_et=int((none.pred_voxels > 0).sum()),
                false_et_voxels=[int(v) for v in none.pred_voxels],
                et_dice_with_et=float(et[et.targ_voxels > 0].dice.mean()))

NUMBERS = ('params', 'dice_WT', 'dice_TC', 'dice_ET', 'dice_mean', 'hd95_WT', 'hd95_TC', 'hd95_ET', 's_per_train_slice',
           's_per_case', 'no_et_with_false_et', 'no_et_patients', 'et_dice_with_et')

def by_net(rows)->list:
    "One row per network, in the order first met: the mean of its seeds' rows, the seeds and the spread of mean Dice."
    out = {}
    for r in rows: out.setdefault(r['net'], []).append(r)
    def mean(rs):
        m = {k: sum(r[k] for r in rs) / len(rs) for k in NUMBERS}
        d = [r['dice_mean'] for r in rs]
        return dict(net=rs[0]['net'], seeds=[r['seed'] for r in rs], dice_mean_range=max(d) - min(d), **m)
    return [mean(rs) for rs in out.values()]

def table(rows)->str:
    "The rows, averaged over seeds, as a Markdown table."
    head = ('| network | weights | Dice WT | TC | ET | mean (range over seeds) | HD95 WT | TC | ET (mm) '
            '| ET Dice, patients with ET | patients without ET given some | ms / training slice | s / case |\n'
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    fmt = lambda r: (f"| {r['net']} | {r['params'] / 1e6:.1f} M | "
                     + ' | '.join(f"{r[f'dice_{g}']:.3f}" for g in REGIONS)
                     + f" | {r['dice_mean']:.3f}" + (f" ({r['dice_mean_range']:.3f})" if len(r['seeds']) > 1 else '')
                     + ' | ' + ' | '.join(f"{r[f'hd95_{g}']:.1f}" for g in REGIONS)
                     + f" | {r['et_dice_with_et']:.3f} | {r['no_et_with_false_et']:.1f} of {r['no_et_patients']:.0f}"
                     + f" | {1000 * r['s_per_train_slice']:.1f} | {r['s_per_case']:.2f} |")
    return '\n'.join([head] + [fmt(r) for r in by_net(rows)])

def plot(rows, path, title):
    "Test Dice against seconds per predicted case: a panel per region and one for their mean, a colour per network."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    nets = by_net(rows)
    fig, axs = plt.subplots(1, 4, figsize=(13, 3.6), dpi=110, sharex=True)
    for ax, g in zip(axs, [*REGIONS, 'mean']):
        for k, r in enumerate(nets):
            ax.scatter(r['s_per_case'], r[f'dice_{g}'], s=40, color=plt.cm.tab20(k % 20),
                       marker='o' if k < 10 else 's', label=r['net'], edgecolor='k', linewidth=0.4)
        ax.set(title=g if g != 'mean' else 'mean of WT, TC, ET', xlabel='s per predicted case')
        ax.grid(alpha=.3)
    axs[0].set_ylabel('test Dice (brats2023)')
    fig.legend(*axs[0].get_legend_handles_labels(), loc='center right', fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.83, 1)); fig.savefig(path); plt.close(fig)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--nets', nargs='+', default=list(NETS), choices=list(NETS), help='networks (default all)')
    p.add_argument('--preset', default='cpu', choices=['cpu', 'gpu'])
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--data', default=None, help="labelled dataset; default the demo's phantom cohort, made if absent")
    p.add_argument('--seeds', type=int, nargs='+', default=[0], help='training seeds (the split stays seed 0\'s)')
    p.add_argument('--merge', action='store_true', help='add to the rows of the JSON already there (same net and '
                   'seed: replaced)')
    p.add_argument('--epochs', type=int, default=BUDGET['epochs'], help='epochs, every network the same (default 10)')
    p.add_argument('--work', default=None, help='folder for the runs and predictions (default bench/runs/arch)')
    p.add_argument('--json', default=None, help='default bench/results/arch_<device>.json (the plot: .png beside it)')
    p.add_argument('--report', action='store_true', help='the table and the plot from the JSON; train nothing')
    args = p.parse_args()
    if args.report: return report(Path(args.json) if args.json else ROOT/'bench'/'results'/f'arch_{args.device}.json')
    tune_malloc()
    dev = torch.device(args.device)
    if dev.type == 'cuda' and not torch.cuda.is_available(): sys.exit('arch.py: --device cuda but torch sees no GPU')
    data = Path(args.data) if args.data else ROOT/'data'/'phantom-demo'
    if not args.data and not data.exists():
        from mriseg.phantom import make_phantom_cohort
        make_phantom_cohort(data, n=40, shape=(96, 96, 64))  # what `mriseg demo` makes
    work = Path(args.work) if args.work else ROOT/'bench'/'runs'/'arch'
    work.mkdir(parents=True, exist_ok=True)
    cache = work/'cache'  # one preprocessing cache for every network, built before the first is timed
    labelled = [r for r in find_cases(data) if r.label is not None]
    PrepCache(cache, PrepConfig()).build(labelled, progress=False)
    s = train_settings(args.preset, epochs=args.epochs)
    split = split_cases([r.case_id for r in labelled], s.valid_pct, s.test_pct, seed=0)  # every run the same
    out = Path(args.json) if args.json else ROOT/'bench'/'results'/f'arch_{dev.type}.json'
    old = json.loads(out.read_text())['rows'] if args.merge and out.exists() else []
    old = [dict(r, seed=r.get('seed', 0)) for r in old]
    # every Learner times itself, and logs each epoch as a line rather than a progress bar
    fastai.learner.defaults.callbacks = [c for c in fastai.learner.defaults.callbacks if c is not ProgressCallback]
    fastai.learner.defaults.callbacks.append(TrainPhase)
    load = os.getloadavg()[0]
    rows = []
    for seed, name in itertools.product(args.seeds, args.nets):
        print(f'--- {name}, seed {seed}', flush=True)
        rows.append(bench_net(name, seed, data, work, args, cache, split))
        r = rows[-1]
        print(f"{name} (seed {seed}): Dice WT {r['dice_WT']:.3f} TC {r['dice_TC']:.3f} ET {r['dice_ET']:.3f}, "
              f"{1000 * r['s_per_train_slice']:.1f} ms/training slice, {r['s_per_case']:.2f} s/case", flush=True)
    device_name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else cpu_model()
    new = {(r['net'], r['seed']) for r in rows}
    rows = [r for r in old if (r['net'], r['seed']) not in new] + rows
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(date=datetime.now(timezone.utc).isoformat(timespec='seconds'), mriseg=mriseg.__version__,
                torch=torch.__version__, device=str(dev), device_name=device_name, cores=len(os.sched_getaffinity(0)),
                torch_threads=torch.get_num_threads(), bf16=bf16_pays(dev), load_before=load,
                load_after=os.getloadavg()[0],
                data=str(data), preset=args.preset, settings=s.to_dict(),
                definition='brats2023', tta=False, postprocessing=False)
    out.write_text(json.dumps(dict(meta, rows=rows), indent=2))
    report(out)

def report(path):
    "The table and the plot of the runs in the JSON at `path`."
    d = json.loads(path.read_text())
    rows = [dict(r, seed=r.get('seed', 0)) for r in d['rows']]
    print(f"{d['preset']} preset, {d['device_name']}, {d['torch_threads']} torch threads, "
          f"{'bf16' if d['bf16'] else 'float32'}; {rows[0]['test_cases']} test patients\n")
    print(table(rows))
    plot(rows, path.with_suffix('.png'), f"{d['preset']} preset, {rows[0]['test_cases']} test patients, "
         f"{d['device_name']}")
    print(f'\nwrote {path} and {path.with_suffix(".png")}')

if __name__ == '__main__':
    main()
