"""Generates the tuning-method parity fixture (Tests/SSFTuningTests/Fixtures/vit_methods.safetensors).

PyTorch reference implementations of the baselines on timm's VisionTransformer, with the parameter
names the Swift package uses:
  adapter      on every block's MLP output, before the residual sum: f + up(gelu(down(f)))
                                                               blocks.N.adapter.{down,up}.{weight,bias}
  vpt-shallow  prompts [1, P, D] inserted after the class token, after the position embedding
  vpt-deep     prompts [depth, P, D]; block i > 0 gets its own prompts in place of the previous
               block's prompt outputs                          prompt.embeddings
  lora         out + (alpha/r) * (x A^T) B^T on attn.qkv, attn.proj, mlp.fc1, mlp.fc2
                                                               <layer>.lora_A [r, in], <layer>.lora_B [out, r]
  ssf+lora     both, the SSF vectors at the reference sites (ssf_scale_K / ssf_shift_K)
  bias         the plain model with its biases and head trainable
The prompts are never pooled: the class token stays token 0.

Pinned environment: torch==2.5.1, timm==1.0.11, safetensors, numpy (see gen_model_fixtures_vit.py):

    /root/venv-torch/bin/python tools/gen_method_fixtures.py

Tensors: model.<key> (timm state_dict, randomised), input, R; per method M: M.param.<key> (the
method's added tensors, random and non-zero so that every gradient path is exercised), M.logits, and
M.grad.<key> for every trainable tensor (method tensors, the head, and for bias every bias): the
gradients of (logits * R).sum(), computed in float64 from the stored float32 values. `__metadata__`
holds `fixture`: the timm kwargs (`config`) and the method options (`options`).
"""
import json
from pathlib import Path

import safetensors.torch
import timm
import torch
import torch.nn.functional as F

assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"

OUT = Path(__file__).resolve().parent.parent / "Tests" / "SSFTuningTests" / "Fixtures" / "vit_methods.safetensors"
torch.set_num_threads(1)

CONFIG = dict(img_size=16, patch_size=4, embed_dim=24, depth=3, num_heads=3, mlp_ratio=2.0,
              num_classes=5, qkv_bias=True)
OPTIONS = dict(adapter_dim=4, prompts=3, lora_rank=3, lora_alpha=6.0, lora_targets=["qkv", "proj", "fc1", "fc2"])
METHODS = ["bias", "adapter", "vpt-shallow", "vpt-deep", "lora", "ssf+lora"]


def randomise(model):
    """Every parameter random at a scale that keeps activations O(1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn_like(p))
            elif name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)


def added_tensors(model, method):
    """The method's tensors (float32), by their Swift/state-dict names."""
    d, depth = CONFIG["embed_dim"], CONFIG["depth"]
    out = {}
    if method == "adapter":
        r = OPTIONS["adapter_dim"]
        for i in range(depth):
            p = f"blocks.{i}.adapter."
            out[p + "down.weight"] = torch.randn(r, d) / d ** 0.5
            out[p + "down.bias"] = 0.1 * torch.randn(r)
            out[p + "up.weight"] = torch.randn(d, r) / r ** 0.5
            out[p + "up.bias"] = 0.1 * torch.randn(d)
    if method.startswith("vpt"):
        layers = depth if method == "vpt-deep" else 1
        out["prompt.embeddings"] = 0.5 * torch.randn(layers, OPTIONS["prompts"], d)
    if "lora" in method:
        r = OPTIONS["lora_rank"]
        for name, m in lora_layers(model):
            out[name + ".lora_A"] = torch.randn(r, m.in_features) / m.in_features ** 0.5
            out[name + ".lora_B"] = torch.randn(m.out_features, r) / r ** 0.5
    if "ssf" in method:
        for prefix, module, k, channels in ssf_sites(model):
            out[f"{prefix}ssf_scale_{k}"] = 1 + 0.3 * torch.randn(channels)
            out[f"{prefix}ssf_shift_{k}"] = 0.3 * torch.randn(channels)
    return out


def lora_layers(model):
    suffixes = {"qkv": "attn.qkv", "proj": "attn.proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    wanted = [suffixes[t] for t in OPTIONS["lora_targets"]]
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and any(n.endswith(s) for s in wanted)]


