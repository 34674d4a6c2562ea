#!/usr/bin/env bash
# The GPU checks in one go, for a machine with a CUDA device and roboact importable (docs/benchmarks.md, "GPU"):
# the CUDA test module, then streaming and model throughput on the GPU. Results go to ${OUT:-gpu_check}/.
#   bash benchmarks/gpu_check.sh
set -uo pipefail
out=${OUT:-gpu_check}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
"$py" -m pytest -q -p no:cacheprovider -rA -s tests/gpu 2>&1 | tee "$out/gpu_tests.log"
"$py" benchmarks/bench_streaming.py --device cuda --steps 60 2>&1 | tee "$out/bench_streaming_cuda.json"
"$py" benchmarks/bench_model.py --device cuda --amp --batch 256 --steps 50 --frames 2048 \
    --frame-batches 1 2 5 10 20 2>&1 | tee "$out/bench_model_cuda_amp.json"
"$py" benchmarks/bench_model.py --device cuda --batch 256 --steps 50 --frames 2048 --backbone-batch 16 2>&1 | tee "$out/bench_model_cuda_fp32.json"
