#!/usr/bin/env bash
# The training and prediction benches on a lent GPU machine (see bench/README.md).
#
# Here, in the project root, once:   ../shared/gpu/fetch-wheels
# Then the device tool's run:         command "bash bench/gpu_check.sh", carry [".whl"], timeout_s 540
# and, as a second call of its own:   command "bash bench/gpu_check.sh more" (context 5, the data side, torch.compile)
# It writes under $OUT: gpu.txt, log.txt, train_cuda.json,
# train_cuda_ctx5.json (context 5), data_host.json (the data side on its CPU), compile_cuda.json,
# predict_cuda_gpu.json (the gpu preset's network) and predict_cuda_cpu.json (the cpu preset's).
# Each bench has a time limit of its own, so one that hangs leaves time for the others.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/mriseg-gpu-check}; mkdir -p "$OUT"
log="$OUT/log.txt"
step() { echo "== $*" | tee -a "$log"; }

ls .whl/*.whl > /dev/null 2>&1 || { echo "no wheels in .whl/: run ../shared/gpu/fetch-wheels here first and carry .whl" | tee -a "$log"; exit 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tee -a "$log" || exit 1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch, fastai, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'fastai', fastai.__version__, 'gpu', torch.cuda.get_device_name())"
  nproc; grep -m1 'model name' /proc/cpuinfo; uptime; } > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt" | tee -a "$log"

rc=0
if [ "${1:-}" = more ]; then
step "train: gpu preset at context 5 (20 channels), the same cases"
timeout 240 python3 bench/train.py --device cuda --preset gpu --context 5 --json "$OUT/train_cuda_ctx5.json" 2>&1 | grep -v -E 'FutureWarning|UserWarning|warnings\.warn' | tee -a "$log" || rc=1
step "data side alone on this machine's CPU: 2D and context 5, 224x224"
timeout 150 python3 bench/data.py --trials 3 --json "$OUT/data_host.json" 2>&1 | grep -v -E 'FutureWarning|UserWarning|warnings\.warn' | tee -a "$log" || rc=1
step "torch.compile against eager, gpu preset"
timeout 240 python3 bench/compile.py --device cuda --preset gpu --epochs 3 --json "$OUT/compile_cuda.json" 2>&1 | grep -v -E 'FutureWarning|UserWarning|warnings\.warn' | tee -a "$log" || rc=1
step "done (rc $rc)"; exit $rc
fi
step "train: gpu preset (resnet34, 224x224, bs 32), 10 phantom cases 240x240x155, with the breakdown"
timeout 300 python3 bench/train.py --device cuda --preset gpu --breakdown --json "$OUT/train_cuda.json" 2>&1 | grep -v -E 'FutureWarning|UserWarning|warnings\.warn' | tee -a "$log" || rc=1
step "predict: gpu preset network (resnet34, 224x224), fp32 and bf16, no TTA"
timeout 120 python3 bench/predict.py --device cuda --preset gpu --repeat 3 --json "$OUT/predict_cuda_gpu.json" 2>&1 | grep -v -E 'FutureWarning|UserWarning|warnings\.warn' | tee -a "$log" || rc=1
step "predict: cpu preset network (resnet18, 64x96, last_cross=False), fp32 and bf16, no TTA"
timeout 120 python3 bench/predict.py --device cuda --preset cpu --repeat 3 --json "$OUT/predict_cuda_cpu.json" 2>&1 | grep -v -E 'FutureWarning|UserWarning|warnings\.warn' | tee -a "$log" || rc=1
step "done (rc $rc)"
exit $rc
