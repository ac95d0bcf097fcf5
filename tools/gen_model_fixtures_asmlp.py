"""Generates the AS-MLP parity fixtures (Tests/SSFModelsTests/Fixtures/asmlp_*.safetensors).

AS-MLP is not part of timm. The reference is the SSF authors' PyTorch model file
(github.com/dongzelian/SSF, models/as_mlp.py), which registers `as_base_patch4_window7_224`
with timm and implements the axial shift with F.pad + torch.chunk + torch.roll + narrow
(the original svip-lab/AS-MLP file needs a cupy CUDA kernel; this torch path computes the
same zero-filled shift). That file is fetched for the run and never committed:

    git --git-dir=<mirror of dongzelian/SSF> show HEAD:models/as_mlp.py > /tmp/as_mlp.py
    ~/venv-torch/bin/python tools/gen_model_fixtures_asmlp.py --model-file /tmp/as_mlp.py

Pinned environment: torch==2.5.1, timm==1.0.11 (the file imports timm helpers), safetensors.
Create it with

    python3 -m venv ~/venv-torch && ~/venv-torch/bin/pip install torch==2.5.1 timm==1.0.11 safetensors numpy

The small configs are built with the file's `AS_MLP` class directly (its registry only knows
the base size). Each fixture holds:
  model.<key>        the reference model's state_dict (float32), SSF entries included when
                     the config has tuning_mode "ssf";
  input, logits      a random batch and the eval-mode logits;
  R                  a random cotangent with the logits' shape;
  grad.input         d/d input of (logits * R).sum();
  grad.model.<key>   the same gradient for the parameters listed in the metadata.
`__metadata__` has one entry, "fixture", a JSON object with "config" (the AS_MLP keyword
arguments) and, in asmlp_plain only, "reference_counts" (the full-size models' parameter
counts, see `reference_counts`). One entry only: safetensors writes metadata entries in a
random order, which would make the files differ from run to run.
References are computed in float64 from the stored float32 values. The run is deterministic.
"""
import argparse
import importlib.util
import json
import sys
from pathlib import Path

import safetensors
import timm
import torch
from safetensors.torch import save_file

assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"
if safetensors.__version__ != "0.8.0":
    print(f"note: fixtures were written with safetensors 0.8.0, found {safetensors.__version__}")

OUT_DIR = Path(__file__).resolve().parent.parent / "Tests" / "SSFModelsTests" / "Fixtures"
SIZE_LIMIT = 400_000

# Full-size configurations: AS-MLP paper / svip-lab configs (as_*_patch4_shift5_224.yaml).
FULL_SIZE = {
    "as_tiny_patch4_window7_224": dict(embed_dim=96, depths=[2, 2, 6, 2]),
    "as_small_patch4_window7_224": dict(embed_dim=96, depths=[2, 2, 18, 2]),
    "as_base_patch4_window7_224": dict(embed_dim=128, depths=[2, 2, 18, 2]),
}

# Small parity configurations. The plain one has three stages with 8, 16 and 32 channels, so
# torch.chunk makes 4 groups (8 = 4·2, 16 = 4·4) and uneven groups (32 = 4·7 + 4), and its last
# stage is 2×2, narrower than the largest shift; the SSF one has 10 and 20 (five equal groups).
CONFIGS = {
    "asmlp_plain": dict(
        kwargs=dict(img_size=32, patch_size=4, in_chans=3, num_classes=10, embed_dim=8, depths=[1, 1, 1],
                    shift_size=5, mlp_ratio=4.0, as_bias=True, patch_norm=True, tuning_mode=None),
        grads=["patch_embed.proj.weight", "patch_embed.norm.weight", "layers.0.blocks.0.norm1.weight",
               "layers.0.blocks.0.axial_shift.conv1.weight", "layers.0.blocks.0.axial_shift.conv2_1.weight",
               "layers.0.blocks.0.axial_shift.conv2_2.bias", "layers.0.blocks.0.axial_shift.norm2.bias",
               "layers.0.downsample.norm.weight", "layers.0.downsample.reduction.weight",
               "layers.1.blocks.0.mlp.fc1.weight", "layers.2.blocks.0.mlp.fc2.bias", "norm.weight",
               "head.weight", "head.bias"],
        seed=1,
    ),
    "asmlp_ssf": dict(
        kwargs=dict(img_size=32, patch_size=4, in_chans=3, num_classes=7, embed_dim=10, depths=[1, 2],
                    shift_size=5, mlp_ratio=4.0, as_bias=True, patch_norm=True, tuning_mode="ssf"),
        grads="ssf",  # every SSF vector, plus the head
        seed=2,
    ),
}


