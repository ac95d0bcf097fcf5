#!/usr/bin/env python3
"""Writes docs/RESULTS.md (to stdout) from the run directories of tools/reproduce.sh:
the table of each dataset (accuracy, trainable parameters, training time, memory), the exact
commands and the machine they ran on."""
import argparse
import datetime
import json
import os
import platform
import subprocess

ap = argparse.ArgumentParser()
ap.add_argument("runs", nargs="+")
ap.add_argument("--commands", required=True)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--train-per-class", type=int, required=True)
ap.add_argument("--test-per-class", type=int, required=True)
ap.add_argument("--torch-runs", help="folder of <dataset>-<method>/summary.json from tools/torch_same_recipe.py: "
                "adds PyTorch's top-1, the difference and PyTorch's training time to each table")
ap.add_argument("--sweeps", help="folder of <dataset>-<method>/sweep.json from ssf sweep: a table of the chosen learning rates")
args = ap.parse_args()


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        return "?"


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def mem_gib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 1024 / 1024
    return 0


names = {"cifar10": "CIFAR-10", "fashion-mnist": "Fashion-MNIST"}
rows = {}
for run in args.runs:
    summary = json.load(open(os.path.join(run, "summary.json")))
    dataset, method = os.path.basename(run.rstrip("/")).rsplit("-", 1)
    rows.setdefault(dataset, []).append((method, summary))

# The PyTorch runs of the same recipe, by (dataset, method).
torch_runs = {}
if args.torch_runs:
    for dataset, entries in rows.items():
        for method, _ in entries:
            path = os.path.join(args.torch_runs, f"{dataset}-{method}", "summary.json")
            if os.path.exists(path):
                torch_runs[(dataset, method)] = json.load(open(path))

out = []
w = out.append
w("# Results: tuning methods on real data")
w("")
w("A small-scale, real-data version of the SSF paper's comparison, run by `bash tools/reproduce.sh`.")
w("EfficientNet-Lite0 with its ImageNet weights (`efficientnet-lite0-57934424.pth`, fetched by")
w(f"`tools/fetch_real_data.sh`) is fine-tuned at 96×96 px on {args.train_per_class} training images per class and")
w(f"evaluated on {args.test_per_class} test images per class of CIFAR-10 (the JPEG copy, quality ≈75) and")
w("Fashion-MNIST (Debian's `dataset-fashion-mnist`; an even stride through the splits). Recipe for every")
w("method: `configs/repro-lite0-96px.yaml` (6 epochs, 1 warmup epoch then cosine, AdamW, batch 32,")
w("random-resized crop 0.5–1 and flips, label smoothing 0.1), peak learning rate 0.01 for linear and bias,")
w("0.003 for SSF and 0.001 for full fine-tuning. Top-1 is measured on the test subset after the last epoch")
w("(no selection on the test set). `lora` and `adapter` do not apply to EfficientNet-Lite0 (no")
w("attention or MLP blocks; `ssf inspect --method lora` says so), so they are not in the table; the")
w("`ssf demo` ViT has them (`ssf demo --methods linear,bias,ssf,lora,adapter,full`).")
w("")
w("Batch norm (`--bn auto`): full fine-tuning trains it in training mode (batch statistics, running statistics")
w("updated); linear, bias and SSF keep the pretrained statistics frozen. A new 10-class head starts at zero")
w("(`--head-init zeros`, the default; [HEAD-INIT.md](HEAD-INIT.md) has the measurements behind it).")
w("")
if args.torch_runs:
    w("The PyTorch columns train the same recipe (data subsets, transforms, model, weights, method, AdamW,")
    w("schedule, label smoothing, batch size, threads) with PyTorch and timm: `tools/torch_same_recipe.py`, run by")
    w("`tools/reproduce.sh` (`TORCH=0` leaves it out). Both top-1 values are after the last epoch; the difference")
    w("is in percentage points. PyTorch's training time is measured the same way (training steps with their data")
    w("loading, evaluation excluded).")
    if torch_runs:
        first = next(iter(torch_runs.values()))
        versions = ", ".join(f"{k} {first[k]}" for k in ("torch", "timm", "torchvision") if k in first)
        heads = sorted({s.get("head_init", "?") for s in torch_runs.values()})
        bn_modes = {}
        for (_, method), s in torch_runs.items():
            bn_modes.setdefault(s.get("bn", "?"), set()).add(method)
        order = ["linear", "bias", "ssf", "lora", "adapter", "full"]
        bn_text = "; ".join(f"{mode} for {', '.join(sorted(ms, key=lambda m: order.index(m) if m in order else 9))}"
                            for mode, ms in sorted(bn_modes.items()))
        w(f"PyTorch runs: {versions}; head initialisation {', '.join(heads)}; BatchNorm statistics {bn_text}.")
    else:
        w(f"(No PyTorch runs were found in `{args.torch_runs.replace(os.path.expanduser('~'), '~')}`.)")
    w("")
