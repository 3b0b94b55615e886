"""The BraTS protocol on the phantom, side by side: the single demo model, the 5-fold axial ensemble and a triplanar
ensemble, each scored on the same held-out test patients with and without its chosen post-processing.

- single: `train` at the preset (the demo's model); post-processing chosen on its validation patients
  (`tune_postprocessing`).
- folds: `train_folds` with 5 folds around the same test set; post-processing chosen on the out-of-fold predictions
  of every non-test patient (`finish_cv`); the ensemble averages the 5 fold models.
- triplanar: the single model (axial) and two more trained on the same split on coronal and sagittal slices;
  post-processing chosen on the validation patients, predicted by the three together.

Every prediction averages left-right flips (`--tta`, as `mriseg demo` predicts). Scores are the `brats2023`
definition's, means over the test patients. Each variant's CPU seconds (this process's user + system time) are
given for its training and for predicting the test patients.

    .venv/bin/python bench/protocol.py                   # cpu preset, the demo's cohort (data/phantom-demo)
    .venv/bin/python bench/protocol.py --report          # the table again, from the JSON

Prints a table and writes bench/results/protocol_<device>.json. Timings are reported, never asserted.
"""
import argparse, json, os, resource, shutil, sys, time
from datetime import datetime, timezone
from pathlib import Path
import torch
import mriseg
from mriseg.datasets import find_cases
from mriseg.datasets import load_case
from mriseg.evaluate import evaluate, load_prediction
from mriseg.inference import predict_cases, load_members
from mriseg.run import RULES, write_ensemble
from mriseg.runtime import bf16_pays
from mriseg.protocol import train_folds, tune_postprocessing, choose_postprocessing, voxel_mm3
from mriseg.settings import train_settings
from mriseg.splits import run_cases, load_split
from mriseg.train import train

from _common import cpu_model, tune_malloc  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ('WT', 'TC', 'ET')

class CPU:
    "Wall and CPU seconds (this process, user + system) of a block."
    def __enter__(self):
        self.t, self.r = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF); return self
    def __exit__(self, *exc):
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.wall = time.perf_counter() - self.t
        self.cpu = r.ru_utime + r.ru_stime - self.r.ru_utime - self.r.ru_stime

def score(pred_dir, refs)->dict:
    "Mean Dice and HD95 per region of the predictions in `pred_dir` (brats2023)."
    _, s = evaluate(pred_dir, refs, definition='brats2023', progress=False, verbose=False)
    s = s.set_index('region')
    return {**{f'dice_{r}': float(s.loc[r, 'dice_mean']) for r in REGIONS},
            **{f'hd95_{r}': float(s.loc[r, 'hd95_mean']) for r in REGIONS}}

def test_rows(name, source, refs, work, device, train_cpu, train_wall):
    "Two rows for one variant: its test predictions without post-processing, and with the rules in `source`."
    members, rules = load_members(source, device)[:2]
    rows = []
    for pp in (False, True):
        out = work/f'{name}-test-{"pp" if pp else "raw"}'
        with CPU() as c:
            if pp: predict_cases(source, refs, out, tta=True, device=device, progress=False, overwrite=True)
            else: predict_cases(members, refs, out, tta=True, min_size=0, device=device, progress=False, overwrite=True)
        rows.append(dict(variant=name, postprocessing=pp, rules=rules if pp else None, members=len(members),
                         train_cpu_s=train_cpu, train_wall_s=train_wall, predict_cpu_s_per_case=c.cpu / len(refs),
                         predict_wall_s_per_case=c.wall / len(refs), **score(out, refs)))
    return rows

def triplanar_rules(folder, data, split_run, device):
    "Post-processing for the ensemble in `folder`, chosen on the validation patients of `split_run` it predicts."
    refs = run_cases(split_run, data, 'valid')
    pred = folder/'valid'
    predict_cases(load_members(folder, device)[0], refs, pred, tta=True, min_size=0, device=device, progress=False,
                  overwrite=True)
    pairs = []
    for r in refs:
        case = load_case(r)
        pairs.append((load_prediction(pred/f'{r.case_id}.nii.gz', case), case.label))
    rules, _ = choose_postprocessing(pairs, refs[0].scheme, voxel_mm3=voxel_mm3(refs))
    return rules

