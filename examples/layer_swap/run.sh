#!/usr/bin/env bash
# Layer-swap example end to end on CPU (about a minute): build experts, merge, load and compare.
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1
python make_experts.py
babelscope merge recipe.yaml --output_path runs --run_name latest --emit_mergekit_yaml mergekit.yml
python check_merged.py runs/layer-swap-demo/latest/model