def load_reference(path):
    spec = importlib.util.spec_from_file_location("as_mlp_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def randomize(model):
    """Moves norm affines and SSF vectors away from their identity initialisation, so that a
    misplaced or missing site shows up in the logits."""
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        is_norm = ".norm" in "." + name and p.dim() == 1
        with torch.no_grad():
            if leaf.startswith("ssf_scale") or (is_norm and leaf == "weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif leaf.startswith("ssf_shift") or (is_norm and leaf == "bias"):
                p.copy_(0.3 * torch.randn_like(p))


def make_fixture(ref, name, case):
    torch.manual_seed(case["seed"])
    kwargs = case["kwargs"]
    model = ref.AS_MLP(**kwargs)
    randomize(model)
    model.eval()
    state = {k: v.detach().clone().float().contiguous() for k, v in model.state_dict().items()}
    size = kwargs["img_size"]
    x = torch.randn(2, kwargs["in_chans"], size, size)

    model64 = model.double()
    x64 = x.double().requires_grad_(True)
    logits = model64(x64)
    r = torch.randn(logits.shape, dtype=torch.float64)
    (logits * r).sum().backward()

    params = dict(model64.named_parameters())
    if case["grads"] == "ssf":
        grad_names = [k for k in params if "ssf_" in k or k.startswith("head.")]
    else:
        grad_names = case["grads"]
    tensors = {f"model.{k}": v for k, v in state.items()}
    tensors["input"] = x.contiguous()
    tensors["logits"] = logits.detach().float().contiguous()
    tensors["R"] = r.float().contiguous()
    tensors["grad.input"] = x64.grad.float().contiguous()
    for k in grad_names:
        tensors[f"grad.model.{k}"] = params[k].grad.float().contiguous()
    return tensors, {"config": kwargs}


def reference_counts(ref):
    """Parameter counts of the full-size models: `params` with the 1000-class head, `ssf`
    the SSF vectors the reference adds, `ssf_trainable_100` the parameters SSF trains with a
    100-class head (names containing `head.`, `ssf_scale` or `ssf_shift_`)."""
    counts = {}
    for name, cfg in FULL_SIZE.items():
        torch.manual_seed(0)
        plain = ref.AS_MLP(num_classes=1000, shift_size=5, **cfg)
        ssf = ref.AS_MLP(num_classes=100, shift_size=5, tuning_mode="ssf", **cfg)
        named = list(ssf.named_parameters())
        counts[name] = {
            "params": sum(p.numel() for p in plain.parameters()),
            "ssf": sum(p.numel() for k, p in named if "ssf_" in k),
            "ssf_trainable_100": sum(p.numel() for k, p in named
                                     if "head." in k or "ssf_scale" in k or "ssf_shift_" in k),
        }
        print(name, counts[name])
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-file", required=True, type=Path,
                        help="the SSF repository's models/as_mlp.py")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ref = load_reference(args.model_file)

    counts = reference_counts(ref)
    total = 0
    for name, case in CONFIGS.items():
        tensors, fixture = make_fixture(ref, name, case)
        if name == "asmlp_plain":
            fixture["reference_counts"] = counts
        path = args.out_dir / f"{name}.safetensors"
        save_file(tensors, str(path), metadata={"fixture": json.dumps(fixture, sort_keys=True)})
        total += path.stat().st_size
        print(f"{path.name}: {len(tensors)} tensors, {path.stat().st_size} bytes")
    assert total <= SIZE_LIMIT, f"AS-MLP fixtures take {total} bytes, over {SIZE_LIMIT}"


if __name__ == "__main__":
    main()
