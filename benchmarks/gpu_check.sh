#!/usr/bin/env bash
# The engine's checks on a CUDA machine, in one short run (about 5 minutes on one H100/H200):
#   1. the CUDA tests: scoring (incl. the aligned-width fix for the memory-efficient attention
#      kernel) and generation against HF generate, every tiny family;
#   2. scoring speed against a bare full forward, random weights in the Gemma 3 270M configuration;
#   3. generation speed against HF generate, same weights, identical tokens checked.
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (each step's output goes to OUT_DIR, default ./gpu_check)
set -u
out=${1:-gpu_check}
mkdir -p "$out"
export PYTHONPATH=src HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TQDM_DISABLE=1
py=${PYTHON:-python}
config=benchmarks/data/gemma3_270m_config.json
$py -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$out/device.txt"
timeout 240 $py -m pytest -q -p no:cacheprovider tests/test_measure_engine.py tests/test_generate.py -k cuda \
  2>&1 | tail -25 | tee "$out/cuda_tests.txt"
timeout 120 $py benchmarks/scoring_speed.py --random_config $config --device cuda --items 512 \
  2>&1 | tail -6 | tee "$out/scoring_speed.txt"
timeout 120 $py benchmarks/generate_tokens.py --random_config $config --device cuda --items 64 --batch_size 8 \
  2>&1 | tail -6 | tee "$out/generate_tokens_b8.txt"
timeout 120 $py benchmarks/generate_tokens.py --random_config $config --device cuda --items 64 --batch_size 64 \
  2>&1 | tail -6 | tee "$out/generate_tokens_b64.txt"
