"""`mriseg prepare` measured: seconds per step, registration and skull stripping against exact truth, and a real case.

    .venv/bin/python bench/prepare.py                 # the phantom study at full resolution, and the real raw case
    .venv/bin/python bench/prepare.py --real /data/real --model runs/demo

1. A phantom DICOM study (`make_phantom_study`, seed 0: skull, four series on their own grids, poses up to 15 degrees
   and 20 mm apart, a localizer), prepared twice (brain mask refined, and the template's mask alone): seconds per step,
   the mean displacement over the brain of each series' registration against its true pose, and the brain mask's Dice
   against the phantom's true brain.
2. Where `../shared/real/raw/TCGA-FG-6692` is (raw clinical scans with skull) and `../shared/real/TCGA-FG-6692` (the
   same patient after BraTS Toolkit: SRI24 space, HD-BET skull stripping): prepare's seconds per step; its brain mask
   against BraTS Toolkit's, compared in BraTS Toolkit's space after a rigid registration of the two skull-stripped
   T1ce volumes; and where a model is given (default runs/demo), the model's volumes per region from both routes,
   their agreement, and Dice against the algorithm consensus. A montage goes to bench/results/prepare_<cpu>.png.

Writes bench/results/prepare_<name>.json. Timings are reported, never asserted.
"""
import argparse, json, os, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
import nibabel as nib
from scipy.ndimage import map_coordinates
import mriseg
from mriseg.io import atomic_path
from mriseg.dicom import LPS
from mriseg.scanner import make_phantom_study
from mriseg.prepare import prepare, to_image, from_image, register, matrix_transform

from _common import cpu_model, tune_malloc  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ('WT', 'TC', 'ET')

def dice(a, b): return round(float(2*(a & b).sum()/max(a.sum() + b.sum(), 1)), 4)

def phantom_truth(study):
    rec = json.loads((study.truth/'truth.json').read_text())
    H = np.array(rec['head_affine'])
    P = {r: np.array(v['pose']) for r, v in rec['series'].items()}
    brain = np.asarray(nib.load(study.truth/'brain.nii.gz').dataobj).astype(np.float32)
    return H, P, brain

def displacement(res, H, P, brain)->dict:
    "Mean distance (mm) over the true brain between where each series' registration puts a point and where it was."
    ijk = np.argwhere(brain > 0)[::3]
    x = H @ np.c_[ijk, np.ones(len(ijk))].T
    out = {}
    for role, s in res.record['roles'].items():
        if role == 't1ce': continue
        found = np.array(s['to_source']) @ P['t1ce'] @ x
        out[role] = round(float(np.linalg.norm(found[:3] - (P[role] @ x)[:3], axis=0).mean()), 3)
    return out

def brain_dice(res, H, P, brain)->float:
    "The prepared brain mask against the phantom's true brain, on the prepared grid."
    G, shp = np.array(res.record['grid']['affine']), res.record['grid']['shape']
    ii = np.indices(shp).reshape(3, -1)
    v = np.linalg.inv(H) @ np.linalg.inv(P['t1ce']) @ G @ np.r_[ii, np.ones((1, ii.shape[1]))]
    true = map_coordinates(brain, v[:3], order=1).reshape(shp) > .5
    return dice(true, res.brain)

def phantom_part(tmp:Path)->dict:
    t = time.perf_counter()
    study = make_phantom_study(tmp/'study', seed=0)
    made = round(time.perf_counter() - t, 1)
    H, P, brain = phantom_truth(study)
    out = dict(study=dict(seed=0, made_s=made, series={r: dict(shape=v['shape'], voxel_mm=[round(float(z), 2) for z in
               np.linalg.norm(np.array(v['affine_ras'])[:3, :3], axis=0)]) for r, v in json.loads((study.truth/'truth.json').read_text())['series'].items()}))
    for strip in ('refined', 'template'):
        t = time.perf_counter()
        res = prepare(study.root, tmp/f'cases_{strip}', strip=strip, verbose=strip == 'refined')
        out[strip] = dict(wall_s=round(time.perf_counter() - t, 1), seconds=res.record['seconds'],
                          displacement_mm=displacement(res, H, P, brain), brain_dice=brain_dice(res, H, P, brain))
        print(f"phantom, brain mask {strip}: {out[strip]}")
    return out

def sitk_of(path_or_img):
    img = nib.load(str(path_or_img)) if not isinstance(path_or_img, nib.Nifti1Image) else path_or_img
    return to_image(np.asarray(img.dataobj, np.float32), LPS @ img.affine)

def centroid(img)->np.ndarray:
    arr = from_image(img)
    ijk = np.argwhere(arr > 0).mean(0)
    return np.array(img.TransformContinuousIndexToPhysicalPoint([float(x) for x in ijk]))

