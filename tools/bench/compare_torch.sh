#!/usr/bin/env bash
# Our speed beside the PyTorch and timm a user installs today, on this machine, alternating:
#  1. ViT-B/16, Swin-B and ConvNeXt-B (random weights, random input): inference, SSF training and
#     full fine-tuning steps through `ssf bench model` and tools/bench/torch_bench.py (timm + SSF
#     added the reference way); images/s, peak RSS, and each mode's fraction of the sgemm roof
#     (FLOPs: the forward; + input gradients for SSF; + weight gradients for full). The roof is
#     measured twice: `ssf bench model --roof` alternates every timed step with one sgemm at each
#     ViT-B projection shape (the fraction of the same moments: this VM's speed drifts by a third
#     within an hour), and `ssf bench ops`' sgemm_all once per round (the fraction of its median).
#     A third reference takes its turn in the same alternation: the model's own top-level GEMMs
#     (every linear layer's and convolution's product, forward and backward, with the model's own
#     weights as operands) replayed as raw BLAS, so the fraction shows what the step loses outside
#     its matrix products.
#  2. EfficientNet-Lite0 SSF training at 128 px on tools/reproduce.sh's CIFAR-10 subset, the same
#     recipe (configs/bench-lite0-128px.yaml) through `ssf train` and tools/torch_same_recipe.py:
#     training images/s of the whole step, data loading included.
# Each (side, model, mode) is measured ROUNDS times in alternation; tables show medians. On a CPU
# with AVX-512 both sides also run restricted to AVX2 (ours: OPENBLAS_CORETYPE=Haswell; PyTorch:
# ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2, and MKL_ENABLE_INSTRUCTIONS=AVX2 for the MKL
# sgemm behind its linear layers). Odd rounds run PyTorch first, even rounds ours first.
#
#   tools/bench/compare_torch.sh [--batch 8] [--threads 2] [--steps 5] [--rounds 2] [--isa both|native|avx2]
#                                [--models "vit_base_patch16_224 ..."] [--no-lite0] [--output DIR]
#
# PyTorch: PYTHON (default ~/venv-torch-latest/bin/python). When that venv is missing it is created
# with the latest torch, torchvision and timm from PyPI (the fixtures keep their own pinned venv);
# the versions found are printed with the tables. Results (raw JSON lines and tables) go to --output
# (default ~/.cache/ssf/bench/compare-torch).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
batch=8 threads=2 steps=5 rounds=2 isa=both lite0=1
models="vit_base_patch16_224 swin_base_patch4_window7_224 convnext_base"
cache="${SSF_CACHE:-$HOME/.cache/ssf}"
out="$cache/bench/compare-torch"
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) batch="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --isa) isa="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --no-lite0) lite0=0; shift ;;
    --output) out="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
venv="$HOME/venv-torch-latest"
python="${PYTHON:-$venv/bin/python}"
if [ -z "${PYTHON:-}" ] && [ ! -x "$python" ]; then
  echo "creating $venv with the latest torch, torchvision and timm from PyPI (a few GB)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q torch torchvision timm pyyaml numpy pillow
fi
cd "$root"
swift build -c release --product ssf >&2
ssf="$root/.build/release/ssf"
mkdir -p "$out"
raw="$out/raw.jsonl"
: > "$raw"

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
# Virtual machines often report only the vendor's family name: add the family and model numbers
# and whether AVX-512 is there, which tell the core generation apart.
cpu="$cpu (family $(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $(grep -qw avx512f /proc/cpuinfo && echo 'with AVX-512' || echo 'no AVX-512'))"
levels="native"
if grep -qw avx512f /proc/cpuinfo; then
  case "$isa" in both) levels="native avx2" ;; avx2) levels="avx2" ;; native) levels="native" ;; esac
elif [ "$isa" = avx2 ]; then levels="native"; fi
versions="$("$python" -c 'import torch, timm; print(f"torch {torch.__version__}, timm {timm.__version__}")')"
echo "CPU: $cpu, $(nproc) cores; $versions; batch $batch, $threads threads, $steps timed steps, $rounds rounds; ISA levels: $levels" | tee "$out/header.txt" >&2

