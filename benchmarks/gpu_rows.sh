#!/usr/bin/env bash
# Issue 12 part 7: the loss, score and rank rows on a GPU (fp32, and bf16 inputs where the method allows
# them), each against the same references on the same device, with the device's name. One short script for a
# session that is lent a GPU, on a machine whose torch has CUDA:
#   bash benchmarks/gpu_rows.sh 2>&1 | tee gpu_rows.md
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH="$PWD/..${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('#', torch.cuda.get_device_name(0), torch.__version__)"
python bench_methods.py --quick --device cuda --dtype fp32   # PMRL loss, GRAM and sigma_1 scores vs official and fair
python bench_methods.py --quick --device cuda --dtype bf16
python bench_eval.py --device cuda --repeats 5               # rank pass and scores vs the matmul; sigma_1 eager and compiled
