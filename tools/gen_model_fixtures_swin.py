"""Generates the Swin Transformer parity fixtures (Tests/SSFModelsTests/Fixtures/swin_*.safetensors).

Pinned environment: torch==2.5.1 and timm==1.0.11 (their CPU random streams and module layout
define the fixtures), safetensors. Create it with

    python3 -m venv /root/venv-torch
    /root/venv-torch/bin/pip install torch==2.5.1 timm==1.0.11 safetensors numpy

and regenerate with

    /root/venv-torch/bin/python tools/gen_model_fixtures_swin.py

Files (`__metadata__` has one entry, `fixture`, a JSON object whose `config` is the timm kwargs):
  swin_grad  three stages on a 16x16 patch grid with window 4: shifted windows with masks in stages 0
             and 1, a stage that fits one window (no shift) in stage 2. model.<key> (timm's
             state_dict, every tensor randomised), input, logits (eval), R, grad.input,
             grad.model.<key> (gradients of (logits * R).sum()), ssf.<key>, ssf_logits (SSF vectors
             at the reference sites of SSF's models/swin_transformer.py, applied through forward
             hooks). The `fixture` object also has `legacy_keys`: pairs [old name, timm 1.0 name or
             null] of the timm 0.6 / SSF-reference layout of this model (PatchMerging at the end of
             a stage, `head.*`, the relative_position_index / attn_mask buffers), checked with
             timm's own checkpoint_filter_fn.
  swin_ssf_grad  an 8x8 grid with window 4 (shifted, masked windows in stage 0, one window in stage 1)
             with SSF (the same hooks, vectors ~ N(1, 0.3²) / N(0, 0.3²)) as SSF trains it: backbone
             frozen, head trainable. model.<key>, ssf.<key>, input, R, logits (with SSF) and grad.<key>
             for every SSF vector and head parameter (gradients of (logits * R).sum(), computed in
             float64 from the stored float32 values).
  swin_pad   a 10x10 grid with window 4: the map is zero-padded to whole windows (12x12, then 8x8
             after merging 10 -> 5). model.<key>, input, logits; the `fixture` object also carries
             `param_counts`, timm's parameter counts of the registered models at 1000 classes.
The run is deterministic (torch.manual_seed).
"""
import json
import os
import re
from pathlib import Path

import safetensors.torch
import timm
import torch
from timm.models.swin_transformer import checkpoint_filter_fn

# Fixtures need the pinned versions; tools/bench/torch_bench.py imports only ssf_sites, on any version.
if os.environ.get("SSF_SITES_ONLY") != "1":
    assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
    assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"

OUT_DIR = Path(__file__).resolve().parent.parent / "Tests" / "SSFModelsTests" / "Fixtures"
torch.set_num_threads(1)

GRAD_CONFIG = dict(img_size=32, patch_size=2, embed_dim=8, depths=[2, 2, 2], num_heads=[1, 2, 4],
                   window_size=4, mlp_ratio=2.0, num_classes=5)
SSF_CONFIG = dict(img_size=16, patch_size=2, embed_dim=8, depths=[2, 2], num_heads=[2, 4],
                  window_size=4, mlp_ratio=2.0, num_classes=5)
PAD_CONFIG = dict(img_size=40, patch_size=4, embed_dim=12, depths=[2, 2], num_heads=[2, 3],
                  window_size=4, mlp_ratio=2.0, num_classes=3)
GRAD_PARAMS = [
    "patch_embed.proj.weight", "patch_embed.norm.weight", "layers.0.blocks.0.attn.qkv.weight",
    "layers.0.blocks.1.attn.relative_position_bias_table", "layers.0.blocks.1.attn.proj.bias",
    "layers.1.downsample.norm.weight", "layers.1.downsample.reduction.weight",
    "layers.1.blocks.1.mlp.fc1.weight", "layers.2.blocks.0.attn.relative_position_bias_table",
    "layers.2.blocks.1.norm2.bias", "norm.weight", "head.fc.weight", "head.fc.bias",
]
REGISTERED = ["swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224", "swin_base_patch4_window7_224"]


