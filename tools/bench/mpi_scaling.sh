#!/usr/bin/env bash
# The figures of the README's "More than one machine": allreduce times on loopback, ViT-B/16
# training step times (SSF and full), and EfficientNet-Lite0 SSF training throughput as
# 2 ranks × 1 thread against 1 process × 2 threads (2 loader threads in both), alternating.
#
#   tools/bench/mpi_scaling.sh IMAGEFOLDER [--rounds 3]
# IMAGEFOLDER: an ImageFolder dataset (train/<class>/…); 256 training images are used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data="${1:?usage: mpi_scaling.sh IMAGEFOLDER [--rounds N]}"; shift
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$root"
swift build -c release --product ssf >&2
ssf="$root/.build/release/ssf"
mpi=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader,tcp)
echo "CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores; $(mpirun --version | head -1)"

echo "== allreduce, 2 ranks on one machine"
"${mpi[@]}" -np 2 "$ssf" bench allreduce

echo "== ViT-B/16 training step, batch 8, 2 threads (median of 3)"
for method in ssf full; do
  "$ssf" bench model --model vit_base_patch16_224 --mode train --method "$method" --batch 8 --threads 2 --steps 3
done

echo "== EfficientNet-Lite0 SSF training, 256 images of batch 16 at 224, alternating"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
common=(train --model tf_efficientnet_lite0 --data "imagefolder:$data" --method ssf --epochs 1 --batch-size 16
        --train-limit 256 --eval-limit 16)
rate() { sed -n 's/.*"train_images_per_s" : \([0-9.]*\).*/\1/p' "$1/summary.json"; }
for r in $(seq 1 "$rounds"); do
  # The same loader threads in all: 2 in the one process, 1 per rank.
  "$ssf" "${common[@]}" --threads 2 --workers 2 --output "$scratch/one-$r" >/dev/null 2>&1
  "${mpi[@]}" -np 2 "$ssf" "${common[@]}" --threads 1 --workers 1 --output "$scratch/two-$r" >/dev/null 2>&1
  one=$(rate "$scratch/one-$r"); two=$(rate "$scratch/two-$r")
  echo "round $r: 1 process × 2 threads $one img/s, 2 ranks × 1 thread $two img/s, ratio $(python3 -c "print(round($two/$one, 3))")"
done
