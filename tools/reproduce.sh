#!/usr/bin/env bash
# A small-scale, real-data version of the SSF paper's comparison of tuning methods:
# EfficientNet-Lite0 with its real ImageNet weights, fine-tuned on CIFAR-10 and Fashion-MNIST
# with linear probing, bias tuning, SSF and full fine-tuning, on documented subsets at 96 px.
# Writes docs/RESULTS.md (table, commands, machine) and docs/results-report.html (curves).
#
#   bash tools/reproduce.sh                 # everything (about 75 minutes on 2 cores: 28 ours, 42 PyTorch, then the sweeps)
#   METHODS="linear ssf" DATASETS=cifar10 bash tools/reproduce.sh
#   FORCE=1 bash tools/reproduce.sh         # train again even where a finished run exists
#   TORCH=0 bash tools/reproduce.sh         # without the PyTorch runs of the same recipe
#   SWEEP=0 bash tools/reproduce.sh         # without the learning-rate sweeps (tools/reproduce_sweeps.sh;
#                                           # SWEEP_DATASETS=cifar10 sweeps one dataset only)
#   HEAD_INIT=trunc-normal bash tools/reproduce.sh   # another new-head rule, for both frameworks
#   ANALYSES=0 bash tools/reproduce.sh      # without the CIFAR-10 analyses (tools/reproduce_analyses.sh)
#   TRAIN_ONLY=1 bash tools/reproduce.sh    # train the Swift runs only: no PyTorch, sweeps or tables
#
# Inputs (nothing is committed): the CIFAR-10 JPEG tarball (CIFAR10_TAR, default
# ../shared/data/cifar10-jpeg.tar.gz), Debian's dataset-fashion-mnist package (installed when
# run as root), and the EfficientNet-Lite0 weights that tools/fetch_real_data.sh downloads.
# Work files go to SSF_REPRO_DIR (default ~/.cache/ssf/reproduce).
#
# After the Swift runs, the same recipe is trained with PyTorch and timm (tools/torch_same_recipe.py,
# in the Python environment TORCH_PYTHON, default /root/venv-torch/bin/python) for every dataset and
# method the Swift runs cover, and the tables gain PyTorch's top-1, the difference and its training time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="${SSF_CACHE:-$HOME/.cache/ssf}"
work="${SSF_REPRO_DIR:-$cache/reproduce}"
cifar_tar="${CIFAR10_TAR:-$root/../shared/data/cifar10-jpeg.tar.gz}"
fmnist="${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
threads="${SSF_NUM_THREADS:-$(nproc)}"
methods="${METHODS:-linear bias ssf full}"
datasets="${DATASETS:-cifar10 fashion-mnist}"
train_per_class=500
test_per_class=300
weights="$cache/efficientnet-lite0-57934424.pth"
# The new head's initialisation (zeros, trunc-normal, torch-default), the same for both frameworks.
head_init="${HEAD_INIT:-zeros}"
torch_python="${TORCH_PYTHON:-/root/venv-torch/bin/python}"

# Peak learning rate per method (AdamW, batch 32).
lr_for() { case "$1" in full) echo 0.001 ;; ssf) echo 0.003 ;; *) echo 0.01 ;; esac; }

bash scripts/deps.sh
[ -f "$weights" ] || bash tools/fetch_real_data.sh
if [[ " $datasets " == *" fashion-mnist "* ]] && [ ! -f "$fmnist/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist >/dev/null
  else
    echo "Fashion-MNIST is missing; install it with: sudo apt-get install dataset-fashion-mnist" >&2; exit 1
  fi
fi
mkdir -p "$work/runs" "$work/logs" "$root/docs"
if [[ " $datasets " == *" cifar10 "* ]] && [ ! -d "$work/cifar10-$train_per_class/train" ]; then
  [ -f "$cifar_tar" ] || { echo "CIFAR-10 tarball not found at $cifar_tar (set CIFAR10_TAR)" >&2; exit 1; }
  python3 tools/make_cifar10_subset.py "$cifar_tar" "$work/cifar10-$train_per_class" --train $train_per_class --test $test_per_class
fi
swift build -c release --product ssf >&2
ssf="$root/.build/release/ssf"

data_for() {
  case "$1" in
    cifar10) echo "imagefolder:$work/cifar10-$train_per_class" ;;
    # An even stride through the 60,000/10,000 images keeps the ten classes balanced.
    fashion-mnist) echo "fashion-mnist:$fmnist" ;;
  esac
}
limits_for() {
  case "$1" in
    fashion-mnist) echo "--train-limit $((10 * train_per_class)) --eval-limit $((10 * test_per_class))" ;;
    *) echo "" ;;
  esac
}

