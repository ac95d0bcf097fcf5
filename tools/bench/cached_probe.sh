#!/usr/bin/env bash
# Linear probing with cached features against the same run uncached and the same recipe in PyTorch:
# EfficientNet-Lite0 (ImageNet weights) on tools/reproduce.sh's CIFAR-10 subset (5,000 training,
# 3,000 test images) at 96 px, augmentation off (configs/repro-lite0-96px-noaug.yaml), 6 epochs,
# lr 0.01. The three commands alternate for ROUNDS rounds (default 2); prints each one's wall, user
# and system seconds, the medians, the ratios and each run's final top-1.
#
#   bash tools/bench/cached_probe.sh          # ROUNDS=3 for more rounds
# Needs the reproduction's inputs (tools/reproduce.sh prepares them) and a PyTorch venv (TORCH_PYTHON,
# default the latest torch/timm of tools/bench/compare_torch.sh, ~/venv-torch-latest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cache="${SSF_CACHE:-$HOME/.cache/ssf}"
work="${SSF_REPRO_DIR:-$cache/reproduce}"
weights="$cache/efficientnet-lite0-57934424.pth"
data="imagefolder:$work/cifar10-500"
threads="${SSF_NUM_THREADS:-$(nproc)}"
rounds="${ROUNDS:-2}"
torch_python="${TORCH_PYTHON:-$HOME/venv-torch-latest/bin/python}"
[ -d "$work/cifar10-500/train" ] || { echo "no CIFAR-10 subset at $work/cifar10-500: run tools/reproduce.sh (or TRAIN_ONLY=1 DATASETS=cifar10 METHODS=linear bash tools/reproduce.sh) first" >&2; exit 1; }
swift build -c release --product ssf >&2
ssf="$root/.build/release/ssf"
out="$work/cached-probe"
rm -rf "$out"; mkdir -p "$out"
common=(--model tf_efficientnet_lite0 --weights "$weights" --data "$data" --method linear --lr 0.01 --config configs/repro-lite0-96px-noaug.yaml --head-init zeros --threads "$threads")
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; threads $threads; $("$torch_python" -c 'import torch, timm; print(f"torch {torch.__version__}, timm {timm.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")')" | tee "$out/table.txt"

timed() {  # name, round, command...
  local name="$1" round="$2"; shift 2
  /usr/bin/time -f "%e %U %S" -o "$out/$name-$round.time" "$@" > "$out/$name-$round.log" 2>&1
  echo "$name round $round: $(cat "$out/$name-$round.time") (wall user system s)" >&2
}
for r in $(seq 1 "$rounds"); do
  timed cached "$r" "$ssf" train "${common[@]}" --output "$out/runs/cached-$r"
  timed uncached "$r" "$ssf" train "${common[@]}" --cache-features off --output "$out/runs/uncached-$r"
  timed torch "$r" "$torch_python" tools/torch_same_recipe.py --any-versions --data "$data" --method linear --lr 0.01 --config configs/repro-lite0-96px-noaug.yaml \
    --weights "$weights" --head-init zeros --bn auto --threads "$threads" --output "$out/runs/torch-$r"
done

python3 - "$out" "$rounds" <<'PY' | tee -a "$out/table.txt"
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def times(name):
    return [list(map(float, open(f"{out}/{name}-{r}.time").read().split()[-3:])) for r in range(1, rounds + 1)]
def top1(name, r):
    s = json.load(open(f"{out}/runs/{name}-{r}/summary.json"))
    return s.get("final_top1")
rows = {n: times(n) for n in ("cached", "uncached", "torch")}
med = {n: [statistics.median(t[i] for t in v) for i in range(3)] for n, v in rows.items()}
print(f"{'':10} {'wall s':>8} {'user s':>8} {'sys s':>7}  top-1 per round")
for n in rows:
    print(f"{n:10} {med[n][0]:8.1f} {med[n][1]:8.1f} {med[n][2]:7.2f}  " + ", ".join(f"{top1(n, r):.2f}" for r in range(1, rounds + 1)))
print(f"medians of {rounds} alternating rounds; uncached/cached wall {med['uncached'][0] / med['cached'][0]:.1f}x, "
      f"PyTorch/cached wall {med['torch'][0] / med['cached'][0]:.1f}x, PyTorch/uncached {med['torch'][0] / med['uncached'][0]:.2f}x")
PY