def into(ours_vol, ours_aff_ras, fixed, m, nearest=True):
    "A volume on our grid resampled onto `fixed` (BraTS Toolkit's grid) through `m` (theirs -> ours, LPS)."
    import SimpleITK as sitk
    img = to_image(ours_vol.astype(np.float32), LPS @ ours_aff_ras)
    return from_image(sitk.Resample(img, fixed, matrix_transform(m), sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear, 0.))

def real_part(real:Path, model, tmp:Path, png:Path)->dict|None:
    raw, theirs = real/'raw'/'TCGA-FG-6692', real/'TCGA-FG-6692'
    if not raw.is_dir() or not theirs.is_dir(): return None
    from mriseg.datasets import find_cases, load_case
    out = {}
    res = {}
    for strip in ('refined', 'template'):
        t = time.perf_counter()
        res[strip] = prepare(raw, tmp/f'real_{strip}', case='TCGA-FG-6692', strip=strip, verbose=strip == 'refined')
        out[strip] = dict(wall_s=round(time.perf_counter() - t, 1), seconds=res[strip].record['seconds'])
    tref = find_cases(theirs)[0]
    their_t1ce = nib.load(str(tref.images[1][0]))
    fixed = sitk_of(their_t1ce)
    their_brain = np.zeros(their_t1ce.shape, bool)
    for f, _ in tref.images: their_brain |= np.asarray(nib.load(str(f)).dataobj) != 0
    ours_t1ce = nib.load(str(res['refined'].ref.images[1][0]))
    moving = sitk_of(ours_t1ce)
    init = np.eye(4); init[:3, 3] = centroid(moving) - centroid(fixed)
    m, metric = register(fixed, moving, init=init, shrink=(4, 2, 1), sigmas=(2., 1., 0.), sampling=.1)
    out['registration_to_theirs'] = dict(metric=round(float(metric), 4))
    G = np.array(res['refined'].record['grid']['affine'])
    masks = {}
    for strip in ('refined', 'template'):
        masks[strip] = into(res[strip].brain, G, fixed, m) > 0
        out[strip]['brain_dice_vs_brats_toolkit'] = dice(masks[strip], their_brain)
        out[strip]['brain_ml'] = round(float(res[strip].brain.sum())/1000, 1)
    out['brats_toolkit_brain_ml'] = round(float(their_brain.sum())/1000, 1)
    print(f"real raw TCGA-FG-6692: {out}")
    shown = dict(their_t1ce=np.asarray(their_t1ce.dataobj, np.float32), their_brain=their_brain, ours_brain=masks['refined'])
    if model is not None:
        from mriseg.inference import load_members, predict_case
        from mriseg.labels import BRATS, regions
        members, rules, source = load_members(model)
        cons_f = real/'consensus'/'TCGA-FG-6692_consensus.nii.gz'
        cons = np.asarray(nib.load(str(cons_f)).dataobj).astype(np.uint8) if cons_f.exists() else None
        routes = {}
        for name, ref in (('brats_toolkit', tref), ('mriseg_prepare', res['refined'].ref)):
            case = load_case(ref)
            t = time.perf_counter()
            labels = predict_case(members, case, rules=rules)
            vox = float(np.prod(case.spacing))
            r = regions(labels, BRATS)
            routes[name] = dict(predict_s=round(time.perf_counter() - t, 1),
                                **{f'{k}_ml': round(float(r[i].sum())*vox/1000, 1) for i, k in enumerate(REGIONS)})
            # the prediction on BraTS Toolkit's grid (the file's voxel order), to compare the routes there
            lab_file = case.geometry.to_original(labels)
            on_theirs = lab_file if name == 'brats_toolkit' else into(lab_file, case.geometry.affine, fixed, m)
            routes[name]['_on_theirs'] = on_theirs.astype(np.uint8)
            if cons is not None:
                rc, rp = regions(cons, BRATS), regions(on_theirs.astype(np.uint8), BRATS)
                routes[name] |= {f'{k}_dice_vs_consensus': dice(rp[i], rc[i]) for i, k in enumerate(REGIONS)}
        a, b = (regions(routes[k].pop('_on_theirs'), BRATS) for k in ('brats_toolkit', 'mriseg_prepare'))
        out['model'] = str(source)
        out['routes'] = routes
        out['routes_agreement_dice'] = {k: dice(a[i], b[i]) for i, k in enumerate(REGIONS)}
        shown['wt'] = (a[0], b[0])
        print(f"routes: {json.dumps(routes)}; agreement {out['routes_agreement_dice']}")
    montage(shown, png)
    return out