: > "$work/commands.txt"
for ds in $datasets; do
  for m in $methods; do
    # lora and adapter need linear layers/MLP blocks; ssf says so when they do not apply.
    if ! "$ssf" inspect --model tf_efficientnet_lite0 --method "$m" --num-classes 10 >/dev/null 2>"$work/logs/$ds-$m.check"; then
      echo "skip $m on $ds: $(tail -n 1 "$work/logs/$ds-$m.check")"
      continue
    fi
    cmd="ssf train --model tf_efficientnet_lite0 --weights $weights --data $(data_for "$ds") $(limits_for "$ds") --method $m --lr $(lr_for "$m") --config configs/repro-lite0-96px.yaml --head-init $head_init --bn auto --threads $threads --output $work/runs/$ds-$m"
    echo "$cmd" | tee -a "$work/commands.txt"
    if [ -z "${FORCE:-}" ] && [ -f "$work/runs/$ds-$m/summary.json" ]; then
      echo "(kept the finished run in $work/runs/$ds-$m; FORCE=1 trains again)"; continue
    fi
    # shellcheck disable=SC2086
    "$ssf" ${cmd#ssf } > "$work/logs/$ds-$m.log" 2>&1 || { echo "failed: see $work/logs/$ds-$m.log" >&2; exit 1; }
    tail -n 1 "$work/logs/$ds-$m.log"
  done
done

# TRAIN_ONLY=1 stops here (tools/reproduce_analyses.sh trains the runs it analyses this way).
[ "${TRAIN_ONLY:-0}" = 1 ] && exit 0

runs=()
for ds in $datasets; do for m in $methods; do [ -f "$work/runs/$ds-$m/summary.json" ] && runs+=("$work/runs/$ds-$m"); done; done

# ---------------------------------------------------------------------------------------------
# PyTorch reference (TORCH=0 leaves it out): the same data, recipe, learning rate and threads
# with PyTorch and timm, for every run above, into $work/torch-runs/<dataset>-<method>.
# ---------------------------------------------------------------------------------------------
torch_table=()
if [ "${TORCH:-1}" != 0 ]; then
  if [ -x "$torch_python" ]; then
    mkdir -p "$work/torch-runs"
    for run in "${runs[@]}"; do
      name="$(basename "$run")"; ds="${name%-*}"; m="${name##*-}"
      cmd="$torch_python tools/torch_same_recipe.py --data $(data_for "$ds") $(limits_for "$ds") --method $m --lr $(lr_for "$m") --config configs/repro-lite0-96px.yaml --weights $weights --head-init $head_init --bn auto --threads $threads --output $work/torch-runs/$name"
      echo "$cmd" | tee -a "$work/commands.txt"
      if [ -z "${FORCE:-}" ] && [ -f "$work/torch-runs/$name/summary.json" ]; then
        echo "(kept the finished PyTorch run in $work/torch-runs/$name; FORCE=1 trains again)"; continue
      fi
      # shellcheck disable=SC2086
      $cmd > "$work/logs/torch-$name.log" 2>&1 || { echo "failed: see $work/logs/torch-$name.log" >&2; exit 1; }
      tail -n 1 "$work/logs/torch-$name.log"
    done
    torch_table=(--torch-runs "$work/torch-runs")
  else
    echo "skipping the PyTorch runs: no Python at $torch_python (set TORCH_PYTHON, or TORCH=0 to silence this). Create it with:" >&2
    echo "  python3 -m venv /root/venv-torch && /root/venv-torch/bin/pip install torch==2.5.1 torchvision==0.20.1 timm==1.0.11 pyyaml" >&2
  fi
fi

# ---------------------------------------------------------------------------------------------
# Learning-rate sweeps (SWEEP=0 leaves them out): tools/reproduce_sweeps.sh, into $work/sweeps.
# ---------------------------------------------------------------------------------------------
sweep_table=()
if [ "${SWEEP:-1}" != 0 ]; then
  METHODS="$methods" DATASETS="${SWEEP_DATASETS:-$datasets}" bash tools/reproduce_sweeps.sh
fi
[ -d "$work/sweeps" ] && sweep_table=(--sweeps "$work/sweeps")

"$ssf" report "${runs[@]}" --title "EfficientNet-Lite0: linear, bias, SSF and full fine-tuning on CIFAR-10 and Fashion-MNIST subsets" \
  --output docs/results-report.html
python3 tools/results_table.py --commands "$work/commands.txt" --threads "$threads" \
  --train-per-class $train_per_class --test-per-class $test_per_class "${torch_table[@]}" "${sweep_table[@]}" "${runs[@]}" > docs/RESULTS.md
echo "wrote docs/RESULTS.md and docs/results-report.html"

# The analyses of the CIFAR-10 runs (feature similarity, robustness) as a section of docs/RESULTS.md
# (ANALYSES=0 leaves them out).
if [ "${ANALYSES:-1}" != 0 ] && [[ " $datasets " == *" cifar10 "* ]]; then
  bash tools/reproduce_analyses.sh
fi
