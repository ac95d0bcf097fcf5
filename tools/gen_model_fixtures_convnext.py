"""Generates the ConvNeXt parity fixtures (Tests/SSFModelsTests/Fixtures/convnext_*.safetensors).

Pinned environment: torch==2.5.1 and timm==1.0.11 (their CPU random streams and module layout
define the fixtures), safetensors. Create it with

    python3 -m venv /root/venv-torch
    /root/venv-torch/bin/pip install torch==2.5.1 timm==1.0.11 safetensors numpy

and regenerate with

    /root/venv-torch/bin/python tools/gen_model_fixtures_convnext.py

Each file holds, for one small `convnext_tiny` configuration (`__metadata__` has one entry,
`fixture`, a JSON object whose `config` is the timm kwargs):
  model.<key>        timm's state_dict, with every tensor randomised (so layer scale, norms and
                     biases all matter);
  input, logits      a random NCHW batch and the eval-mode logits;
and, for the gradient configuration:
  R, grad.input, grad.model.<key>   a cotangent and the gradients of (logits * R).sum();
  ssf.<key>, ssf_logits              SSF vectors at the reference sites (SSF-SPEC, named as in
                                     the reference models/convnext.py) and the logits with them,
                                     applied through forward hooks on timm's modules.
convnext_ssf_grad holds a small configuration with SSF (the same hooks, vectors ~ N(1, 0.3²) /
N(0, 0.3²)) as SSF trains it: backbone frozen, `head.norm` and `head.fc` trainable. model.<key>,
ssf.<key>, input, R, logits (with SSF) and grad.<key> for every SSF vector and head parameter
(gradients of (logits * R).sum(), computed in float64 from the stored float32 values); its
`fixture` object has only `config`.
The other files' `fixture` objects also carry `param_counts`: timm's parameter counts of the
registered full-size models at 1000 classes. The run is deterministic (torch.manual_seed).
"""
import json
import os
from pathlib import Path

import safetensors.torch
import timm
import torch

# Fixtures need the pinned versions; tools/bench/torch_bench.py imports only ssf_sites, on any version.
if os.environ.get("SSF_SITES_ONLY") != "1":
    assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
    assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"

OUT_DIR = Path(__file__).resolve().parent.parent / "Tests" / "SSFModelsTests" / "Fixtures"
torch.set_num_threads(1)

CONFIGS = {
    "convnext_grad": dict(
        kwargs=dict(depths=[1, 1, 2, 1], dims=[8, 12, 16, 24], num_classes=10),
        input_shape=(2, 3, 40, 48), gradients=True),
    "convnext_odd": dict(
        kwargs=dict(depths=[2, 1, 1, 1], dims=[12, 8, 16, 20], num_classes=5, kernel_sizes=5),
        input_shape=(1, 3, 40, 72), gradients=False),
}
SSF_GRAD = dict(kwargs=dict(depths=[1, 1, 2, 1], dims=[8, 12, 16, 20], num_classes=6), input_shape=(2, 3, 32, 40))
GRAD_PARAMS = [
    "stem.0.weight", "stem.1.weight", "stages.0.blocks.0.conv_dw.weight", "stages.0.blocks.0.norm.bias",
    "stages.0.blocks.0.mlp.fc1.weight", "stages.0.blocks.0.gamma", "stages.1.downsample.1.weight",
    "stages.3.blocks.0.mlp.fc2.bias", "head.norm.weight", "head.fc.weight", "head.fc.bias",
]


