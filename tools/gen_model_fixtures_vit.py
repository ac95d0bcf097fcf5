"""Generates the Vision Transformer parity fixtures (Tests/SSFModelsTests/Fixtures/vit_*.safetensors).

Pinned environment: torch==2.5.1 and timm==1.0.11 (their CPU random streams and module layout
define the fixtures), safetensors, numpy. Create it with

    python3 -m venv /root/venv-torch
    /root/venv-torch/bin/pip install torch==2.5.1 timm==1.0.11 safetensors numpy

and regenerate with

    /root/venv-torch/bin/python tools/gen_model_fixtures_vit.py

Files (`__metadata__` has one entry, `fixture`, a JSON object whose `config` is the timm kwargs):
  vit_grad     small `vit_base_patch16_224` variant with layer scale and no qkv bias:
               model.<key> (timm's state_dict, every tensor randomised), input, logits (eval),
               R, grad.input, grad.model.<key> (gradients of (logits * R).sum()),
               ssf.<key>, ssf_logits (SSF vectors at the reference sites of
               SSF's models/vision_transformer.py, applied through forward hooks, and the logits).
  vit_ssf_grad small variant with SSF (the same hooks, vectors ~ N(1, 0.3²) / N(0, 0.3²)) as SSF
               trains it: backbone frozen, head trainable. model.<key>, ssf.<key>, input, R, logits
               (with SSF) and grad.<key> for every SSF vector and head parameter (gradients of
               (logits * R).sum(), computed in float64 from the stored float32 values).
  vit_jax      small variant with qkv bias: model.<key>, input, logits, and jax.<name>: the same
               weights under Google's .npz names and layouts (checked by loading them back with
               timm's own `_load_weights`); posembed.* : timm's resample_abs_pos_embed of the
               model's 3x3-grid pos_embed to 5x5, 2x2 and 4x6 (bicubic, antialiased).
  vit_b16_seeded  full-size vit_base_patch16_224 (1000 classes) with every parameter and the input
               image set by a closed-form formula (SEEDED_FORMULA below, reproduced by the Swift
               test), holding only `logits` (float32 torch) and `logits_f64` (the same model in
               float64, cast to float32); the `fixture` object also carries `param_counts`, timm's
               parameter counts of every registered ViT name at its default class count.
The run is deterministic (torch.manual_seed, closed-form weights).
"""
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import safetensors.torch
import timm
import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import _load_weights

# Fixtures need the pinned versions; tools/bench/torch_bench.py imports only ssf_sites, on any version.
if os.environ.get("SSF_SITES_ONLY") != "1":
    assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
    assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"

OUT_DIR = Path(__file__).resolve().parent.parent / "Tests" / "SSFModelsTests" / "Fixtures"
torch.set_num_threads(1)

GRAD_CONFIG = dict(img_size=24, patch_size=6, embed_dim=24, depth=2, num_heads=3, mlp_ratio=3.0,
                   num_classes=10, qkv_bias=False, init_values=0.3)
SSF_CONFIG = dict(img_size=20, patch_size=5, embed_dim=20, depth=2, num_heads=2, mlp_ratio=2.0,
                  num_classes=6, qkv_bias=True)
JAX_CONFIG = dict(img_size=24, patch_size=8, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.5,
                  num_classes=7, qkv_bias=True)
GRAD_PARAMS = [
    "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight",
    "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias", "blocks.0.ls1.gamma", "blocks.1.norm2.bias",
    "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "blocks.1.ls2.gamma", "norm.weight",
    "head.weight", "head.bias",
]
REGISTERED = [
    "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224",
    "vit_base_patch32_224", "vit_base_patch16_384", "vit_base_patch16_224.augreg_in21k",
    "vit_base_patch16_224.orig_in21k",
]
SEEDED_FORMULA = (
    "Keys of timm's vit_base_patch16_224 state_dict (1000 classes) sorted; tensor number t (from 1) "
    "in that order gets stream s = t, the input image [1,3,224,224] gets s = 1000003. Element i "
    "(row-major) of a stream: z = i*0x9E3779B97F4A7C15 + s*0xD1B54A32D192ED03 (mod 2^64), then "
    "SplitMix64's finaliser z ^= z>>30; z *= 0xBF58476D1CE4E5B9; z ^= z>>27; z *= 0x94D049BB133111EB; "
    "z ^= z>>31; u = 2*((z>>40)/2^24) - 1 in [-1, 1). Value (float64, then rounded to float32): "
    "LayerNorm weights 1 + 0.25*u; other 1-D tensors (biases) 0.1*u; cls_token 0.5*u; pos_embed 0.1*u; "
    "other tensors u*sqrt(3/fan_in) with fan_in = numel/shape[0]; input image u."
)