for dataset, entries in rows.items():
    order = {"linear": 0, "bias": 1, "ssf": 2, "lora": 3, "adapter": 4, "full": 5}
    entries.sort(key=lambda e: order.get(e[0], 9))
    w(f"## {names.get(dataset, dataset)}")
    w("")
    header = "| method | top-1 (%) | top-5 (%) | trainable params | training time | train img/s | peak memory (RSS) | task file |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if args.torch_runs:
        header += " PyTorch top-1 (%) | difference (ours − PyTorch) | PyTorch training time |"
        rule += " ---: | ---: | ---: |"
    w(header)
    w(rule)
    for method, s in entries:
        delta = f"{s['delta_bytes'] / 1024:.0f} KiB delta" if "delta_bytes" in s else "—"
        row = (f"| {method} | {s['final_top1']:.2f} | {s['final_top5']:.2f} | {s['trainable_params']:,} | "
               f"{s['train_seconds'] / 60:.1f} min | {s.get('train_images_per_s', 0):.1f} | {s.get('peak_rss_mib', 0):.0f} MiB | {delta} |")
        if args.torch_runs:
            t = torch_runs.get((dataset, method))
            if t:
                row += f" {t['final_top1']:.2f} | {s['final_top1'] - t['final_top1']:+.2f} | {t['train_seconds'] / 60:.1f} min |"
            else:
                row += " — | — | — |"
        w(row)
    w("")
if args.sweeps:
    w("## Learning rate chosen per method by `ssf sweep`")
    w("")
    w("`ssf sweep` with successive halving over three learning rates per method (the other settings as above):")
    w("every rate trains 2 epochs on 80% of the training subset (a seeded, stratified holdout), the best on the")
    w("held-out 20% is retrained for the full 6 epochs on the whole training subset and tested once. The test")
    w("split plays no part in the choice.")
    w("")
    w("| dataset | method | learning rates tried | validation top-1 (%) per rate | chosen | test top-1 (%) | at the fixed rate above | sweep time |")
    w("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
    def value(v):
        return v if not isinstance(v, dict) else next(iter(v.values()))
    for dataset, entries in rows.items():
        for method, summary in entries:
            path = os.path.join(args.sweeps, f"{dataset}-{method}", "sweep.json")
            if not os.path.exists(path):
                continue
            record = json.load(open(path))
            rates, vals, seconds = [], [], 0.0
            for trial in record["trials"]:
                rates.append(f"{value(trial['settings']['lr']):g}")
                done = [r for r in trial["runs"] if r.get("val_top1") is not None]
                vals.append(f"{done[0]['val_top1']:.1f}" if done else "—")
                seconds += sum(r.get("train_seconds") or 0 for r in trial["runs"])
            final = record.get("final") or {}
            seconds += final.get("train_seconds") or 0
            chosen = value((record.get("chosen") or {}).get("settings", {}).get("lr", "—"))
            test = final.get("test_top1")
            w(f"| {names.get(dataset, dataset)} | {method} | {', '.join(rates)} | {' / '.join(vals)} | {chosen:g} | "
              f"{test:.2f} | {summary['final_top1']:.2f} | {seconds / 60:.1f} min |" if test is not None else
              f"| {names.get(dataset, dataset)} | {method} | {', '.join(rates)} | {' / '.join(vals)} | {chosen} | — | {summary['final_top1']:.2f} | — |")
    w("")
    w("Sweep time is the training time of every trial and of the final run (evaluation excluded).")
    w("")
w("Training time is the time spent in training steps (data loading included, evaluation excluded).")
w("The curves, per-class accuracy and the same table are in [results-report.html](results-report.html)")
w("(a self-contained page; open it in a browser).")
w("")
w("## Commands")
w("")
w("```sh")
w("bash tools/reproduce.sh     # runs all of the below and writes this file")
for line in open(args.commands):
    w(line.strip().replace(os.path.expanduser("~"), "~"))
w("```")
w("")
w("## Machine")
w("")
w(f"- CPU: {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads used; {mem_gib():.0f} GiB memory")
w(f"- OS: {sh('. /etc/os-release && echo $PRETTY_NAME')}, {sh('swift --version 2>&1 | head -n 1')}")
openblas = sh("dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || dpkg-query -W -f='${Version}' libopenblas0")
coretype = os.environ.get("OPENBLAS_CORETYPE")
w(f"- OpenBLAS: {openblas}, " + (f"kernels forced by OPENBLAS_CORETYPE={coretype}" if coretype else "kernels chosen by OpenBLAS"))
dirty = " (with uncommitted changes)" if sh("git status --porcelain --untracked-files=no -- . ':!docs'") else ""
w(f"- Commit: {sh('git rev-parse --short HEAD')}{dirty}, run finished {datetime.date.today().isoformat()}")
print("\n".join(out))