def randomise(model):
    """Replaces every parameter with values of a scale that keeps activations O(1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.5 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)


def ssf_sites(model):
    """(reference parameter-name prefix, module whose output gets SSF, channels-first, site number K)."""
    sites = [("stem.", model.stem[0], True, 1), ("stem.", model.stem[1], True, 2)]
    for si, stage in enumerate(model.stages):
        for bi, block in enumerate(stage.blocks):
            p = f"stages.{si}.blocks.{bi}."
            sites += [(p, block.conv_dw, True, 1), (p, block.norm, False, 2),
                      (p + "mlp.", block.mlp.fc1, False, 1), (p + "mlp.", block.mlp.fc2, False, 2)]
    sites.append(("", model.stages[-1], True, 1))
    return sites


def random_pair(std):
    """A vector factory for add_ssf: scale ~ N(1, std²), shift ~ N(0, std²)."""
    return lambda c: (1 + std * torch.randn(c), std * torch.randn(c))


def leaf_pair(c):
    """Float64 SSF leaves that collect gradients (values exact in float32; N(1, 0.3²), N(0, 0.3²))."""
    return tuple(v.double().requires_grad_() for v in random_pair(0.3)(c))


def add_ssf(model, vectors, make):
    """Registers SSF hooks; a site's vectors come from make(channels) on its first call and are
    kept in vectors[<reference name>]."""
    handles = []
    for prefix, module, channels_first, k in ssf_sites(model):
        def hook(_, __, out, prefix=prefix, channels_first=channels_first, k=k):
            c = out.shape[1] if channels_first else out.shape[-1]
            scale_key, shift_key = f"{prefix}ssf_scale_{k}", f"{prefix}ssf_shift_{k}"
            if scale_key not in vectors:
                vectors[scale_key], vectors[shift_key] = make(c)
            scale, shift = vectors[scale_key], vectors[shift_key]
            if channels_first:
                return out * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
            return out * scale + shift
        handles.append(module.register_forward_hook(hook))
    return handles


def generate(name, spec):
    torch.manual_seed(0)
    model = timm.create_model("convnext_tiny", pretrained=False, **spec["kwargs"]).eval()
    randomise(model)
    x = torch.randn(spec["input_shape"])
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    tensors["input"] = x.clone()
    if spec["gradients"]:
        x.requires_grad_(True)
        logits = model(x)
        r = torch.randn_like(logits)
        (logits * r).sum().backward()
        tensors["R"] = r
        tensors["grad.input"] = x.grad.clone()
        params = dict(model.named_parameters())
        for k in GRAD_PARAMS:
            tensors[f"grad.model.{k}"] = params[k].grad.clone()
        vectors = {}
        with torch.no_grad():
            handles = add_ssf(model, vectors, random_pair(0.2))
            tensors["ssf_logits"] = model(x)
            for h in handles:
                h.remove()
        tensors.update({f"ssf.{k}": v for k, v in vectors.items()})
    else:
        with torch.no_grad():
            logits = model(x)
    tensors["logits"] = logits.detach()
    save(name, tensors, {"config": spec["kwargs"], "param_counts": param_counts()})


def generate_ssf_grad():
    """SSF_GRAD's model with SSF, the backbone frozen and the head (`head.norm`, `head.fc`) trainable:
    logits and the gradients of (logits * R).sum() for every SSF vector and head parameter, in
    float64 from the stored values."""
    torch.manual_seed(2)
    model = timm.create_model("convnext_tiny", pretrained=False, **SSF_GRAD["kwargs"]).eval()
    randomise(model)
    x = torch.randn(SSF_GRAD["input_shape"])
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    model.double()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("head."))
    vectors = {}
    add_ssf(model, vectors, leaf_pair)
    logits = model(x.double())
    r = torch.randn(logits.shape)
    (logits * r.double()).sum().backward()
    trainable = {**vectors, **{k: p for k, p in model.named_parameters() if p.requires_grad}}
    tensors.update({"input": x, "R": r, "logits": logits, **{f"ssf.{k}": v for k, v in vectors.items()}})
    tensors.update({f"grad.{k}": p.grad for k, p in trainable.items()})
    save("convnext_ssf_grad", tensors, {"config": SSF_GRAD["kwargs"]})


def save(name, tensors, fixture):
    tensors = {k: v.detach().contiguous().float() for k, v in tensors.items()}
    # One metadata key: safetensors writes several in a random order, and the file must be reproducible.
    path = OUT_DIR / f"{name}.safetensors"
    safetensors.torch.save_file(tensors, str(path), metadata={"fixture": json.dumps(fixture)})
    print(f"{path.name}: {len(tensors)} tensors, {path.stat().st_size} bytes")


_COUNTS = {}


def param_counts():
    if not _COUNTS:
        for n in ["convnext_tiny", "convnext_small", "convnext_base"]:
            _COUNTS[n] = sum(p.numel() for p in timm.create_model(n, pretrained=False).parameters())
    return _COUNTS


if __name__ == "__main__":
    for name, spec in CONFIGS.items():
        generate(name, spec)
    generate_ssf_grad()
