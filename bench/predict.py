"""Seconds per full-size case (240x240x155) to load, predict and write, for `mriseg.inference.predict_case`.

    .venv/bin/python bench/predict.py                       # random-weight resnet18 trained at 64x96 (the CPU preset)
    .venv/bin/python bench/predict.py --arch resnet18 resnet34 --size 128 160 --no-cover
    .venv/bin/python bench/predict.py --model models/brats  # a model folder written by save_model

Prints one line per model and size and writes them all to bench/results/predict.json.
"""
import argparse, dataclasses, json, os, platform, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
import mriseg
from mriseg.io import load_case, save_labels
from mriseg.datasets import write_case
from mriseg.preprocess import PrepConfig, preprocess_case
from mriseg.model import create_model, load_model
from mriseg.inference import predict_case, model_settings, _run_size

def full_case(root):
    "One full-size case in BraTS 2021 layout: the phantom if mriseg has it, else a brain-shaped random one."
    try:
        from mriseg.phantom import make_phantom_case
        image, label, aff = make_phantom_case(0)
    except ImportError:
        rng = np.random.default_rng(0)
        g = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in (240, 240, 155)], indexing='ij'))
        brain = ((g / np.array([0.6, 0.72, 0.9])[:, None, None, None])**2).sum(0) < 1
        image = (rng.uniform(200, 1000, (4, 240, 240, 155)) * brain).astype(np.float32)
        label, aff = ((g**2).sum(0) < 0.02).astype(np.uint8) * 2, np.eye(4)
    return write_case(root, 'BraTS2021_00000', image, label, aff)

def timed(f):
    "(f(), wall seconds, CPU seconds of this process)."
    t, c = time.perf_counter(), time.process_time(); r = f()
    return r, time.perf_counter() - t, time.process_time() - c

def bench(model, config, ref, out, args):
    "Load, predict and write one case `args.repeat` times; the fastest of each step."
    times = []
    for _ in range(args.repeat):
        case, *t_load = timed(lambda: load_case(ref))
        labels, *t_pred = timed(lambda: predict_case(model, case, config, bs=args.bs, tta=args.tta, device=args.device,
                                                     cover=not args.no_cover, bf16=args.bf16 or None))
        _, *t_write = timed(lambda: save_labels(labels, case, out))
        times.append((*t_load, *t_pred, *t_write))
    t = np.array(times)[np.argmin(np.array(times)[:, ::2].sum(1))]  # the fastest run
    r = lambda v: round(float(v), 2)
    return case, dict(load_s=r(t[0]), predict_s=r(t[2]), write_s=r(t[4]), total_s=r(t[::2].sum()),
                      total_cpu_s=r(t[1::2].sum()), predict_cpu_s=r(t[3]),
                      runs_total_s=[r(x) for x in np.array(times)[:, ::2].sum(1)])

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', help='model folder (save_model); default: random-weight models built with create_model')
    p.add_argument('--arch', nargs='+', default=['resnet18'], help='encoders to try without --model')
    p.add_argument('--size', nargs='+', default=['64x96'], help='slice sizes to try without --model: 128 or 64x96')
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--tta', action='store_true', help='flip test-time augmentation')
    p.add_argument('--bf16', action='store_true', help='bfloat16 autocast on the CPU too (fast with AMX)')
    p.add_argument('--no-cover', action='store_true', help='run slices at the training size only (cover=False)')
    p.add_argument('--device', default=None, help='cpu or cuda; default: cuda when there is one')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads; default: torch\'s own')
    p.add_argument('--repeat', type=int, default=2, help='runs per setting; the fastest is reported')
    p.add_argument('--json', default=Path(__file__).parent/'results'/'predict.json')
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    dev = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    machine = dict(cpu=platform.processor() or platform.machine(), cores=len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(),
                   torch_threads=torch.get_num_threads(), torch=torch.__version__, device=dev,
                   gpu=torch.cuda.get_device_name() if dev == 'cuda' else None, load_avg=list(os.getloadavg()))
    print(f"machine: {machine}")
    with tempfile.TemporaryDirectory() as tmp:
        ref = full_case(Path(tmp)/'data')
        if args.model: runs = [(str(args.model), *load_model(args.model, device=dev))]
        else:
            runs = []
            for arch in args.arch:
                for s in args.size:
                    s = [int(v) for v in s.lower().split('x')] * (1 if 'x' in s.lower() else 2)
                    cfg = dict(preprocessing=PrepConfig().to_dict(), context=1, slice_size=s, regions=['WT', 'TC', 'ET'])
                    runs.append((f'{arch} {s[0]}x{s[1]} (random weights)', create_model(arch, n_in=4, img_size=s), {**cfg, 'model': dict(arch=arch, n_in=4, img_size=s)}))
        results = []
        for name, model, config in runs:
            case, r = bench(model, config, ref, Path(tmp)/'out'/'BraTS2021_00000.nii.gz', args)
            st = model_settings(config)
            pp = preprocess_case(dataclasses.replace(case, label=None), st['prep'])
            n_brain = int(np.any(pp.image != 0, axis=(0, 1, 2)).sum())
            run = _run_size(pp.image.shape[1:3], st['slice_size'], not args.no_cover)
            r = dict(model=name, slice_size=list(st['slice_size']), run_size=list(run), crop=list(pp.image.shape[1:]),
                     slices_predicted=n_brain, case_shape=list(case.image.shape[1:]), tta=args.tta, bf16=args.bf16 or dev == 'cuda',
                     bs=args.bs, load_avg_after=list(os.getloadavg()), **r)
            results.append(r)
            print(f"{name}: load {r['load_s']:.2f} s, predict {r['predict_s']:.2f} s ({n_brain} slices at {run[0]}x{run[1]}), "
                  f"write {r['write_s']:.2f} s, total {r['total_s']:.2f} s per case ({r['total_cpu_s']:.1f} CPU s; load avg {os.getloadavg()[0]:.1f})", flush=True)
    out = Path(args.json); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(bench='predict', mriseg=mriseg.__version__, date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
                                   machine=machine, results=results), indent=1))
    print(f"wrote {out}")

if __name__ == '__main__': main()
