#!/usr/bin/env bash
# The paper's analyses on tools/reproduce.sh's CIFAR-10 runs (EfficientNet-Lite0, 96 px): feature
# similarity of linear probing, bias tuning and SSF to full fine-tuning, layer by layer (minibatch
# CKA), and top-1 under ImageNet-C-style corruptions. Writes docs/analyses/ (the pages, JSON and SVG
# figures) and the "Analyses" section of docs/RESULTS.md (between its markers).
#
#   bash tools/reproduce_analyses.sh     # trains the four CIFAR-10 runs first when they are missing
#
# Inputs and work files as tools/reproduce.sh (SSF_REPRO_DIR, default ~/.cache/ssf/reproduce).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="${SSF_CACHE:-$HOME/.cache/ssf}"
work="${SSF_REPRO_DIR:-$cache/reproduce}"
threads="${SSF_NUM_THREADS:-$(nproc)}"
images="${CKA_IMAGES:-1024}"
out="$root/docs/analyses"

missing=0
for m in linear bias ssf full; do [ -f "$work/runs/cifar10-$m/summary.json" ] || missing=1; done
if [ "$missing" = 1 ]; then
  TRAIN_ONLY=1 METHODS="linear bias ssf full" DATASETS=cifar10 bash tools/reproduce.sh
fi
swift build -c release --product ssf >&2
ssf="$root/.build/release/ssf"
mkdir -p "$out"

runs=("$work/runs/cifar10-linear" "$work/runs/cifar10-bias" "$work/runs/cifar10-ssf")
similarity_cmd=(analyze similarity --runs "${runs[@]}" --reference "$work/runs/cifar10-full" --images "$images" --batch-size 64 --threads "$threads" --output "$out")
echo "ssf ${similarity_cmd[*]}"
"$ssf" "${similarity_cmd[@]}" | tee "$out/similarity.txt"

# Top-1 under the thirteen corruptions at severities 1-5, per method, on 500 of the 3,000 test images.
robust_limit="${ROBUST_LIMIT:-500}"
for m in linear bias ssf full; do
  robustness_cmd=(robustness --run "$work/runs/cifar10-$m" --limit "$robust_limit" --seed 0 --threads "$threads" --json --output "$out/robustness-$m")
  echo "ssf ${robustness_cmd[*]}"
  "$ssf" "${robustness_cmd[@]}" > /dev/null
done

python3 - "$root/docs/RESULTS.md" "$out" "ssf ${similarity_cmd[*]}" "ssf ${robustness_cmd[*]}" "$root" <<'PY'
import json, os, re, sys
results, out, similarity_cmd, robustness_cmd, root = sys.argv[1:6]
home = os.path.expanduser("~")
short = lambda text: text.replace(root + "/", "").replace(home, "~")
s = json.load(open(os.path.join(out, "similarity.json")))
lines = ["<!-- analyses:start -->", "## Analyses of the CIFAR-10 runs", ""]
lines += [f"### Feature similarity to full fine-tuning (minibatch CKA, {s['kernel']} kernel)", "",
          f"{s['model']}, {s['images']} test images of the CIFAR-10 subset in minibatches of {s['batch_size']}; each block's output "
          "(flattened per image) and the pre-logit features, against the same layer of the full fine-tuning run. "
          "1 means the same representation up to a rotation and a scale.", "",
          "![CKA per layer](analyses/similarity-layers.svg)", "", "![CKA heat map](analyses/similarity-heatmap.svg)", ""]
names = [r["label"] for r in s["runs"]]
lines += ["| Layer | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
fmt = lambda v: "—" if v is None else f"{v:.3f}"
for i, layer in enumerate(s["layers"]):
    lines.append(f"| {layer} | " + " | ".join(fmt(r["cka"][i]) for r in s["runs"]) + " |")
means = [sum(v for v in r["cka"] if v is not None) / max(1, sum(v is not None for v in r["cka"])) for r in s["runs"]]
lines.append("| mean | " + " | ".join(f"{m:.3f}" for m in means) + " |")
lines.append("| top-1 (%) | " + " | ".join("—" if r["top1"] is None else f"{r['top1']:.2f}" for r in s["runs"]) + " |")
ref = s["reference"]
lines += ["", f"Reference: full fine-tuning, top-1 {ref['top1']:.2f} %. The page with the table, heat map and curves: "
          "[analyses/similarity.html](analyses/similarity.html). Command:", "", "```", short(similarity_cmd), "```", ""]
methods = ["linear", "bias", "ssf", "full"]
rob = {m: json.load(open(os.path.join(out, f"robustness-{m}", "robustness.json"))) for m in methods}
first = rob["ssf"]
lines += [f"### Robustness: top-1 under ImageNet-C corruptions", "",
          f"The same four runs on {first['images']} of the test images (an even stride), clean and under each of the "
          f"{len(first['corruptions'])} corruptions at severities {', '.join(map(str, first['severities']))} (generated at 96 px, "
          "spatial parameters scaled by 96/224), seed 0. Each cell is the mean over the five severities.", "",
          "![SSF: mean top-1 over corruptions against severity](analyses/robustness-ssf/robustness-severity.svg)", "",
          "| Top-1 (%) | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
lines.append("| clean | " + " | ".join(f"{rob[m]['clean']['top1']:.2f}" for m in methods) + " |")
for name in first["corruptions"]:
    lines.append(f"| {name} | " + " | ".join(f"{rob[m]['corruptions'][name]['mean']:.2f}" for m in methods) + " |")
lines.append("| **mCA** | " + " | ".join(f"**{rob[m]['mca']:.2f}**" for m in methods) + " |")
lines.append("| relative drop | " + " | ".join(f"{100 * rob[m]['relative_drop']:.1f} %" for m in methods) + " |")
lines += ["", "Per-run pages: " + ", ".join(f"[{m}](analyses/robustness-{m}/robustness.html)" for m in methods)
          + f". With {first['images']} images one standard error is about 2 points. Command (per method):", "", "```",
          short(robustness_cmd), "```", ""]
lines.append("<!-- analyses:end -->")
section = "\n".join(lines) + "\n"
text = open(results).read()
if "<!-- analyses:start -->" in text:
    text = re.sub(r"<!-- analyses:start -->.*?<!-- analyses:end -->\n?", lambda _: section, text, flags=re.S)
else:
    marker = "\n## Commands"
    text = text.replace(marker, "\n" + section + marker, 1) if marker in text else text + "\n" + section
open(results, "w").write(text)
print("wrote the Analyses section of", results)
PY

# The pages in headless Chromium (their self-check), when a browser is there.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then
  bash tools/check_pages.sh
fi
