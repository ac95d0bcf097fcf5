#!/usr/bin/env bash
# Runs the same configurations through PyTorch (tools/bench/torch_bench.py: timm + SSF added the
# reference way) and through `ssf bench model`, alternating on this machine, and prints the ratio
# table (ours ÷ PyTorch). Also reports ViT-B/16 inference GFLOP/s against raw sgemm in this run.
#
#   tools/bench/compare_torch.sh [--batch 8] [--threads 2] [--steps 5] [--models "vit_base_patch16_224 ..."]
# Needs the PyTorch venv of the fixture generators (PYTHON, default ~/venv-torch/bin/python).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
batch=8 threads=2 steps=5
models="vit_base_patch16_224 swin_base_patch4_window7_224 convnext_base"
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) batch="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
python="${PYTHON:-$HOME/venv-torch/bin/python}"
cd "$root"
swift build -c release --product ssf >&2
ssf="$root/.build/release/ssf"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

run_ours() { "$ssf" bench model --model "$1" --mode "$2" "${@:3}" --batch "$batch" --threads "$threads" --steps "$steps" --json; }
run_torch() { OMP_NUM_THREADS="$threads" "$python" tools/bench/torch_bench.py --model "$1" --mode "$2" --batch "$batch" --threads "$threads" --steps "$steps"; }

for model in $models; do
  for mode in infer ssf full; do
    echo "torch $model $mode" >&2
    echo "torch $(run_torch "$model" "$mode")" >> "$out"
    echo "ours  $model $mode" >&2
    echo "ours $(run_ours "$model" "$mode")" >> "$out"
  done
  echo "ours  $model merged / unmerged ssf inference" >&2
  echo "ours $(run_ours "$model" merged)" >> "$out"
  echo "ours $(run_ours "$model" infer --method ssf)" >> "$out"
done
echo "$ssf bench ops" >&2
echo "ops $("$ssf" bench ops --threads "$threads" --json | grep '"sgemm_all"')" >> "$out"
echo "gmacs $("$ssf" inspect --model vit_base_patch16_224 --json)" >> "$out"

"$python" - "$out" "$batch" "$threads" <<'PY'
import json, sys
rows = [line.split(" ", 1) for line in open(sys.argv[1]) if line.strip()]
torch, ours = {}, {}
sgemm = gmacs = None
for side, payload in rows:
    d = json.loads(payload)
    if side == "torch": torch[(d["model"], d["mode"])] = d
    elif side == "ours": ours[(d["model"], d["mode"])] = d
    elif side == "ops": sgemm = d["gflops"]
    elif side == "gmacs": gmacs = d["gmacs"]
print(f"batch {sys.argv[2]}, {sys.argv[3]} threads; img/s = median of timed steps; ratio = ours / PyTorch\n")
print("| model | mode | PyTorch img/s | ours img/s | ratio | PyTorch peak RSS MiB | ours peak RSS MiB | RSS ratio |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (model, mode), t in torch.items():
    o = ours.get((model, mode))
    if not o: continue
    print(f"| {model} | {mode} | {t['img_per_s']:.2f} | {o['img_per_s']:.2f} | {o['img_per_s'] / t['img_per_s']:.2f} | "
          f"{t['peak_rss_mib']:.0f} | {o['peak_rss_mib']:.0f} | {o['peak_rss_mib'] / t['peak_rss_mib']:.2f} |")
print("\nMerged and unmerged SSF inference against the plain model, timed in alternation in one process:\n")
print("| model | merged SSF img/s | plain img/s | merged / plain | unmerged SSF img/s | plain img/s | unmerged / plain |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (model, mode), m in ours.items():
    u = ours.get((model, "infer-ssf"))
    if mode == "merged" and u:
        print(f"| {model} | {m['img_per_s']:.2f} | {m['plain_img_per_s']:.2f} | {m['ratio_to_plain']:.3f} | "
              f"{u['img_per_s']:.2f} | {u['plain_img_per_s']:.2f} | {u['ratio_to_plain']:.3f} |")
vit = ours.get(("vit_base_patch16_224", "infer"))
if vit and sgemm and gmacs:
    rate = 2 * gmacs * vit["img_per_s"]
    print(f"\nViT-B/16 inference: {rate:.1f} GFLOP/s ({gmacs:.2f} GMACs/image) = {rate / sgemm:.2f} of raw sgemm ({sgemm:.1f} GFLOP/s) in this run")
PY
