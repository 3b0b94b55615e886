"""Checks the built wheel in a venv with the current fastai release: every module imports and a tiny case round-trips."""
import importlib, pkgutil, tempfile
import numpy as np, fastai, fastcore, torch
import mriseg

mods = [m.name for m in pkgutil.iter_modules(mriseg.__path__) if not m.name.startswith('_')]
for m in mods: importlib.import_module(f'mriseg.{m}')
from mriseg.datasets import write_case, find_cases
from mriseg.datasets import load_case
with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(0)
    lab = rng.choice(np.array([0, 1, 2, 4], np.uint8), (8, 8, 6))
    write_case(d, 'BraTS2021_00000', rng.integers(1, 500, (4, 8, 8, 6)), lab)
    assert (load_case(find_cases(d)[0]).label == lab).all()
    # the whole path on the current fastai: phantom -> train one short epoch -> predict -> evaluate; the cpu preset's
    # timm encoder, with attention gates on the skips (GatedUnetBlock repeats fastai's UnetBlock.forward around the gate)
    from mriseg.phantom import make_phantom_cohort
    from mriseg.splits import run_cases
    from mriseg.train import train
    from mriseg.inference import predict_cases
    from mriseg.evaluate import evaluate
    make_phantom_cohort(f'{d}/p', n=5, shape=(48, 48, 32), n_workers=0)
    train(f'{d}/p', f'{d}/run', epochs=1, size=(32, 64), bs=8, n_per_epoch=16, valid_n=8, device='cpu',
          attention_gates=True)
    test = run_cases(f'{d}/run', f'{d}/p')
    predict_cases(f'{d}/run/model', test, f'{d}/pred', progress=False)
    _, summary = evaluate(f'{d}/pred', test, f'{d}/report', progress=False)
    assert summary.region.tolist() == ['WT', 'TC', 'ET']
    # the dicom extra: a phantom DICOM study -> prepare -> predict back onto the source grids and as a DICOM SEG
    from mriseg.scanner import make_phantom_study
    from mriseg.prepare import prepare
    import pydicom
    study = make_phantom_study(f'{d}/raw', seed=1, shape=(96, 96, 64))
    res = prepare(study.root, f'{d}/cases', spacing=2.5, verbose=False)
    predict_cases(f'{d}/run/model', [res.ref], f'{d}/native', progress=False, native=True, dicom_seg=True)
    seg = pydicom.dcmread(f'{d}/native/{res.ref.case_id}_seg.dcm')
    assert seg.Modality == 'SEG' and len(seg.SegmentSequence) == 3
print(f"wheel: mriseg {mriseg.__version__} with fastai {fastai.__version__}, fastcore {fastcore.__version__}, "
      f"torch {torch.__version__}: imported {', '.join(mods)}; a case round-trips; trained (pvt_v2_b0, attention gates), predicted and evaluated; a DICOM study prepared, predicted, written as DICOM SEG")