def closed_form_uniform(count, stream):
    """u in [-1, 1) from the SEEDED_FORMULA hash (uint64 arithmetic wraps modulo 2^64)."""
    with np.errstate(over="ignore"):
        z = np.arange(count, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + \
            np.uint64(stream) * np.uint64(0xD1B54A32D192ED03)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return 2.0 * ((z >> np.uint64(40)).astype(np.float64) / 16777216.0) - 1.0


def closed_form_value(name, shape, stream):
    u = closed_form_uniform(int(np.prod(shape)), stream)
    if len(shape) == 1 and "norm" in name and name.endswith("weight"):
        v = 1.0 + 0.25 * u
    elif len(shape) == 1:
        v = 0.1 * u
    elif name == "cls_token":
        v = 0.5 * u
    elif name == "pos_embed":
        v = 0.1 * u
    else:
        fan_in = int(np.prod(shape)) // shape[0]
        v = u * math.sqrt(3.0 / fan_in)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


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
            elif name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)


def ssf_sites(model):
    """(reference parameter-name prefix, module whose output gets SSF, site number K)."""
    sites = [("patch_embed.", model.patch_embed, 1)]
    for i, block in enumerate(model.blocks):
        p = f"blocks.{i}."
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
    """Registers SSF hooks (x * scale + shift on the last axis); a site's vectors come from
    make(channels) on its first call and are kept in vectors[<reference name>]."""
    handles = []
    for prefix, module, k in ssf_sites(model):
        def hook(_, __, out, prefix=prefix, k=k):
            scale_key, shift_key = f"{prefix}ssf_scale_{k}", f"{prefix}ssf_shift_{k}"
            if scale_key not in vectors:
                vectors[scale_key], vectors[shift_key] = make(out.shape[-1])
            return out * vectors[scale_key] + vectors[shift_key]
        handles.append(module.register_forward_hook(hook))
    return handles