# env for a side at a level: `isa_env ours|torch native|avx2` prints the assignments.
isa_env() {
  if [ "$2" = avx2 ]; then
    if [ "$1" = ours ]; then echo "OPENBLAS_CORETYPE=Haswell"; else echo "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2"; fi
  fi
}
record() {  # level side json
  "$python" -c 'import json, sys; d = json.loads(sys.argv[3]); d["level"] = sys.argv[1]; d["side"] = sys.argv[2]; print(json.dumps(d))' "$1" "$2" "$3" >> "$raw"
}
run_ours() { env $(isa_env ours "$1") "$ssf" bench model --model "$2" --mode "$3" "${@:4}" --batch "$batch" --threads "$threads" --steps "$steps" --json; }
run_torch() {
  env $(isa_env torch "$1") OMP_NUM_THREADS="$threads" "$python" tools/bench/torch_bench.py --model "$2" --mode "$3" \
    --batch "$batch" --threads "$threads" --steps "$steps"
}

lite0_data="$cache/reproduce/cifar10-500"
lite0_weights="$cache/efficientnet-lite0-57934424.pth"
if [ "$lite0" = 1 ] && { [ ! -d "$lite0_data/train" ] || [ ! -f "$lite0_weights" ]; }; then
  echo "EfficientNet-Lite0 part skipped: needs $lite0_data (TRAIN_ONLY=1 DATASETS=cifar10 METHODS=linear bash tools/reproduce.sh) and $lite0_weights (tools/fetch_real_data.sh)" >&2
  lite0=0
fi
lite0_train() {  # level side round
  local dir="$out/lite0-runs/$1-$2-$3"
  rm -rf "$dir"
  if [ "$2" = ours ]; then
    env $(isa_env ours "$1") /usr/bin/time -f "%e %U %S" -o "$dir.time" "$ssf" train --model tf_efficientnet_lite0 --weights "$lite0_weights" --data "imagefolder:$lite0_data" \
      --method ssf --lr 0.01 --config configs/bench-lite0-128px.yaml --head-init zeros --threads "$threads" --output "$dir" > "$dir.log" 2>&1
  else
    env $(isa_env torch "$1") /usr/bin/time -f "%e %U %S" -o "$dir.time" "$python" tools/torch_same_recipe.py --any-versions --data "imagefolder:$lite0_data" --method ssf --lr 0.01 \
      --config configs/bench-lite0-128px.yaml --weights "$lite0_weights" --head-init zeros --bn auto --threads "$threads" --workers 1 --output "$dir" > "$dir.log" 2>&1
  fi
  record "$1" "$2" "$("$python" -c 'import json, sys; s = json.load(open(sys.argv[1] + "/summary.json")); wall, user, system = map(float, open(sys.argv[1] + ".time").read().split()[-3:]); print(json.dumps({"model": "tf_efficientnet_lite0", "mode": "ssf-train-128px", "img_per_s": s["train_images_per_s"], "train_seconds": s["train_seconds"], "peak_rss_mib": s.get("peak_rss_mib"), "wall_s": wall, "user_s": user, "system_s": system}))' "$dir")"
}

for level in $levels; do
  for r in $(seq 1 "$rounds"); do
    for model in $models; do
      for mode in infer ssf full; do
        sides="torch ours"; [ $((r % 2)) = 0 ] && sides="ours torch"
        for side in $sides; do
          echo "[$level round $r] $side $model $mode" >&2
          if [ "$side" = torch ]; then record "$level" torch "$(run_torch "$level" "$model" "$mode")"
          else record "$level" ours "$(run_ours "$level" "$model" "$mode" --roof)"; fi
        done
      done
    done
    echo "[$level round $r] sgemm roof" >&2
    record "$level" ops "$(env $(isa_env ours "$level") "$ssf" bench ops --threads "$threads" --json | grep '"sgemm_all"')"
    if [ "$lite0" = 1 ]; then
      mkdir -p "$out/lite0-runs"
      sides="torch ours"; [ $((r % 2)) = 0 ] && sides="ours torch"
      for side in $sides; do
        echo "[$level round $r] EfficientNet-Lite0 SSF training, $side" >&2
        lite0_train "$level" "$side" "$r"
      done
    fi
  done
  for model in $models; do
    echo "[$level] ours $model merged / unmerged SSF inference" >&2
    record "$level" ours "$(run_ours "$level" "$model" merged)"
    record "$level" ours "$(run_ours "$level" "$model" infer --method ssf)"
  done
done
for model in $models; do
  "$python" -c 'import json, sys; d = json.loads(sys.argv[2]); print(json.dumps({"side": "gmacs", "model": sys.argv[1], "gmacs": d["gmacs"]}))' \
    "$model" "$("$ssf" inspect --model "$model" --json)" >> "$raw"
done

