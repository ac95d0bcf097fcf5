#!/usr/bin/env bash
# End to end on a full-size ConvNeXt in the SSF reference layout: write a seeded reference state
# dict, convert and merge it with `ssf`, and check the merged file strict-loads into timm and gives
# the reference code's logits.
#
#   tools/check_convnext_end_to_end.sh [convnext_tiny]
# Needs the PyTorch venv of the fixture generators (PYTHON, default ~/venv-torch/bin/python) and the
# SSF repository's models/convnext.py (SSF_CONVNEXT, default /tmp/ssf_convnext.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:-convnext_tiny}"
python="${PYTHON:-$HOME/venv-torch/bin/python}"
reference_file="${SSF_CONVNEXT:-/tmp/ssf_convnext.py}"
[ -f "$reference_file" ] || { echo "no $reference_file: git --git-dir=<mirror of dongzelian/SSF> show HEAD:models/convnext.py > $reference_file" >&2; exit 2; }
cd "$root"
swift build -c release --product ssf >&2
ssf="$root/.build/release/ssf"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" tools/check_convnext_merge_in_timm.py --write-reference "$work/ref.safetensors" --model "$model" --num-classes 10 --ssf-convnext "$reference_file"
"$ssf" convert --model "$model" "$work/ref.safetensors" "$work/ref.timm.safetensors"
"$ssf" merge --model "$model" --weights "$work/ref.safetensors" --output "$work/merged.safetensors"
"$python" tools/check_convnext_merge_in_timm.py --merged "$work/merged.safetensors" --model "$model" --reference "$work/ref.safetensors" --ssf-convnext "$reference_file"
