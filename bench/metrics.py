"""mriseg's evaluator beside the BraTS 2023 leaderboard code, on one folder of predictions: the same scores, and the time per case.

    python bench/metrics.py PRED_DIR DATASET --official PATH_TO/BraTS-2023-Metrics [--out bench/results/metrics.json]

PATH_TO/BraTS-2023-Metrics is a checkout of github.com/rachitsaluja/BraTS-2023-Metrics (its metrics.py and bundled
surface_distance; it needs `pip install connected-components-3d`). Both are timed on the same files: the official code
from the NIfTI files (as the leaderboard runs it, masks in BraTS 2023 label values), mriseg's from the loaded case.
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np
import nibabel as nib
sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_model
from mriseg.datasets import find_cases, load_case
from mriseg.evaluate import evaluate_case, load_prediction

def official_case(m, pred, gt):
    "The leaderboard's scores of one case per region, aggregated as its get_LesionWiseResults does (pandas 2 safe)."
    out = {}
    for region in ('WT', 'TC', 'ET'):
        tp, fn, fp, gt_tp, pairs, full_dice, full_hd95, *_ = m.get_LesionWiseScores(str(pred), str(gt), region, 3)
        kept = [p for p in pairs if p[2] > 50]
        n = len(kept) + len(fp)
        hd = lambda h: 374. if np.isinf(h) else float(h)
        out[region] = dict(dice=float(full_dice), hd95=hd(full_hd95),
                           lesion_dice=sum(p[3] for p in kept) / n if n else 1.,
                           lesion_hd95=(sum(hd(p[4]) for p in kept) + 374 * len(fp)) / n if n else 0.)
    return out

def as_brats2023(src, dst, lut):
    "A copy of a label file in BraTS 2023 values (enhancing 3), as the official code reads them"
    img = nib.load(src)
    nib.save(nib.Nifti1Image(lut[np.asanyarray(img.dataobj).astype(np.int64)].astype(np.uint8), img.affine, img.header), dst)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('pred'); ap.add_argument('data'); ap.add_argument('--official', required=True)
    ap.add_argument('--out', default=Path(__file__).parent/'results'/'metrics.json')
    a = ap.parse_args()
    np.Inf, np.NaN = np.inf, np.nan  # the official bundle still uses numpy 1's names
    sys.path.insert(0, a.official)
    import metrics as official
    refs = [r for r in find_cases(a.data) if (Path(a.pred)/f'{r.case_id}.nii.gz').exists()]
    worst, t_ours, t_theirs = {}, [], []
    with tempfile.TemporaryDirectory() as d:
        for ref in refs:
            lut = np.zeros(256, np.int64)
            for raw, canon in ref.scheme.raw_map.items(): lut[raw] = {4: 3}.get(canon, canon)
            pred, gt = Path(d)/'pred.nii.gz', Path(d)/'gt.nii.gz'
            as_brats2023(Path(a.pred)/f'{ref.case_id}.nii.gz', pred, lut); as_brats2023(ref.label, gt, lut)
            t0 = time.perf_counter(); theirs = official_case(official, pred, gt); t_theirs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            case = load_case(ref)
            rows = evaluate_case(load_prediction(Path(a.pred)/f'{ref.case_id}.nii.gz', case), case.label, case.spacing,
                                 case.scheme, 'brats2023')
            t_ours.append(time.perf_counter() - t0)
            for r in rows:
                for k, v in theirs[r['region']].items():
                    worst[k] = max(worst.get(k, 0.), abs(r[k] - v))
    res = dict(cpu=cpu_model(), cases=len(refs), max_abs_difference=worst, seconds_per_case_mriseg=float(np.mean(t_ours)),
               seconds_per_case_official=float(np.mean(t_theirs)), speedup=float(np.mean(t_theirs) / np.mean(t_ours)))
    print(json.dumps(res, indent=1))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + '\n')

if __name__ == '__main__': main()