def randomise(model):
    """Replaces every parameter with values of a scale that keeps activations O(1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("relative_position_bias_table"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)


def ssf_sites(model):
    """(reference parameter-name prefix, module whose output gets SSF, site number K)."""
    sites = [("patch_embed.", model.patch_embed.proj, 1), ("patch_embed.", model.patch_embed.norm, 2)]
    for si, stage in enumerate(model.layers):
        for bi, block in enumerate(stage.blocks):
            p = f"layers.{si}.blocks.{bi}."
            sites += [(p, block.norm1, 1), (p + "attn.", block.attn.qkv, 1), (p + "attn.", block.attn.proj, 2),
                      (p, block.norm2, 2), (p + "mlp.", block.mlp.fc1, 1), (p + "mlp.", block.mlp.fc2, 2)]
    sites.append(("", model.norm, 1))
    return sites


def random_pair(std):
    """A vector factory for add_ssf: scale ~ N(1, std²), shift ~ N(0, std²)."""
    return lambda c: (1 + std * torch.randn(c), std * torch.randn(c))


def leaf_pair(c):
    """Float64 SSF leaves that collect gradients (values exact in float32; N(1, 0.3²), N(0, 0.3²))."""
    return tuple(v.double().requires_grad_() for v in random_pair(0.3)(c))


def add_ssf(model, vectors, make):
    """Registers SSF hooks (the conv output is NCHW); a site's vectors come from make(channels) on
    its first call and are kept in vectors[<reference name>]."""
    handles = []
    for prefix, module, k in ssf_sites(model):
        channels_first = isinstance(module, torch.nn.Conv2d)

        def hook(_, __, out, prefix=prefix, k=k, channels_first=channels_first):
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


def legacy_keys(model):
    """[old name, timm 1.0 name or None] for the timm 0.6 layout, verified with timm's checkpoint_filter_fn."""
    state = model.state_dict()
    pairs = []
    for k in state:
        old = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", k)
        pairs.append([old.replace("head.fc.", "head."), k])
    pairs += [[name, None] for name, _ in model.named_buffers()]
    legacy = {old: (state[new] if new else torch.zeros(1)) for old, new in pairs}
    converted = checkpoint_filter_fn(legacy, model)
    assert converted.keys() == state.keys() and all(torch.equal(converted[k], state[k]) for k in state)
    return sorted(pairs)


def save(name, tensors, fixture):
    tensors = {k: v.detach().contiguous().float() for k, v in tensors.items()}
    # One metadata key: safetensors writes several in a random order, and the file must be reproducible.
    path = OUT_DIR / f"{name}.safetensors"
    safetensors.torch.save_file(tensors, str(path), metadata={"fixture": json.dumps(fixture)})
    print(f"{path.name}: {len(tensors)} tensors, {path.stat().st_size} bytes")


def small_model(config):
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **config).eval()
    randomise(model)
    return model


def generate_grad():
    torch.manual_seed(0)
    model = small_model(GRAD_CONFIG)
    x = torch.randn(2, 3, GRAD_CONFIG["img_size"], GRAD_CONFIG["img_size"])
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    tensors["input"] = x.clone()
    x.requires_grad_(True)
    logits = model(x)
    r = torch.randn_like(logits)
    (logits * r).sum().backward()
    tensors.update(logits=logits, R=r, **{"grad.input": x.grad})
    params = dict(model.named_parameters())
    for k in GRAD_PARAMS:
        tensors[f"grad.model.{k}"] = params[k].grad
    vectors = {}
    with torch.no_grad():
        handles = add_ssf(model, vectors, random_pair(0.2))
        tensors["ssf_logits"] = model(x)
        for h in handles:
            h.remove()
    tensors.update({f"ssf.{k}": v for k, v in vectors.items()})
    save("swin_grad", tensors, {"config": GRAD_CONFIG, "legacy_keys": legacy_keys(model)})


def generate_ssf_grad():
    """SSF_CONFIG with SSF, the backbone frozen and the head trainable: logits and the gradients
    of (logits * R).sum() for every SSF vector and head parameter, in float64 from the stored values."""
    torch.manual_seed(2)
    model = small_model(SSF_CONFIG)
    x = torch.randn(2, 3, SSF_CONFIG["img_size"], SSF_CONFIG["img_size"])
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
    save("swin_ssf_grad", tensors, {"config": SSF_CONFIG})


def generate_pad():
    torch.manual_seed(1)
    model = small_model(PAD_CONFIG)
    x = torch.randn(1, 3, PAD_CONFIG["img_size"], PAD_CONFIG["img_size"])
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    tensors["input"] = x
    with torch.no_grad():
        tensors["logits"] = model(x)
    counts = {n: sum(p.numel() for p in timm.create_model(n, pretrained=False).parameters()) for n in REGISTERED}
    save("swin_pad", tensors, {"config": PAD_CONFIG, "param_counts": counts})


if __name__ == "__main__":
    generate_grad()
    generate_ssf_grad()
    generate_pad()
