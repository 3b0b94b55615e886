"""Checks the built wheel in a venv with the current fastai release: every module imports and a tiny case round-trips."""
import importlib, pkgutil, tempfile
import numpy as np, fastai, fastcore, torch
import mriseg

mods = [m.name for m in pkgutil.iter_modules(mriseg.__path__) if not m.name.startswith('_')]
for m in mods: importlib.import_module(f'mriseg.{m}')
from mriseg.datasets import write_case, find_cases
from mriseg.io import load_case
with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(0)
    lab = rng.choice(np.array([0, 1, 2, 4], np.uint8), (8, 8, 6))
    write_case(d, 'BraTS2021_00000', rng.integers(1, 500, (4, 8, 8, 6)), lab)
    assert (load_case(find_cases(d)[0]).label == lab).all()
print(f"wheel: mriseg {mriseg.__version__} with fastai {fastai.__version__}, fastcore {fastcore.__version__}, "
      f"torch {torch.__version__}: imported {', '.join(mods)}; a case round-trips")