"$python" - "$raw" "$out/header.txt" <<'PY' | tee "$out/table.md"
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(open(sys.argv[2]).read().strip() + "\n")
gmacs = {r["model"]: r["gmacs"] for r in rows if r["side"] == "gmacs"}
levels = list(dict.fromkeys(r["level"] for r in rows if "level" in r))
passes = {"infer": 1, "ssf": 2, "full": 3}
def med(values): return statistics.median(values) if values else None
for level in levels:
    at = [r for r in rows if r.get("level") == level]
    roof = med([r["gflops"] for r in at if r["side"] == "ops"])
    def group(side, model, mode, key="img_per_s"):
        return [r[key] for r in at if r["side"] == side and r["model"] == model and r["mode"] == mode and r.get(key) is not None]
    print(f"### ISA level: {level}" + (" (both sides restricted to AVX2)" if level == "avx2" else " (each side's own choice)"))
    alternating_roofs = [r["roof_gflops"] for r in at if r.get("roof_gflops")]
    in_alternation = (f"; in alternation with our model steps: {med(alternating_roofs):.1f} (median, {min(alternating_roofs):.1f}–{max(alternating_roofs):.1f})"
                      if alternating_roofs else "")
    print(f"\nsgemm roof (ssf bench ops, ViT-B shapes): {roof:.1f} GFLOP/s (median of {len([r for r in at if r['side'] == 'ops'])}){in_alternation}\n")
    print("| model | mode | PyTorch img/s | ours img/s | ours ÷ PyTorch | ours GFLOP/s | of roof in alternation | of bench-ops roof | of its own GEMMs (their share of FLOPs) | PyTorch peak RSS MiB | ours peak RSS MiB | RSS ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    models = list(dict.fromkeys(r["model"] for r in at if r["side"] == "torch" and r["mode"] in passes))
    for model in models:
        for mode in passes:
            t, o = med(group("torch", model, mode)), med(group("ours", model, mode))
            if t is None or o is None: continue
            tr, orss = med(group("torch", model, mode, "peak_rss_mib")), med(group("ours", model, mode, "peak_rss_mib"))
            rate = 2 * gmacs.get(model, 0) * passes[mode] * o
            frac = f"{rate / roof:.2f}" if roof and model in gmacs else "—"
            alternating = med(group("ours", model, mode, "fraction_of_roof"))
            alt = f"**{alternating:.2f}**" if alternating is not None else "—"
            own, share = med(group("ours", model, mode, "fraction_of_own_gemms")), med(group("ours", model, mode, "own_gemm_flop_share"))
            own_text = f"{own:.2f} ({share:.0%})" if own is not None and share is not None else "—"
            print(f"| {model} | {mode} | {t:.2f} | {o:.2f} | **{o / t:.2f}** | {rate:.1f} | {alt} | {frac} | {own_text} | {tr:.0f} | {orss:.0f} | {orss / tr:.2f} |")
    t, o = group("torch", "tf_efficientnet_lite0", "ssf-train-128px"), group("ours", "tf_efficientnet_lite0", "ssf-train-128px")
    if t and o:
        print(f"\nEfficientNet-Lite0 SSF training, 128 px, CIFAR-10 subset (5,000 images, 1 epoch), training images/s with data loading:"
              f" PyTorch {med(t):.1f} ({', '.join(f'{v:.1f}' for v in t)}), ours {med(o):.1f} ({', '.join(f'{v:.1f}' for v in o)}),"
              f" **{med(o) / med(t):.2f}×**")
        def times(side):
            rs = [r for r in at if r["side"] == side and r["mode"] == "ssf-train-128px" and r.get("user_s") is not None]
            return f"user {med([r['user_s'] for r in rs]):.1f} s, system {med([r['system_s'] for r in rs]):.1f} s" if rs else "—"
        print(f"(whole commands, medians: PyTorch {times('torch')}; ours {times('ours')})")
    merged = [(r, next((u for u in at if u["side"] == "ours" and u["model"] == r["model"] and u["mode"] == "infer-ssf"), None))
              for r in at if r["side"] == "ours" and r["mode"] == "merged"]
    if merged:
        print("\nMerged and unmerged SSF inference against the plain model, in alternation in one process:\n")
        print("| model | merged ÷ plain | unmerged ÷ plain |")
        print("| --- | ---: | ---: |")
        for m, u in merged:
            print(f"| {m['model']} | {m['ratio_to_plain']:.3f} | {u['ratio_to_plain']:.3f} |" if u else f"| {m['model']} | {m['ratio_to_plain']:.3f} | — |")
    print()
PY
