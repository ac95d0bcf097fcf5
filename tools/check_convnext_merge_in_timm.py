"""Checks in timm that a merged SSF ConvNeXt computes what the SSF reference model computes.

    python tools/check_convnext_merge_in_timm.py --merged MERGED.safetensors --model convnext_tiny \\
        --reference REF.safetensors --ssf-convnext /tmp/ssf_convnext.py \\
        [--depths 1 1 2 1 --dims 8 12 16 20] [--num-classes N] [--input-size H W]

1. Builds the SSF reference ConvNeXt (github.com/dongzelian/SSF, models/convnext.py,
   tuning_mode='ssf') of the named size (or --depths/--dims), loads REF.safetensors (a state dict
   in the reference layout) into it strictly, and runs a seeded random batch of 2 (224×224 for a
   named size, 40×40 otherwise) in float64: the reference logits.
2. Builds the plain model, `timm.create_model(MODEL, num_classes=N)` or timm's
   `ConvNeXt(depths, dims, num_classes=N)`, takes MERGED.safetensors (timm 1.0.11 names), pops the
   top-level `ssf_scale_1`/`ssf_shift_1` if present (the one SSF site that no op precedes: it
   scales the last stage's output before pooling) and applies them with a forward hook on
   `model.stages` (x·scale + shift per channel), loads the rest strictly (missing and unexpected
   keys are printed and fail the check), and runs the same batch in float64.
Prints the popped keys, max |Δ| of the logits and the relative error max |Δ| / max |reference|,
and exits 1 if that exceeds --tolerance (1e-4).

Which reference: the reference file's LayerNorm2d uses the unbiased (n−1) variance when its input
is non-contiguous, which the downsampling norms' input is (the previous block's output keeps
permuted strides); timm 1.0.11 and the original facebookresearch/ConvNeXt release use the
population variance everywhere. A merge cannot change a plain model's norm, so by default the
reference runs with timm's LayerNorm2d (`--reference-ln timm`); the file as is is run as well and
its difference printed; `--reference-ln as-is` gates on it instead.

    python tools/check_convnext_merge_in_timm.py --write-reference OUT.safetensors --model convnext_tiny \\
        --ssf-convnext /tmp/ssf_convnext.py [--num-classes 10] [--seed 0]

writes a seeded, randomly initialised reference-layout SSF ConvNeXt state dict (float32) for an
end-to-end check (write reference → the Swift tool converts and merges → this script checks): the
reference's own initialisation (convs and linears trunc-normal std 0.02, SSF scales ~ N(1, 0.02²),
shifts ~ N(0, 0.02²)), then layer scale `gamma` ~ N(0.5, 0.3²) so that the blocks matter, and
conv/linear biases ~ N(0, 0.02²), norm weights ~ N(1, 0.1²) and biases ~ N(0, 0.1²) so that the
merge's bias and norm terms matter too. num_classes defaults to 10. The file is read back into a
fresh reference model strictly before the script exits.

The reference file is loaded as tools/gen_convnext_layout_fixtures.py loads it (timm's
`register_model` disabled while it executes, so timm's own convnext names stay registered); its
`ssf_ada` is guarded against shapes where it would pick the wrong channel axis (a channels-first
tensor whose width equals its channel count), which raises and asks for another --input-size.

Pinned environment: torch==2.5.1, timm==1.0.11, safetensors; see tools/gen_convnext_layout_fixtures.py.
"""
import argparse
import json
import sys
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file, save_file
from timm.models.convnext import ConvNeXt

assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"

# The reference file's registered sizes (its @register_model functions).
SIZES = {
    "convnext_tiny": dict(depths=[3, 3, 9, 3], dims=[96, 192, 384, 768]),
    "convnext_small": dict(depths=[3, 3, 27, 3], dims=[96, 192, 384, 768]),
    "convnext_base": dict(depths=[3, 3, 27, 3], dims=[128, 256, 512, 1024]),
    "convnext_large": dict(depths=[3, 3, 27, 3], dims=[192, 384, 768, 1536]),
}
ROOT_SSF = ("ssf_scale_1", "ssf_shift_1")


sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssf_reference_convnext import load_reference, timm_layernorm  # noqa: E402


def architecture(args):
    if args.depths or args.dims:
        if not (args.depths and args.dims and len(args.depths) == len(args.dims) == 4):
            sys.exit("--depths and --dims need four values each")
        return dict(depths=args.depths, dims=args.dims), False
    if args.model not in SIZES:
        sys.exit(f"--model must be one of {sorted(SIZES)} (or give --depths and --dims)")
    return SIZES[args.model], True


