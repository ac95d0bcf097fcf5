#!/usr/bin/env bash
# The learning-rate sweeps of the reproduction (tools/reproduce.sh runs this after its fixed-rate runs):
# for every dataset and method, `ssf sweep` over three learning rates with successive halving on a
# stratified holdout of the training subset, then the choice retrained on the whole subset and
# tested once. Writes $SSF_REPRO_DIR/sweeps/<dataset>-<method>/ (sweep.json, report.html, trials/, final/).
#
#   bash tools/reproduce_sweeps.sh                       # every dataset and method (about 30 minutes on 2 cores)
#   METHODS=ssf DATASETS=cifar10 bash tools/reproduce_sweeps.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="${SSF_CACHE:-$HOME/.cache/ssf}"
work="${SSF_REPRO_DIR:-$cache/reproduce}"
fmnist="${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
threads="${SSF_NUM_THREADS:-$(nproc)}"
methods="${METHODS:-linear bias ssf full}"
datasets="${DATASETS:-cifar10 fashion-mnist}"
weights="$cache/efficientnet-lite0-57934424.pth"
head_init="${HEAD_INIT:-zeros}"
ssf="$root/.build/release/ssf"
[ -x "$ssf" ] || swift build -c release --product ssf >&2

# Three rates around each method's fixed rate in tools/reproduce.sh.
grid_for() { case "$1" in full) echo 3e-4,1e-3,3e-3 ;; ssf) echo 1e-3,3e-3,1e-2 ;; *) echo 3e-3,1e-2,3e-2 ;; esac; }
data_for() {
  case "$1" in
    cifar10) echo "imagefolder:$work/cifar10-500" ;;
    fashion-mnist) echo "fashion-mnist:$fmnist --train-limit 5000 --eval-limit 3000" ;;
  esac
}
mkdir -p "$work/sweeps" "$work/logs"
for ds in $datasets; do
  for m in $methods; do
    out="$work/sweeps/$ds-$m"
    cmd="ssf sweep --model tf_efficientnet_lite0 --weights $weights --data $(data_for "$ds") --method $m --config configs/repro-lite0-96px.yaml --head-init $head_init --grid lr=$(grid_for "$m") --halving --threads $threads --output $out"
    echo "$cmd" | tee -a "$work/commands.txt"
    if [ -z "${FORCE:-}" ] && [ -f "$out/sweep.json" ] &&
       python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["status"] != "finished")' "$out/sweep.json"; then
      echo "(kept the finished sweep in $out; FORCE=1 sweeps again)"; continue
    fi
    rm -rf "$out"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$ssf" ${cmd#ssf } > "$work/logs/sweep-$ds-$m.log" 2>&1 || { echo "failed: see $work/logs/sweep-$ds-$m.log" >&2; exit 1; }
    echo "$ds $m: $(tail -n 1 "$work/logs/sweep-$ds-$m.log") ($(( $(date +%s) - start )) s wall)"
  done
done
