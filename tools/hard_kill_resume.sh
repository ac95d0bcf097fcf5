#!/usr/bin/env bash
# Kills a real training run with SIGKILL at random points, K times, continuing it with
# `ssf train --resume` after each kill, and checks that it ends exactly where the same run
# uninterrupted ends: metrics.jsonl (timings aside) and last/best/delta weights byte for byte.
#
#   tools/hard_kill_resume.sh [DATA_DIR] [KILLS] [EPOCHS]
#
# DATA_DIR is an ImageFolder (default: the CIFAR-10 subset tools/reproduce.sh builds,
# ~/.cache/ssf/reproduce/cifar10-500); KILLS defaults to 20, EPOCHS to 3. Uses $SSF, else
# .build/release/ssf. Prints, per kill, the delay and what the run directory held at that moment
# (finished epochs, a checkpoint being written), then the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-$HOME/.cache/ssf/reproduce/cifar10-500}
KILLS=${2:-20}
EPOCHS=${3:-3}
SSF=${SSF:-.build/release/ssf}
[ -x "$SSF" ] || { echo "no $SSF: build it with swift build -c release --product ssf (or set SSF)" >&2; exit 2; }
[ -d "$DATA/train" ] || { echo "$DATA has no train/ folder: give an ImageFolder (tools/reproduce.sh builds the default)" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
COMMON=(train --model demo_vit_patch4_32 --data "imagefolder:$DATA" --method ssf --epochs "$EPOCHS" --batch-size 32
        --workers 1 --threads 1 --lr 3e-3 --train-limit 2048 --eval-limit 512)

start=$(date +%s.%N)
"$SSF" "${COMMON[@]}" --output "$WORK/reference" > "$WORK/reference.log" 2>&1
duration=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
echo "uninterrupted run: ${duration} s"

kills=0; attempts=0; during_write=0; resumed=0; cycles=0; status=0
check() {  # compares run directory $1 with the reference
  python3 - "$WORK/reference/metrics.jsonl" "$1/metrics.jsonl" <<'PY' || status=1
import json, sys
def epochs(path):
    return [{k: v for k, v in json.loads(line).items() if k not in ("images_per_s", "epoch_seconds")} for line in open(path)]
a, b = epochs(sys.argv[1]), epochs(sys.argv[2])
print("  metrics.jsonl: " + ("identical" if a == b else "DIFFERENT") + f" ({len(a)} vs {len(b)} epochs)")
sys.exit(0 if a == b else 1)
PY
  for f in last.safetensors best.safetensors task.delta.safetensors; do
    if cmp -s "$WORK/reference/$f" "$1/$f"; then echo "  $f: identical"; else echo "  $f: DIFFERENT"; status=1; fi
  done
}
# Each cycle trains the run to its end through as many kills as land; cycles repeat until KILLS kills.
while [ "$kills" -lt "$KILLS" ]; do
  cycles=$((cycles + 1))
  run="$WORK/killed$cycles"
  while :; do
    attempts=$((attempts + 1))
    if [ -f "$run/config.yaml" ]; then args=(train --resume "$run" --workers 1 --threads 1); else args=("${COMMON[@]}" --output "$run"); fi
    "$SSF" "${args[@]}" > "$WORK/attempt$attempts.log" 2>&1 &
    pid=$!
    if [ "$kills" -ge "$KILLS" ]; then
      how="left to finish"  # enough kills: the cycle ends with the run finishing
    elif [ $((attempts % 3)) -eq 0 ]; then
      # Every third attempt dies in a checkpoint write: killed as soon as a temporary file appears.
      how="in a checkpoint write"
      python3 - "$run" "$pid" <<'PY' || true
import os, signal, sys, time
run, pid = sys.argv[1], int(sys.argv[2])
end = time.time() + 120
while time.time() < end:
    try:
        if any(n.endswith(".tmp") for n in os.listdir(run)):
            os.kill(pid, signal.SIGKILL); break
    except FileNotFoundError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(0.0002)
PY
    else
      # Uniform in [0.05, 0.5] of the whole run: some kills land in start-up, most in training or evaluation.
      delay=$(python3 -c "import random; print(round(random.uniform(0.05, 0.5) * $duration, 2))")
      how="after ${delay} s"
      sleep "$delay"
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    code=0
    { wait "$pid"; } 2>/dev/null || code=$?
    if [ "$code" -eq 0 ]; then
      echo "cycle $cycles, attempt $attempts finished the run"
      break
    elif [ "$code" -eq 137 ]; then
      kills=$((kills + 1))
      [ "$how" = "in a checkpoint write" ] && during_write=$((during_write + 1))
      echo "kill $kills (cycle $cycles): $how; epoch lines then $(wc -l < "$run/metrics.jsonl" 2>/dev/null || echo 0)"
    else
      echo "attempt $attempts failed (exit $code):"; tail -5 "$WORK/attempt$attempts.log"; exit 1
    fi
    grep -q "resuming at epoch" "$WORK/attempt$attempts.log" && resumed=$((resumed + 1))
  done
  check "$run"
done
echo "$kills kills over $attempts attempts in $cycles cycles ($during_write in a checkpoint write; $resumed attempts continued from a checkpoint)"
exit $status
