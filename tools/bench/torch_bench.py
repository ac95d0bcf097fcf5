#!/usr/bin/env python3
"""PyTorch side of tools/bench/compare_torch.sh: images/s and peak RSS of one configuration.

timm models with SSF added as the reference code does it (x * scale + shift after each site, the
sites of SSF-SPEC, taken from the fixture generators' `ssf_sites`), random weights, random input.
Modes: infer (plain model), ssf / full (a training step: forward, cross-entropy, backward, AdamW).

    ~/venv-torch/bin/python tools/bench/torch_bench.py --model vit_base_patch16_224 --mode ssf --batch 8 --threads 2

Runs with whatever torch and timm are installed (compare_torch.sh uses the latest from PyPI) and
reports their versions with the figures.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import timm

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ["SSF_SITES_ONLY"] = "1"  # the fixture generators, imported for their ssf_sites only

FAMILY_SITES = {
    "vit": "gen_model_fixtures_vit",
    "swin": "gen_model_fixtures_swin",
    "convnext": "gen_model_fixtures_convnext",
}


def family(name):
    return "vit" if name.startswith("vit") else "swin" if name.startswith("swin") else "convnext"


def add_ssf(model, name):
    """Adds trainable SSF vectors at the reference sites; returns them."""
    sites = __import__(FAMILY_SITES[family(name)]).ssf_sites(model)
    params = []
    for site in sites:
        module = site[1]
        channels_first = site[2] if len(site) == 4 else isinstance(module, torch.nn.Conv2d)
        holder = {}

        def hook(_, __, out, holder=holder, channels_first=channels_first):
            if "scale" not in holder:
                c = out.shape[1] if channels_first else out.shape[-1]
                holder["scale"] = torch.nn.Parameter(1 + 0.02 * torch.randn(c))
                holder["shift"] = torch.nn.Parameter(0.02 * torch.randn(c))
                params.extend([holder["scale"], holder["shift"]])
            scale, shift = holder["scale"], holder["shift"]
            if channels_first:
                shape = (1, -1) + (1,) * (out.dim() - 2)
                return out * scale.view(shape) + shift.view(shape)
            return out * scale + shift

        module.register_forward_hook(hook)
    return params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=["infer", "ssf", "full"], default="infer")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--num-classes", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, num_classes=args.num_classes)
    size = model.pretrained_cfg["input_size"][-1]
    x = torch.randn(args.batch, 3, size, size)
    labels = torch.arange(args.batch) % args.num_classes
    if args.mode == "infer":
        model.eval()
    else:
        model.train()
        ssf = add_ssf(model, args.model) if args.mode == "ssf" else []
        with torch.no_grad():
            model(x[:1])  # creates the SSF vectors
        for n, p in model.named_parameters():
            p.requires_grad = args.mode == "full" or n.startswith("head")
        trainable = [p for p in model.parameters() if p.requires_grad] + ssf
        opt = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.05)
        loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for step in range(args.steps + 2):
        start = time.perf_counter()
        if args.mode == "infer":
            with torch.inference_mode():
                model(x)
        else:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), labels).backward()
            opt.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"model": args.model, "mode": args.mode, "batch": args.batch, "threads": args.threads,
                      "img_per_s": round(args.batch / median, 3), "step_s": round(median, 4), "peak_rss_mib": round(peak, 1),
                      "torch": torch.__version__, "timm": timm.__version__}))


if __name__ == "__main__":
    main()