def ssf_sites(model):
    """(name prefix, module whose output gets SSF, site number K, channels), the SSF reference placement."""
    d = CONFIG["embed_dim"]
    sites = [("patch_embed.", model.patch_embed, 1, d)]
    for i, b in enumerate(model.blocks):
        p = f"blocks.{i}."
        sites += [(p, b.norm1, 1, d), (p + "attn.", b.attn.qkv, 1, 3 * d), (p + "attn.", b.attn.proj, 2, d),
                  (p, b.norm2, 2, d), (p + "mlp.", b.mlp.fc1, 1, b.mlp.fc1.out_features), (p + "mlp.", b.mlp.fc2, 2, d)]
    sites.append(("", model.norm, 1, d))
    return sites


def install(model, method, t):
    """Forward hooks realising the method with the float64 leaves `t`."""
    if method == "adapter":
        for i, b in enumerate(model.blocks):
            p = f"blocks.{i}.adapter."
            b.mlp.register_forward_hook(lambda _, __, out, p=p: out + F.linear(
                F.gelu(F.linear(out, t[p + "down.weight"], t[p + "down.bias"])), t[p + "up.weight"], t[p + "up.bias"]))
    if "lora" in method:
        scaling = OPTIONS["lora_alpha"] / OPTIONS["lora_rank"]
        for name, m in lora_layers(model):
            m.register_forward_hook(lambda _, inp, out, name=name: out + scaling * F.linear(
                F.linear(inp[0], t[name + ".lora_A"]), t[name + ".lora_B"]))
    if "ssf" in method:
        for prefix, module, k, _ in ssf_sites(model):
            module.register_forward_hook(lambda _, __, out, prefix=prefix, k=k:
                                         out * t[f"{prefix}ssf_scale_{k}"] + t[f"{prefix}ssf_shift_{k}"])


def forward(model, x, method, t):
    """timm's forward, with VPT prompts inserted after the class token (and replaced per block for deep)."""
    if not method.startswith("vpt"):
        return model(x)
    prompts = t["prompt.embeddings"]
    n = prompts.shape[1]
    h = model._pos_embed(model.patch_embed(x))
    batch = h.shape[0]
    h = torch.cat([h[:, :1], prompts[0].expand(batch, -1, -1), h[:, 1:]], dim=1)
    for i, block in enumerate(model.blocks):
        if i > 0 and method == "vpt-deep":
            h = torch.cat([h[:, :1], prompts[i].expand(batch, -1, -1), h[:, 1 + n:]], dim=1)
        h = block(h)
    return model.forward_head(model.norm(h))


def main():
    torch.manual_seed(0)
    base = timm.create_model("vit_base_patch16_224", pretrained=False, **CONFIG).eval()
    randomise(base)
    state = {k: v.clone() for k, v in base.state_dict().items()}
    x = torch.randn(2, 3, CONFIG["img_size"], CONFIG["img_size"])
    r = torch.randn(2, CONFIG["num_classes"])
    tensors = {f"model.{k}": v for k, v in state.items()}
    tensors.update(input=x, R=r)
    for method in METHODS:
        added = added_tensors(base, method)
        model = timm.create_model("vit_base_patch16_224", pretrained=False, **CONFIG).eval()
        model.load_state_dict(state)
        model.double()
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("head.") or (method == "bias" and name.endswith("bias")))
        leaves = {k: v.double().requires_grad_() for k, v in added.items()}
        install(model, method, leaves)
        logits = forward(model, x.double(), method, leaves)
        (logits * r.double()).sum().backward()
        trainable = {**leaves, **{k: p for k, p in model.named_parameters() if p.requires_grad}}
        tensors.update({f"{method}.param.{k}": v for k, v in added.items()})
        tensors[f"{method}.logits"] = logits
        tensors.update({f"{method}.grad.{k}": p.grad for k, p in trainable.items()})
    tensors = {k: v.detach().contiguous().float() for k, v in tensors.items()}
    safetensors.torch.save_file(tensors, str(OUT), metadata={"fixture": json.dumps({"config": CONFIG, "options": OPTIONS, "methods": METHODS})})
    print(f"{OUT.name}: {len(tensors)} tensors, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