def montage(shown, png):
    "BraTS Toolkit's T1ce: its brain mask (filled) and prepare's (outlined); the model's whole tumour from both routes."
    t1c, tb, ob = shown['their_t1ce'], shown['their_brain'], shown['ours_brain']
    cols = 3 if 'wt' in shown else 1
    fig, axs = plt.subplots(2, cols, figsize=(3.2*cols, 6.6), squeeze=False, layout='constrained')
    k = int(shown['wt'][0].sum((0, 1)).argmax()) if 'wt' in shown and shown['wt'][0].any() else t1c.shape[2]//2
    for row, (name, cut) in enumerate((('axial', lambda v: v[:, :, k].T), ('coronal', lambda v: v[:, v.shape[1]//2 + 10, :].T))):
        ax = axs[row, 0]
        ax.imshow(cut(t1c), cmap='gray', origin='lower'); ax.imshow(np.ma.masked_where(~cut(tb), cut(tb)), cmap='Blues', alpha=.3, origin='lower', vmin=0, vmax=1)
        ax.contour(cut(ob), levels=[.5], colors='orange', linewidths=.8)
        ax.set_title(f'brain masks ({name}): BraTS Toolkit filled,\nmriseg prepare outlined', fontsize=8)
        if cols == 3:
            for j, (label, wt) in enumerate((('BraTS Toolkit route', shown['wt'][0]), ('mriseg prepare route', shown['wt'][1]))):
                ax = axs[row, j + 1]
                ax.imshow(cut(t1c), cmap='gray', origin='lower')
                if wt.any(): ax.contour(cut(wt), levels=[.5], colors='red', linewidths=.8)
                ax.set_title(f'demo model, whole tumour:\n{label}', fontsize=8)
    for ax in axs.ravel(): ax.set_axis_off()
    fig.suptitle('TCGA-FG-6692 in BraTS Toolkit\'s space (SRI24): raw scans prepared by mriseg vs BraTS Toolkit', fontsize=9)
    png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(png) as tmp: fig.savefig(tmp, dpi=110, format='png')
    plt.close(fig)

def table(res)->str:
    p = res['phantom']
    steps = list(p['refined']['seconds'])
    lines = ['| case | ' + ' | '.join(steps) + ' | total s |', '|---|' + '---|'*(len(steps) + 1)]
    def row(name, secs): return f"| {name} | " + ' | '.join(f"{secs.get(s, 0):.1f}" for s in steps) + f" | {sum(secs.values()):.1f} |"
    lines.append(row('phantom study (1 mm T1ce, 0.9x0.9x5.5 mm T1/T2/FLAIR)', p['refined']['seconds']))
    if res.get('real'): lines.append(row('real raw TCGA-FG-6692 (0.9x0.9x5.5 mm, four grids)', res['real']['refined']['seconds']))
    lines += ['', '| brain mask | phantom: Dice vs truth | phantom: displacement T1 / T2 / FLAIR (mm) | real: Dice vs BraTS Toolkit (HD-BET) |',
              '|---|---|---|---|']
    for strip in ('refined', 'template'):
        d = p[strip]['displacement_mm']
        real = res['real'][strip]['brain_dice_vs_brats_toolkit'] if res.get('real') else '–'
        lines.append(f"| {strip} | {p[strip]['brain_dice']} | {d['t1']} / {d['t2']} / {d['flair']} | {real} |")
    if res.get('real', {}).get('routes'):
        r = res['real']['routes']
        lines += ['', '| route | WT / TC / ET mL | Dice vs consensus WT / TC / ET |', '|---|---|---|']
        for k, v in r.items():
            lines.append(f"| {k} | {v['WT_ml']} / {v['TC_ml']} / {v['ET_ml']} | " +
                         ' / '.join(str(v.get(f'{x}_dice_vs_consensus', '–')) for x in REGIONS) + ' |')
        lines.append(f"| agreement of the two routes (Dice) | | {' / '.join(str(res['real']['routes_agreement_dice'][x]) for x in REGIONS)} |")
    return '\n'.join(lines)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--real', default=os.environ.get('MRISEG_REAL', str(ROOT.parent/'shared'/'real')),
                   help='the folder of real cases (default $MRISEG_REAL, else ../shared/real beside the project)')
    p.add_argument('--model', default=str(ROOT/'runs'/'demo'), help="a run or model folder for the routes' volumes "
                   "(default runs/demo; skipped where it is not there)")
    p.add_argument('--name', default='cpu', help='results name: prepare_<name>.json/.png')
    p.add_argument('--out', default=str(ROOT/'bench'/'results'), help='where the JSON and the montage go')
    args = p.parse_args()
    tune_malloc()
    out, t0 = Path(args.out), time.perf_counter()
    model = args.model if Path(args.model).exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res = dict(bench='prepare', cpu=cpu_model(), cores=os.cpu_count(), mriseg=mriseg.__version__,
                   date=datetime.now(timezone.utc).isoformat(timespec='seconds'))
        res['phantom'] = phantom_part(tmp)
        res['real'] = real_part(Path(args.real), model, tmp, out/f'prepare_{args.name}.png') if Path(args.real).is_dir() else None
    res['wall_s'] = round(time.perf_counter() - t0, 1)
    with atomic_path(out/f'prepare_{args.name}.json') as tmp: Path(tmp).write_text(json.dumps(res, indent=1) + '\n')
    print(table(res))
    print(f"{res['cpu']}, {res['cores']} cores: {res['wall_s']} s; {out/f'prepare_{args.name}.json'}")

if __name__ == '__main__': main()
