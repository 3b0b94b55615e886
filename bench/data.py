"""The data side alone: training slices/s read from the cache into batches, before and after, in one run.

Full-size phantom cases (240x240x155 at 1 mm) -> `PrepCache` -> `SliceDataset.batch`, 224x224 slices in batches of
32, 2D and 2.5D with context 5 (20 channels). Two readers, alternating trial by trial so both see the same load:

- before: the cache's earlier format and batches (Fortran-order files, float32 image and mask batches);
- after: what mriseg reads now (slice-major files, batches in the cache's float16 and uint8, made float32 on the
  device by `ToFloat`).

It also times the whole `DataLoader` on the CPU (no augmentation; `ToFloat` then runs on the CPU), with 0 and 1
reader processes. The figures are slices per second of one process, medians of the trials.

    .venv/bin/python bench/data.py                 # 4 phantom cases made in a temporary folder
    .venv/bin/python bench/data.py --data DIR      # cases of your own (any layout mriseg reads)

Prints the figures and writes bench/results/data_cpu.json (or --json). Timings are reported, never asserted.
"""
import argparse, json, platform, statistics, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import torch
import mriseg
from fastai.data.core import Pipeline
from mriseg.datasets import find_cases
from mriseg.preprocess import PrepCache, PrepConfig
from mriseg.data import SliceDataset, get_slice, slice_dataloaders

from _common import cpu_model  # bench/ is on sys.path when a script runs

def fortran_copy(p, folder):
    "`p` as the earlier cache held it: Fortran-order .npy files, memory-mapped."
    out = {}
    for k in ('image', 'regions'):
        f = Path(folder)/f'{p.case_id}.{k}.npy'
        np.save(f, np.asfortranarray(getattr(p, k)))
        out[k] = np.load(f, mmap_mode='r')
    return SimpleNamespace(case_id=p.case_id, region_names=p.region_names, **out)

def read_before(ds, idxs):
    "The earlier `SliceDataset.batch`: float32 image and mask batches."
    p0 = ds.prepped[0]
    x = np.zeros((len(idxs), p0.image.shape[0] * ds.context, *ds.size), np.float32)
    y = np.zeros((len(idxs), p0.regions.shape[0], *ds.size), np.float32)
    for j, i in enumerate(idxs):
        c, z = ds.index[ds.items[i]]
        get_slice(ds.prepped[c].image, z, ds.context, ds.size, out=x[j])
        get_slice(ds.prepped[c].regions, z, 1, ds.size, out=y[j])
    return torch.from_numpy(x), torch.from_numpy(y)

def epoch_rate(read, ds, bs):
    "Slices/s of reading one epoch of `ds` in batches of `bs` with `read(ds, idxs)`."
    t = time.perf_counter()
    for b in range(0, len(ds) - bs + 1, bs): read(ds, list(range(b, b + bs)))
    return (len(ds) // bs * bs) / (time.perf_counter() - t)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', help='a dataset folder; default: 4 full-size phantom cases made in a temporary folder')
    ap.add_argument('--size', type=int, default=224); ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--n', type=int, default=512, help='slices per trial'); ap.add_argument('--trials', type=int, default=5)
    ap.add_argument('--json', default=str(Path(__file__).parent/'results'/'data_cpu.json'))
    a = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data
        if data is None:
            from mriseg.phantom import make_phantom_cohort
            data = Path(tmp)/'phantom'; make_phantom_cohort(data, n=4, n_workers=1)
        refs = find_cases(data)
        cache = PrepCache(Path(tmp)/'cache', PrepConfig()); cache.build(refs)
        after = [cache.get(r) for r in refs]
        (Path(tmp)/'fortran').mkdir()
        before = [fortran_copy(p, Path(tmp)/'fortran') for p in after]
        size, rows = (a.size, a.size), []
        for ctx in (1, 5):
            ds_b = SliceDataset(before, ctx, 0.5, size, a.n, seed=0)
            ds_a = SliceDataset(after, ctx, 0.5, size, a.n, seed=0)
            rates = {'before': [], 'after': []}
            for _ in range(a.trials):
                rates['before'].append(epoch_rate(read_before, ds_b, a.bs))
                rates['after'].append(epoch_rate(lambda ds, i: ds.batch(i), ds_a, a.bs))
            row = dict(context=ctx, channels=4 * ctx, **{k: statistics.median(v) for k, v in rates.items()})
            row['speedup'] = row['after'] / row['before']
            for w in (0, 1):
                dls = slice_dataloaders(after, after, bs=a.bs, size=size, context=ctx, n_per_epoch=a.n, aug=False,
                                        device='cpu', seed=0, num_workers=w)
                for name, fs in (('compact', []), ('float32', dls.train.after_batch.fs)):  # a GPU run: ToFloat there
                    dl = dls.train.new(after_batch=Pipeline(fs))
                    ts = []
                    for _ in range(3):
                        t = time.perf_counter(); n = sum(len(b[0]) for b in dl); ts.append(n / (time.perf_counter() - t))
                    row[f'dataloader_{name}_workers{w}'] = statistics.median(ts)
            rows.append(row)
            print(f"context {ctx} ({4 * ctx} channels), {a.size}x{a.size}, batches of {a.bs}: read {row['before']:,.0f} -> "
                  f"{row['after']:,.0f} slices/s ({row['speedup']:.1f}x); the DataLoader, compact batches (a GPU run): "
                  f"{row['dataloader_compact_workers0']:,.0f} with 0 reader processes, "
                  f"{row['dataloader_compact_workers1']:,.0f} with 1; made float32 on this CPU: "
                  f"{row['dataloader_float32_workers0']:,.0f}")
    res = dict(what=__doc__.split('\n')[0], cpu=cpu_model(), cores=len(__import__('os').sched_getaffinity(0)),
               torch=torch.__version__, mriseg=mriseg.__version__, python=platform.python_version(),
               when=datetime.now(timezone.utc).isoformat(timespec='seconds'), size=a.size, bs=a.bs, rows=rows)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    print(f"{res['cpu']}, {res['cores']} cores; written {a.json}")

if __name__ == '__main__': main()
