"""`mriseg app`'s real-time segmentation: seconds to the first slice and to the whole 240x240x155 case, through the API.

    .venv/bin/python bench/app.py                    # runs/demo (train it with `make demo`), 2 CPU threads
    .venv/bin/python bench/app.py --model RUN --threads 4 --repeat 3
    .venv/bin/python bench/app.py --onnx             # also ONNX Runtime, where it is installed (pip install onnxruntime)

The case is a phantom case (seed 11) uploaded through the API as a person would; the times are those the server
records: `preview_s`, from the start of the segmentation to the preview of the slice under the crosshair written,
and `seconds`, to the whole mask written. With --onnx, the same network is exported to ONNX and the slices are run by
ONNX Runtime, and the probabilities are compared with torch's. Prints a table and writes bench/results/app_cpu.json.
Timings are reported, never asserted.
"""
import argparse, json, statistics, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
import mriseg
from mriseg.datasets import write_case
from mriseg.phantom import make_phantom_case
from _common import cpu_model, tune_malloc

def upload_files(ref):
    roles = dict(zip(mriseg.io.MODALITIES, ('t1', 't1ce', 't2', 'flair')))
    return {roles[m]: (f'{roles[m]}.nii.gz', Path(p).read_bytes()) for m, (p, _) in zip(mriseg.io.MODALITIES, ref.images)}

def time_api(model, ref, repeat):
    from fastapi.testclient import TestClient
    from mriseg.app import create_app
    with tempfile.TemporaryDirectory() as work:
        c = TestClient(create_app(model, work=work))
        cid = c.post('/api/cases', files=upload_files(ref)).json()['id']
        rows = []
        for _ in range(repeat):
            c.post(f'/api/cases/{cid}/segment', json={'first': [0., -18., 10.]})
            while (rec := c.get(f'/api/cases/{cid}').json())['status'] == 'segmenting': time.sleep(.25)  # as the page polls
            if rec['status'] != 'done': sys.exit(f"segmentation failed: {rec['error']}")
            rows.append((rec['preview_s'], rec['seconds']))
        return rows

def onnx_check(model, ref):
    "(torch s, onnxruntime s, max |p_torch - p_ort|) for the whole case's slices of one model, or None."
    try: import onnxruntime as ort
    except ImportError: return None
    from mriseg.inference import load_members, predict_volume
    from mriseg.preprocess import preprocess_case
    from mriseg.run import ModelConfig
    from mriseg.datasets import load_case
    (net, cfg), = load_members(model)[0][:1]
    c = ModelConfig.from_dict(cfg)
    img = preprocess_case(load_case(ref), c.preprocessing).image.astype(np.float32)
    t = time.perf_counter(); p_torch = predict_volume(net, img, len(c.regions), c.context, c.slice_size, bf16=False,
                                                      axis=c.axis, device='cpu'); t_torch = time.perf_counter() - t
    class OrtNet(torch.nn.Module):
        def __init__(self, path): super().__init__(); self.s = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
        def forward(self, x): return torch.from_numpy(self.s.run(None, {'x': x.cpu().numpy()})[0])
    with tempfile.TemporaryDirectory() as d:
        x = torch.zeros(1, len(mriseg.io.MODALITIES) * c.context, 256, 192)
        torch.onnx.export(net.eval(), x, f'{d}/m.onnx', input_names=['x'], output_names=['y'], dynamo=False,
                          dynamic_axes={'x': {0: 'b', 2: 'h', 3: 'w'}, 'y': {0: 'b', 2: 'h', 3: 'w'}})
        ortnet = OrtNet(f'{d}/m.onnx')
        t = time.perf_counter(); p_ort = predict_volume(ortnet, img, len(c.regions), c.context, c.slice_size, bf16=False,
                                                        axis=c.axis, device='cpu'); t_ort = time.perf_counter() - t
    return t_torch, t_ort, float(np.abs(p_torch - p_ort).max())

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default='runs/demo')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--onnx', action='store_true')
    p.add_argument('--json', default='bench/results/app_cpu.json')
    a = p.parse_args()
    if not Path(a.model).exists(): sys.exit(f"{a.model}: no such model; train it with `make demo`, or give --model RUN")
    torch.set_num_threads(a.threads); tune_malloc()
    with tempfile.TemporaryDirectory() as d:
        img, lab, aff = make_phantom_case(11)
        ref = write_case(d, 'BraTS2021_00011', img, lab, aff)
        rows = time_api(a.model, ref, a.repeat)
        onnx = onnx_check(a.model, ref) if a.onnx else None
    first, whole = [r[0] for r in rows], [r[1] for r in rows]
    res = dict(cpu=cpu_model(), threads=a.threads, torch=torch.__version__, mriseg=mriseg.__version__,
               model=str(a.model), shape=[240, 240, 155], repeat=a.repeat, first_slice_s=first, whole_case_s=whole,
               first_slice_median_s=statistics.median(first), whole_case_median_s=statistics.median(whole),
               goals=dict(first_slice_s=1.0, whole_case_s=10.0), date=datetime.now(timezone.utc).isoformat(timespec='seconds'))
    if onnx: res['onnx'] = dict(torch_volume_s=onnx[0], onnxruntime_volume_s=onnx[1], max_abs_prob_diff=onnx[2])
    print(f"{res['cpu']}, {a.threads} threads, torch {torch.__version__}, model {a.model}")
    print(f"| step | median s (of {a.repeat}) | goal |\n|---|---|---|")
    print(f"| first slice (preview written) | {res['first_slice_median_s']:.2f} | 1 |")
    print(f"| whole 240x240x155 case (mask written) | {res['whole_case_median_s']:.2f} | 10 |")
    if onnx: print(f"slices of the whole case: torch {onnx[0]:.2f} s, ONNX Runtime {onnx[1]:.2f} s, "
                   f"max |Δp| {onnx[2]:.1e}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1) + '\n')

if __name__ == '__main__': main()