def to_google_npz(state, num_heads):
    """The inverse of timm's _load_weights: timm names/layouts to Google's .npz names/layouts."""
    w = {k: v.numpy() for k, v in state.items()}
    dim = w["norm.weight"].shape[0]
    head_dim = dim // num_heads
    out = {
        "embedding/kernel": w["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
        "embedding/bias": w["patch_embed.proj.bias"],
        "cls": w["cls_token"],
        "Transformer/posembed_input/pos_embedding": w["pos_embed"],
        "Transformer/encoder_norm/scale": w["norm.weight"],
        "Transformer/encoder_norm/bias": w["norm.bias"],
        "head/kernel": w["head.weight"].T,
        "head/bias": w["head.bias"],
    }
    depth = len({k.split(".")[1] for k in w if k.startswith("blocks.")})
    for i in range(depth):
        b, p = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        mha = p + "MultiHeadDotProductAttention_1/"
        out[p + "LayerNorm_0/scale"], out[p + "LayerNorm_0/bias"] = w[b + "norm1.weight"], w[b + "norm1.bias"]
        qkv_w, qkv_b = w[b + "attn.qkv.weight"], w[b + "attn.qkv.bias"]
        for j, n in enumerate(["query", "key", "value"]):
            out[mha + n + "/kernel"] = qkv_w[j * dim:(j + 1) * dim].T.reshape(dim, num_heads, head_dim)
            out[mha + n + "/bias"] = qkv_b[j * dim:(j + 1) * dim].reshape(num_heads, head_dim)
        out[mha + "out/kernel"] = w[b + "attn.proj.weight"].reshape(dim, num_heads, head_dim).transpose(1, 2, 0)
        out[mha + "out/bias"] = w[b + "attn.proj.bias"]
        out[p + "LayerNorm_2/scale"], out[p + "LayerNorm_2/bias"] = w[b + "norm2.weight"], w[b + "norm2.bias"]
        for r, fc in enumerate(["fc1", "fc2"]):
            out[p + f"MlpBlock_3/Dense_{r}/kernel"] = w[b + f"mlp.{fc}.weight"].T
            out[p + f"MlpBlock_3/Dense_{r}/bias"] = w[b + f"mlp.{fc}.bias"]
    return {k: np.array(v, dtype=np.float32, order="C", copy=True) for k, v in out.items()}


def check_google_layout(jax, config, state):
    """Loads the Google-named tensors with timm's own loader and checks they reproduce `state`."""
    model = timm.create_model("vit_base_patch16_224", pretrained=False, **config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vit.npz"
        np.savez(path, **jax)
        _load_weights(model, str(path))
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), f"Google layout round trip differs at {k}"


def save(name, tensors, fixture):
    tensors = {k: v.detach().contiguous().float() for k, v in tensors.items()}
    # One metadata key: safetensors writes several in a random order, and the file must be reproducible.
    path = OUT_DIR / f"{name}.safetensors"
    safetensors.torch.save_file(tensors, str(path), metadata={"fixture": json.dumps(fixture)})
    print(f"{path.name}: {len(tensors)} tensors, {path.stat().st_size} bytes")


def small_model(config):
    model = timm.create_model("vit_base_patch16_224", pretrained=False, **config).eval()
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
    save("vit_grad", tensors, {"config": GRAD_CONFIG})


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
    save("vit_ssf_grad", tensors, {"config": SSF_CONFIG})


def generate_jax():
    torch.manual_seed(1)
    model = small_model(JAX_CONFIG)
    x = torch.randn(1, 3, JAX_CONFIG["img_size"], JAX_CONFIG["img_size"])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    jax = to_google_npz(state, JAX_CONFIG["num_heads"])
    check_google_layout(jax, JAX_CONFIG, state)
    tensors = {f"model.{k}": v for k, v in state.items()}
    tensors.update({f"jax.{k}": torch.from_numpy(v) for k, v in jax.items()})
    tensors["input"] = x
    with torch.no_grad():
        tensors["logits"] = model(x)
        pos = state["pos_embed"]
        for h, w in [(5, 5), (2, 2), (4, 6)]:
            tensors[f"posembed.{h}x{w}"] = resample_abs_pos_embed(pos, new_size=(h, w), num_prefix_tokens=1)
    save("vit_jax", tensors, {"config": JAX_CONFIG})


def generate_seeded():
    model = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
    state = model.state_dict()
    seeded = {k: closed_form_value(k, tuple(state[k].shape), t + 1) for t, k in enumerate(sorted(state))}
    model.load_state_dict(seeded)
    x = torch.from_numpy(closed_form_uniform(3 * 224 * 224, 1000003).astype(np.float32).reshape(1, 3, 224, 224))
    with torch.no_grad():
        logits = model(x)
        logits64 = model.double()(x.double())
    print(f"seeded ViT-B/16: max |logit| {logits.abs().max():.4f}, "
          f"float32 vs float64 max diff {(logits.double() - logits64).abs().max():.3e}")
    counts = {}
    for n in REGISTERED:
        counts[n] = sum(p.numel() for p in timm.create_model(n, pretrained=False).parameters())
    save("vit_b16_seeded", {"logits": logits, "logits_f64": logits64},
         {"config": {"model": "vit_base_patch16_224", "formula": SEEDED_FORMULA}, "param_counts": counts})


if __name__ == "__main__":
    generate_grad()
    generate_ssf_grad()
    generate_jax()
    generate_seeded()