def run(args):
    dev = torch.device(args.device)
    data = Path(args.data) if args.data else ROOT/'data'/'phantom-demo'
    if not args.data and not data.exists():
        from mriseg.phantom import make_phantom_cohort
        make_phantom_cohort(data, n=40, shape=(96, 96, 64))  # what `mriseg demo` makes
    work = Path(args.work) if args.work else ROOT/'bench'/'runs'/'protocol'
    if work.exists(): shutil.rmtree(work)
    work.mkdir(parents=True)
    cache = work/'cache'
    kw = dict(preset=args.preset, cache=cache, device=args.device, **({'epochs': args.epochs} if args.epochs else {}))
    rows = []
    # the single model, as `mriseg demo` trains it; the cache it builds serves every later run
    single = work/'single'
    with CPU() as c:
        train(data, single, **kw)
        tune_postprocessing(single, data, device=args.device, progress=False)
    refs = run_cases(single, data, 'test')
    rows += test_rows('single', single, refs, work, args.device, c.cpu, c.wall)
    # the cross-validation: 5 folds around the same test patients, post-processing from the out-of-fold predictions
    folds = work/'folds'
    with CPU() as c: train_folds(data, folds, args.folds, progress=False, **kw)
    test_ids = sorted(r.case_id for r in refs)
    assert sorted(r.case_id for r in run_cases(folds/'fold_0', data, 'test')) == test_ids, 'folds: another test set'
    rows += test_rows(f'{args.folds}-fold axial', folds, refs, work, args.device, c.cpu, c.wall)
    # triplanar: the single (axial) model and a coronal and a sagittal one, trained on the same split
    split = load_split(single/'split.csv')
    with CPU() as c:
        for axis in ('coronal', 'sagittal'): train(data, work/axis, axis=axis, split=split, **kw)
        tri = work/'triplanar'
        write_ensemble(tri, [single/'model', work/'coronal'/'model', work/'sagittal'/'model'])
        write_ensemble(tri, [single/'model', work/'coronal'/'model', work/'sagittal'/'model'],
                       postprocessing=triplanar_rules(tri, data, single, args.device), overwrite=True)
    single_cpu = rows[0]['train_cpu_s']
    rows += test_rows('triplanar', tri, refs, work, args.device, single_cpu + c.cpu, rows[0]['train_wall_s'] + c.wall)
    return rows, data

def table(rows)->str:
    head = ('| variant | post-processing | Dice WT | TC | ET | HD95 WT | TC | ET (mm) | training, CPU s | '
            'predicting, CPU s / case |\n|---|---|---|---|---|---|---|---|---|---|')
    def pp(r):
        if not r['postprocessing']: return 'none'
        kept = [f"{k} {g} {v}" for k in RULES for g, v in (r['rules'] or {}).get(k, {}).items()]
        return 'chosen: ' + (', '.join(kept) or 'none kept')
    fmt = lambda r: (f"| {r['variant']} | {pp(r)} | " + ' | '.join(f"{r[f'dice_{g}']:.3f}" for g in REGIONS) + ' | '
                     + ' | '.join(f"{r[f'hd95_{g}']:.1f}" for g in REGIONS)
                     + f" | {r['train_cpu_s']:.0f} | {r['predict_cpu_s_per_case']:.1f} |")
    return '\n'.join([head] + [fmt(r) for r in rows])

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', default='cpu', choices=['cpu', 'gpu'])
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--data', default=None, help="labelled dataset; default the demo's phantom cohort, made if absent")
    p.add_argument('--folds', type=int, default=5)
    p.add_argument('--epochs', type=int, default=None, help="override the preset's epochs (a quick try)")
    p.add_argument('--work', default=None, help='folder for the runs (default bench/runs/protocol; replaced)')
    p.add_argument('--json', default=None, help='default bench/results/protocol_<device>.json')
    p.add_argument('--report', action='store_true', help='the table from the JSON; train nothing')
    args = p.parse_args()
    out = Path(args.json) if args.json else ROOT/'bench'/'results'/f'protocol_{torch.device(args.device).type}.json'
    if args.report:
        d = json.loads(out.read_text())
        return print(f"{d['preset']} preset, {d['device_name']}\n\n{table(d['rows'])}")
    tune_malloc()
    dev = torch.device(args.device)
    if dev.type == 'cuda' and not torch.cuda.is_available(): sys.exit('protocol.py: --device cuda but no GPU')
    load = os.getloadavg()[0]
    rows, data = run(args)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else cpu_model()
    s = train_settings(args.preset, **({'epochs': args.epochs} if args.epochs else {}))
    meta = dict(date=datetime.now(timezone.utc).isoformat(timespec='seconds'), mriseg=mriseg.__version__,
                torch=torch.__version__, device=str(dev), device_name=name, cores=len(os.sched_getaffinity(0)),
                torch_threads=torch.get_num_threads(), bf16=bf16_pays(dev), load_before=load,
                load_after=os.getloadavg()[0], data=str(data), preset=args.preset,
                settings=s.to_dict(),
                definition='brats2023', tta=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(meta, rows=rows), indent=2, default=lambda o: o.tolist() if hasattr(o, 'tolist')
                              else str(o)))
    print(f"\n{args.preset} preset, {name}, {torch.get_num_threads()} torch threads\n\n{table(rows)}\n\nwrote {out}")

if __name__ == '__main__':
    main()
