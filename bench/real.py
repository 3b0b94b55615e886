"""A model on real scans: the skull-stripped BraTS-space cases in ../shared/real, against the algorithm consensus.

    .venv/bin/python bench/real.py                    # runs/demo (its model and its chosen post-processing)
    .venv/bin/python bench/real.py --model runs/x/model --tta
    .venv/bin/python bench/real.py --real /data/real --cases TCGA-FG-6692

For each case: the volume of each region (mL), its separate components (26-connected; all of them, and those of
50 mm³ or more), and where `consensus/<case>_consensus.nii.gz` exists, Dice and HD95 (brats2023) against that
consensus, which is a majority vote of five BraTS algorithms, not an expert mask. Writes
bench/results/real_<preset>.json and a montage, bench/results/real_<preset>.png: per case the FLAIR and the T1ce on
the slice with the most predicted tumour, the consensus filled and the prediction outlined. Nothing is trained or
tuned on these scans. Timings are reported, never asserted.
"""
import argparse, dataclasses, json, os, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from scipy.ndimage import label as connected_components
import torch
import mriseg
from mriseg.labels import BRATS, regions
from mriseg.io import atomic_path
from mriseg.datasets import load_case
from mriseg.datasets import find_cases
from mriseg.inference import load_members, predict_case
from mriseg.metrics import dice, hd95
from mriseg.vis import plot_case, legend_handles

from _common import cpu_model, tune_malloc  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
BIG = 50.  # mm³: a component at least this big counts as a separate finding

def real_cases(real:Path, only=None)->list:
    "The BraTS-space cases under `real` (one folder each; `raw/` and `consensus/` are not cases), with a consensus."
    refs = []
    for d in sorted(p for p in real.iterdir() if p.is_dir() and p.name not in ('raw', 'consensus')):
        if only and d.name not in only: continue
        ref, = find_cases(d)
        cons = real/'consensus'/f'{ref.case_id}_consensus.nii.gz'
        refs.append(dataclasses.replace(ref, label=cons if cons.exists() else None))
    return refs

def components(mask:np.ndarray, voxel_mm3:float)->tuple:
    "(all components, components of at least `BIG` mm³) of a boolean mask, 26-connected."
    cc, n = connected_components(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(cc.ravel())[1:] * voxel_mm3
    return int(n), int((sizes >= BIG).sum())

def score(case, labels)->dict:
    "Volumes and components of the predicted regions, and Dice / HD95 against the consensus where there is one."
    vox = float(np.prod(case.spacing))
    pred = regions(labels, BRATS)
    gt = None if case.label is None else regions(case.label, BRATS)
    row = dict(case=case.case_id)
    for i, r in enumerate(BRATS.region_names):
        n_all, n_big = components(pred[i], vox)
        row |= {f'{r}_ml': round(pred[i].sum() * vox / 1000, 2), f'{r}_components': n_all, f'{r}_components_50mm3': n_big}
        if gt is None: continue
        row |= {f'{r}_consensus_ml': round(gt[i].sum() * vox / 1000, 2),
                f'{r}_dice': round(float(dice(pred[i], gt[i])), 3),
                f'{r}_hd95_mm': round(float(hd95(pred[i], gt[i], case.spacing, definition='brats2023')), 1)}
    return row

def montage(shown:list, path:Path, title:str):
    "Per case a row: FLAIR and T1ce on the slice with the most predicted tumour; consensus filled, prediction outlined."
    fig, axs = plt.subplots(len(shown), 2, figsize=(5.6, 2.9 * len(shown) + .7), squeeze=False, layout='constrained')
    for (case, labels), row in zip(shown, axs):
        gt = False if case.label is None else case.label
        idx = int(regions(labels, BRATS)[0].sum((0, 1)).argmax()) if labels.any() else None
        plot_case(case, label=gt, pred=labels, modalities=['flair', 't1ce'], index=idx, ax=row, legend=False)
        what = 'consensus filled, prediction outlined' if case.label is not None else 'prediction (no consensus)'
        row[0].set_ylabel(f'{case.case_id}\n{what}', fontsize=8)
    fig.legend(handles=legend_handles(BRATS.region_names, True), loc='outside lower center', ncol=3, frameon=False,
               fontsize=7.5)
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp: fig.savefig(tmp, dpi=110, format='png')
    plt.close(fig)

def table(rows:list)->str:
    "The rows as a Markdown table."
    head = ['case', 'WT / TC / ET mL', 'consensus mL', 'components WT / TC / ET', '>= 50 mm³ WT / TC / ET',
            'Dice WT / TC / ET', 'HD95 WT / TC / ET (mm)']
    f = lambda r, k: ' / '.join(str(r.get(f'{x}_{k}', '–')) for x in ('WT', 'TC', 'ET'))
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        lines.append('| ' + ' | '.join([r['case'], f(r, 'ml'), f(r, 'consensus_ml'), f(r, 'components'),
                                        f(r, 'components_50mm3'), f(r, 'dice'), f(r, 'hd95_mm')]) + ' |')
    return '\n'.join(lines)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default=str(ROOT/'runs'/'demo'),
                   help='a run folder (its model and chosen post-processing), a model folder or an ensemble')
    p.add_argument('--real', default=os.environ.get('MRISEG_REAL', str(ROOT.parent/'shared'/'real')),
                   help='the folder of real cases (default $MRISEG_REAL, else ../shared/real beside the project)')
    p.add_argument('--cases', nargs='+', default=None, help='only these case ids')
    p.add_argument('--tta', action='store_true', help='flip test-time augmentation')
    p.add_argument('--native-grid', dest='resample', action='store_false',
                   help="predict on the scans' own 1 mm voxels, not at the model's training voxel size")
    p.add_argument('--name', default=None, help='results name: real_<name>.json/.png; default the preset')
    p.add_argument('--out', default=str(ROOT/'bench'/'results'), help='where the JSON and the montage go')
    p.add_argument('--threads', type=int, default=None, help="torch CPU threads; default: torch's own")
    args = p.parse_args()
    real = Path(args.real)
    if not real.is_dir(): raise SystemExit(f'{real}: no folder of real cases here; give --real')
    if args.threads: torch.set_num_threads(args.threads)
    tune_malloc()
    members, rules, source = load_members(args.model)
    preset = (members[0][1].get('train') or {}).get('preset', 'model')
    name = args.name or preset
    rows, shown, t0 = [], [], time.perf_counter()
    for ref in real_cases(real, args.cases):
        case = load_case(ref)
        t = time.perf_counter()
        labels = predict_case(members, case, tta=args.tta, rules=rules, resample=args.resample)
        rows.append(score(case, labels) | dict(predict_s=round(time.perf_counter() - t, 1)))
        shown.append((case, labels))
        print(json.dumps(rows[-1]))
    out = Path(args.out)
    montage(shown, out/f'real_{name}.png', f'{source} on real scans (nothing trained on them)')
    res = dict(bench='real', model=str(source), preset=preset, tta=args.tta, resample=args.resample, postprocessing=rules, cpu=cpu_model(),
               torch_threads=torch.get_num_threads(), mriseg=mriseg.__version__,
               date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
               wall_s=round(time.perf_counter() - t0, 1), cases=rows)
    with atomic_path(out/f'real_{name}.json') as tmp: Path(tmp).write_text(json.dumps(res, indent=1) + '\n')
    print(table(rows))
    print(f"{cpu_model()}, {torch.get_num_threads()} threads: {res['wall_s']} s; "
          f"{out/f'real_{name}.json'}, {out/f'real_{name}.png'}")

if __name__ == '__main__': main()