def write_reference(ref, args):
    arch, _ = architecture(args)
    num_classes = args.num_classes or 10
    torch.manual_seed(args.seed)
    model = ref.ConvNeXt(**arch, num_classes=num_classes, tuning_mode="ssf")
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "gamma":
                p.copy_(0.5 + 0.3 * torch.randn_like(p))
            elif "ssf_" in leaf or p.ndim != 1:
                continue  # the reference initialisation
            elif "norm" in name and leaf == "weight":
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif "norm" in name:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.02 * torch.randn_like(p))
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    note = dict(model=args.model if not args.depths else None, **arch, num_classes=num_classes, seed=args.seed,
                source="SSF reference models/convnext.py, tuning_mode='ssf'")
    save_file(state, str(args.write_reference), metadata={"reference": json.dumps(note, sort_keys=True)})
    fresh = ref.ConvNeXt(**arch, num_classes=num_classes, tuning_mode="ssf")
    fresh.load_state_dict(load_file(str(args.write_reference)), strict=True)
    n_ssf = sum(v.numel() for k, v in state.items() if "ssf_" in k)
    print(f"wrote {args.write_reference}: {len(state)} tensors ({n_ssf} SSF numbers), "
          f"{sum(v.numel() for v in state.values())} numbers; loads back strictly")


def check(ref, args):
    arch, full_size = architecture(args)
    reference_state = load_file(str(args.reference))
    head = reference_state.get("head.fc.weight")
    num_classes = args.num_classes or (head.shape[0] if head is not None else 1000)
    reference = ref.ConvNeXt(**arch, num_classes=num_classes, tuning_mode="ssf")
    reference.load_state_dict(reference_state, strict=True)
    reference = reference.double().eval()

    h, w = args.input_size or ((224, 224) if full_size else (40, 40))
    torch.manual_seed(args.seed)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    with torch.no_grad():
        as_is = reference(x)
        with timm_layernorm(ref):
            timm_ln = reference(x)
    expected = timm_ln if args.reference_ln == "timm" else as_is

    if full_size and not args.depths:
        model = timm.create_model(args.model, pretrained=False, num_classes=num_classes)
    else:
        model = ConvNeXt(**arch, num_classes=num_classes)
    merged = load_file(str(args.merged))
    popped = {k: merged.pop(k) for k in ROOT_SSF if k in merged}
    result = model.load_state_dict(merged, strict=False)
    print(f"popped: {sorted(popped) or 'none'}")
    print(f"missing: {result.missing_keys or 'none'}")
    print(f"unexpected: {result.unexpected_keys or 'none'}")
    if result.missing_keys or result.unexpected_keys:
        print("FAIL: the merged file does not load strictly into the plain timm model")
        return 1
    if len(popped) == 1:
        print("FAIL: only one of ssf_scale_1 / ssf_shift_1 is present")
        return 1
    model = model.double().eval()
    if popped:
        scale = popped["ssf_scale_1"].double().view(1, -1, 1, 1)
        shift = popped["ssf_shift_1"].double().view(1, -1, 1, 1)
        model.stages.register_forward_hook(lambda _, __, out: out * scale + shift)
    with torch.no_grad():
        logits = model(x)

    scale_of = expected.abs().max().item()
    diff = (logits - expected).abs().max().item()
    rel = diff / scale_of
    other = (as_is - timm_ln).abs().max().item()
    print(f"input {tuple(x.shape)}, logits {tuple(logits.shape)}, max |reference| {scale_of:.4f}")
    print(f"merged timm vs reference ({args.reference_ln} LayerNorm2d): max |Δ| {diff:.3e}, relative {rel:.3e}")
    print(f"reference as is vs with timm's LayerNorm2d: max |Δ| {other:.3e} (relative {other / scale_of:.3e})")
    if rel > args.tolerance:
        print(f"FAIL: relative error {rel:.3e} > {args.tolerance:g}")
        return 1
    print("OK")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ssf-convnext", required=True, type=Path, help="the SSF repository's models/convnext.py")
    parser.add_argument("--model", default="convnext_tiny", help=f"one of {sorted(SIZES)}")
    parser.add_argument("--depths", type=int, nargs="+")
    parser.add_argument("--dims", type=int, nargs="+")
    parser.add_argument("--num-classes", type=int, help="default: REF's head size (checking), 10 (writing)")
    parser.add_argument("--merged", type=Path, help="the merged state dict, timm 1.0.11 names")
    parser.add_argument("--reference", type=Path, help="the reference-layout SSF state dict it was merged from")
    parser.add_argument("--write-reference", type=Path, metavar="OUT", help="write a random reference state dict and exit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--reference-ln", choices=["timm", "as-is"], default="timm")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ref = load_reference(args.ssf_convnext)
    if args.write_reference:
        write_reference(ref, args)
        return 0
    if not (args.merged and args.reference):
        parser.error("--merged and --reference are required (or --write-reference)")
    return check(ref, args)


if __name__ == "__main__":
    sys.exit(main())
