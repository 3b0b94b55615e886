"""Seconds per full-size case (240x240x155) to load, predict and write, for `mriseg.inference.predict_case`.

    .venv/bin/python bench/predict.py                       # the cpu preset's network (pvt_v2_b0, 64x96), random weights, fp32 and bf16
    .venv/bin/python bench/predict.py --preset gpu --device cuda
    .venv/bin/python bench/predict.py --arch resnet18 resnet34 --size 128 160 --no-cover --precision fp32
    .venv/bin/python bench/predict.py --model models/brats  # a model folder written by save_model

No test-time augmentation unless --tta. Prints one line per model, size and precision and writes them all
to bench/results/predict_<device>.json (or --json). Timings are reported, never asserted.
"""
import argparse, dataclasses, json, os, statistics, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
import mriseg
from mriseg.io import save_labels
from mriseg.datasets import load_case
from mriseg.datasets import write_case
from mriseg.preprocess import PrepConfig, preprocess_case
from mriseg.model import create_model, load_model
from mriseg.inference import predict_case, _run_size
from mriseg.run import ModelConfig
from mriseg.settings import PRESETS

from _common import cpu_model, tune_malloc  # bench/ is on sys.path when a script runs

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

def bench(model, config, ref, out, args, bf16):
    "Load, predict and write one case `args.repeat` times; the fastest run."
    times = []
    for _ in range(args.repeat):
        case, *t_load = timed(lambda: load_case(ref))
        labels, *t_pred = timed(lambda: predict_case(model, case, config, bs=args.bs, tta=args.tta, device=args.device,
                                                     cover=not args.no_cover, bf16=bf16))
        _, *t_write = timed(lambda: save_labels(labels, case, out))
        times.append((*t_load, *t_pred, *t_write))
    t = np.array(times)[np.argmin(np.array(times)[:, ::2].sum(1))]  # the fastest run
    r = lambda v: round(float(v), 2)
    return case, dict(load_s=r(t[0]), predict_s=r(t[2]), write_s=r(t[4]), total_s=r(t[::2].sum()),
                      total_cpu_s=r(t[1::2].sum()), predict_cpu_s=r(t[3]),
                      runs_total_s=[r(x) for x in np.array(times)[:, ::2].sum(1)],
                      median_total_s=r(statistics.median(np.array(times)[:, ::2].sum(1))))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', help='model folder (save_model); default: random-weight models built as --preset builds them')
    p.add_argument('--preset', default='cpu', choices=list(PRESETS), help='mriseg.settings.PRESETS entry the network is built from')
    p.add_argument('--arch', nargs='+', default=None, help="encoders to try without --model; default the preset's")
    p.add_argument('--size', nargs='+', default=None, help="slice sizes to try without --model: 128 or 64x96; default the preset's")
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--tta', action='store_true', help='flip test-time augmentation')
    p.add_argument('--precision', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'],
                   help='fp32, and/or bf16 autocast (predict_case(bf16=True); fast on CPUs with AMX)')
    p.add_argument('--no-cover', action='store_true', help='run slices at the training size only (cover=False)')
    p.add_argument('--device', default=None, help='cpu or cuda; default: cuda when there is one')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads; default: torch\'s own')
    p.add_argument('--repeat', type=int, default=2, help='runs per setting; the fastest is reported')
    p.add_argument('--mallopt', action='store_true', help='keep freed memory in the heap (glibc mallopt), to see what page faults cost')
    p.add_argument('--json', default=None, help='default bench/results/predict_<device>.json')
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    if args.mallopt and not tune_malloc(): print('mallopt failed; running with glibc defaults')
    dev = args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    preset = PRESETS[args.preset]
    args.arch = args.arch or [preset.arch]
    args.size = args.size or ['x'.join(str(v) for v in preset.size)]
    args.json = args.json or Path(__file__).parent/'results'/f'predict_{torch.device(dev).type}.json'
    machine = dict(cpu_model=cpu_model(), cores=len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(),
                   torch_threads=torch.get_num_threads(), torch=torch.__version__, device=dev,
                   device_name=torch.cuda.get_device_name() if dev.startswith('cuda') else cpu_model(), load_avg=list(os.getloadavg()))
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
                    # built as mriseg.train.train builds the preset's network (last_cross, self_attention)
                    model = create_model(arch, n_in=4, regions=cfg['regions'], img_size=s, self_attention=preset.self_attention,
                                         last_cross=preset.last_cross, bottle=preset.bottle)
                    runs.append((f"{arch} {s[0]}x{s[1]} last_cross={preset.last_cross} (random weights)", model,
                                 {**cfg, 'model': model.create_args}))
        results = []
        for (name, model, config), prec in [(r, p) for r in runs for p in args.precision]:
            bf16 = prec == 'bf16'
            case, r = bench(model, config, ref, Path(tmp)/'out'/'BraTS2021_00000.nii.gz', args, bf16)
            st = ModelConfig.from_dict(config)
            pp = preprocess_case(dataclasses.replace(case, label=None), st.preprocessing)
            n_brain = int(np.any(pp.image != 0, axis=(0, 1, 2)).sum())
            run = _run_size(pp.image.shape[1:3], st.slice_size, not args.no_cover)
            r = dict(model=name, slice_size=list(st.slice_size), run_size=list(run), crop=list(pp.image.shape[1:]),
                     slices_predicted=n_brain, case_shape=list(case.image.shape[1:]), tta=args.tta, precision=prec, cover=not args.no_cover,
                     bs=args.bs, load_avg_after=list(os.getloadavg()), **r)
            results.append(r)
            print(f"{name} {prec}: load {r['load_s']:.2f} s, predict {r['predict_s']:.2f} s ({n_brain} slices at {run[0]}x{run[1]}), "
                  f"write {r['write_s']:.2f} s, total {r['total_s']:.2f} s per case (median of {args.repeat}: {r['median_total_s']:.2f} s) ({r['total_cpu_s']:.1f} CPU s; load avg {os.getloadavg()[0]:.1f})", flush=True)
    out = Path(args.json); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(bench='predict', mriseg=mriseg.__version__, date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
                                   machine=machine, preset=args.preset, mallopt=args.mallopt, results=results), indent=1) + '\n')
    print(f"wrote {out}")

if __name__ == '__main__': main()
