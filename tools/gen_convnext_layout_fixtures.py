"""Generates the ConvNeXt checkpoint-layout fixture (Tests/SSFTuningTests/Fixtures/convnext_layouts.safetensors).

Two layouts that are not timm's, for one small configuration (depths 1-1-2-1, dims 8-12-16-20,
6 classes):
  ref.<key>           the SSF reference model (github.com/dongzelian/SSF, models/convnext.py,
                      tuning_mode='ssf'): its state_dict with every tensor randomised (layer scale
                      `gamma` ~ N(0.5, 0.3²), SSF scales ~ N(1, 0.3²), shifts ~ N(0, 0.3²), norm
                      weights ~ N(1, 0.2²), other vectors ~ N(0, 0.1²), weights ~ N(0, 1/fan_in));
                      names `stem.proj`/`stem.norm`, `stages.i.downsample.norm`/`.proj`,
                      `stages.i.blocks.j.{conv_dw,norm,mlp.fc1,mlp.fc2,gamma}`, `head.norm`,
                      `head.fc`, and the SSF vectors `*.ssf_scale_K`/`*.ssf_shift_K`;
  ref_logits          that model's eval logits on `input`, its file run as it is;
  ref_logits_timm_ln  the same with the file's LayerNorm2d computing timm's (and the original
                      release's) population variance on every path, see below;
  fb.<key>            a plain timm `ConvNeXt` of the same size (no SSF), randomised the same way
                      and written in the original facebookresearch/ConvNeXt release's names
                      (`downsample_layers.0.{0,1}` the stem conv and LayerNorm,
                      `downsample_layers.i.{0,1}` LayerNorm and conv for i ≥ 1,
                      `stages.i.j.{dwconv,norm,pwconv1,pwconv2,gamma}`, `norm`, `head`);
  fb_logits           timm's eval logits of that plain model on `input`;
  input               a random NCHW batch, shape (2, 3, 40, 40).
All tensors are float32; logits are computed in float64 from the stored float32 values.
`__metadata__` has one entry, `fixture`, a JSON object with `config` (depths, dims,
num_classes), `input_shape`, `timm_keys` ([key, shape] pairs of the plain timm model's
state_dict, sorted) and `source` (where each layout comes from, and the reference file's quirks).
One entry only: safetensors writes several in a random order, and the file must be reproducible.

The facebook layout is produced by inverting timm 1.0.11's `timm.models.convnext.checkpoint_filter_fn`
(no copy of the facebook release is used); the script asserts that timm's filter maps the fb dict
back onto the timm state_dict exactly, and that the reference file's own filter maps it onto the
reference layout.

The reference file is fetched for the run and never committed:

    git --git-dir=<mirror of dongzelian/SSF> show HEAD:models/convnext.py > /tmp/ssf_convnext.py
    /root/venv-torch/bin/python tools/gen_convnext_layout_fixtures.py --ssf-convnext /tmp/ssf_convnext.py

Loading it under timm 1.0.11: its imports (`timm.models.fx_features`, `.helpers`, `.layers`,
`.registry`) are deprecated aliases that still work; its `@register_model` functions reuse timm's
names (`convnext_tiny`, …) and would overwrite timm's registry entries, so `register_model` is
replaced by a no-op while the file executes (nothing is registered; the classes are used directly).

Quirks of the reference file, found while writing this (the fixture keeps the file's behaviour
in `ref_logits` and documents the rest):
  - The downsampling layers have no SSF sites: `ConvNeXtStage` passes the per-block list of
    tuning modes to `Downsample`, whose `tuning_mode == 'ssf'` test is then false, so its
    `ssf_*_1/2` are never created (the stem's and the blocks' are).
  - Its LayerNorm2d takes a fallback path for non-contiguous input that uses
    `torch.var_mean(x, dim=1)`, i.e. the unbiased (n−1) variance; the downsampling norms get a
    non-contiguous input (the previous block's output keeps the permuted strides), so they differ
    from timm's and the original release's LayerNorm (population variance). `ref_logits_timm_ln`
    replaces that forward with timm's (F.layer_norm on the permuted tensor).
  - `ssf_ada` chooses the channel axis by shape (last dim first), so a channels-first tensor
    whose width equals its channel count is scaled along the width. The input is 40×40 (not
    32×32, where the stem output is 8×8 with 8 channels) so that no SSF site is ambiguous; the
    script asserts this.

Pinned environment: torch==2.5.1, timm==1.0.11, safetensors (0.8.0 wrote the file). Create it with

    python3 -m venv /root/venv-torch
    /root/venv-torch/bin/pip install torch==2.5.1 timm==1.0.11 safetensors numpy

The run is deterministic (torch.manual_seed, one thread).
"""
import argparse
import copy
import json
import re
import sys
from pathlib import Path

import safetensors
import timm
import torch
from safetensors.torch import save_file
from timm.models.convnext import ConvNeXt, checkpoint_filter_fn

assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
assert timm.__version__ == "1.0.11", f"needs timm==1.0.11, found {timm.__version__}"
if safetensors.__version__ != "0.8.0":
    print(f"note: the fixture was written with safetensors 0.8.0, found {safetensors.__version__}")

OUT_DIR = Path(__file__).resolve().parent.parent / "Tests" / "SSFTuningTests" / "Fixtures"
SIZE_LIMIT = 200_000
CONFIG = dict(depths=[1, 1, 2, 1], dims=[8, 12, 16, 20], num_classes=6)
INPUT_SHAPE = (2, 3, 40, 40)


# ---- the reference file (tools/ssf_reference_convnext.py) ---------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssf_reference_convnext import load_reference, timm_layernorm  # noqa: E402


# ---- layouts -------------------------------------------------------------------------------

def reference_to_timm(key):
    """A reference-layout name in timm 1.0.11's layout (SSF names keep their prefixes)."""
    key = key.replace("stem.proj.", "stem.0.").replace("stem.norm.", "stem.1.")
    key = re.sub(r"^(stages\.\d+\.downsample\.)norm\.", r"\g<1>0.", key)
    return re.sub(r"^(stages\.\d+\.downsample\.)proj\.", r"\g<1>1.", key)


FB_RULES = [  # timm 1.0.11 name → original release name, the inverse of checkpoint_filter_fn
    (r"^stem\.(\d)\.", r"downsample_layers.0.\1."),
    (r"^stages\.(\d+)\.downsample\.(\d)\.", r"downsample_layers.\1.\2."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.conv_dw\.", r"stages.\1.\2.dwconv."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.norm\.", r"stages.\1.\2.norm."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc(\d)\.", r"stages.\1.\2.pwconv\3."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.gamma$", r"stages.\1.\2.gamma"),
    (r"^head\.norm\.", "norm."),
    (r"^head\.fc\.", "head."),
]


def timm_to_facebook(key):
    for pattern, replacement in FB_RULES:
        new, n = re.subn(pattern, replacement, key)
        if n:
            return new
    raise KeyError(f"no facebook name for timm key {key}")


# ---- randomisation -------------------------------------------------------------------------

def randomise(model, ssf_std=0.3):
    """Replaces every parameter (in named_parameters order) with values of a scale that keeps
    activations O(1) and makes every tensor matter."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf.startswith("ssf_scale"):
                p.copy_(1 + ssf_std * torch.randn_like(p))
            elif leaf.startswith("ssf_shift"):
                p.copy_(ssf_std * torch.randn_like(p))
            elif leaf == "gamma":
                p.copy_(0.5 + 0.3 * torch.randn_like(p))
            elif p.ndim == 1 and "norm" in name and leaf == "weight":
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)


def float32_state(model):
    return {k: v.detach().float().clone().contiguous() for k, v in model.state_dict().items()}


def logits64(model, x):
    """Eval logits in float64 of a copy of `model` (its float32 values) on float32 `x`."""
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return m(x.double())


# ---- timm with SSF hooks (the cross-check) -------------------------------------------------------

def add_ssf_hooks(model, vectors):
    """SSF on a timm ConvNeXt through forward hooks at the reference sites, vectors by reference name."""
    sites = [("stem.", model.stem[0], True, 1), ("stem.", model.stem[1], True, 2)]
    for si, stage in enumerate(model.stages):
        for bi, block in enumerate(stage.blocks):
            p = f"stages.{si}.blocks.{bi}."
            sites += [(p, block.conv_dw, True, 1), (p, block.norm, False, 2),
                      (p + "mlp.", block.mlp.fc1, False, 1), (p + "mlp.", block.mlp.fc2, False, 2)]
    sites.append(("", model.stages, True, 1))
    used = set()
    for prefix, module, channels_first, k in sites:
        scale_key, shift_key = f"{prefix}ssf_scale_{k}", f"{prefix}ssf_shift_{k}"
        used |= {scale_key, shift_key}
        scale, shift = vectors[scale_key], vectors[shift_key]

        def hook(_, __, out, scale=scale, shift=shift, channels_first=channels_first):
            if channels_first:
                return out * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
            return out * scale + shift

        module.register_forward_hook(hook)
    assert used == set(vectors), f"SSF vectors without a site: {sorted(set(vectors) - used)}"


# ---- the fixture ---------------------------------------------------------------------------

def max_diff(a, b):
    return (a - b).abs().max().item()


def reference_part(ref, x):
    torch.manual_seed(0)
    model = ref.ConvNeXt(**CONFIG, tuning_mode="ssf").eval()
    randomise(model)
    state = float32_state(model)
    downsample_ssf = [k for k in state if ".downsample." in k and "ssf_" in k]
    assert not downsample_ssf, f"unexpected downsample SSF sites {downsample_ssf}"
    ref_logits = logits64(model, x)
    with timm_layernorm(ref):
        ref_logits_timm_ln = logits64(model, x)

    # Cross-check 1: with identity SSF and timm names, the reference is timm's ConvNeXt.
    identity = ref.ConvNeXt(**CONFIG, tuning_mode="ssf").eval()
    identity.load_state_dict({k: (torch.ones_like(v) if "ssf_scale" in k else torch.zeros_like(v))
                              if "ssf_" in k else v for k, v in state.items()}, strict=True)
    plain = ConvNeXt(**CONFIG).eval()
    plain.load_state_dict({reference_to_timm(k): v for k, v in state.items() if "ssf_" not in k}, strict=True)
    timm_logits = logits64(plain, x)
    identity_as_is = max_diff(logits64(identity, x), timm_logits)
    with timm_layernorm(ref):
        identity_timm_ln = max_diff(logits64(identity, x), timm_logits)
    print(f"identity SSF, renamed to timm: max |ref - timm| = {identity_as_is:.3e} (file as is), "
          f"{identity_timm_ln:.3e} (timm LayerNorm2d); max |timm| = {timm_logits.abs().max().item():.3f}")
    assert identity_timm_ln < 1e-12, identity_timm_ln

    # Cross-check 2: timm with hooks at the reference sites and the same vectors gives the
    # reference's logits (with timm's LayerNorm numerics).
    hooked = ConvNeXt(**CONFIG).double().eval()
    hooked.load_state_dict({reference_to_timm(k): v.double() for k, v in state.items() if "ssf_" not in k},
                           strict=True)
    add_ssf_hooks(hooked, {k: v.double() for k, v in state.items() if "ssf_" in k})
    with torch.no_grad():
        hooked_logits = hooked(x.double())
    hooked_diff = max_diff(hooked_logits, ref_logits_timm_ln)
    print(f"random SSF: max |ref(timm LN) - timm+hooks| = {hooked_diff:.3e}; "
          f"max |ref(as is) - ref(timm LN)| = {max_diff(ref_logits, ref_logits_timm_ln):.3e}")
    assert hooked_diff < 1e-12, hooked_diff

    tensors = {f"ref.{k}": v for k, v in state.items()}
    tensors["ref_logits"] = ref_logits
    tensors["ref_logits_timm_ln"] = ref_logits_timm_ln
    return tensors


def facebook_part(ref, x):
    torch.manual_seed(1)
    model = ConvNeXt(**CONFIG).eval()
    randomise(model)
    state = float32_state(model)
    fb = {timm_to_facebook(k): v for k, v in state.items()}
    assert len(fb) == len(state), "two timm keys share a facebook name"

    back = checkpoint_filter_fn(dict(fb), model)
    assert sorted(back) == sorted(state), (sorted(set(back) ^ set(state)))
    assert all(back[k].shape == v.shape and torch.equal(back[k], v) for k, v in state.items())
    print(f"timm checkpoint_filter_fn(fb.*) reproduces timm's state_dict: {len(state)} keys, equal tensors")

    ref_plain = ref.ConvNeXt(**CONFIG, tuning_mode=None)
    ref_back = ref.checkpoint_filter_fn(dict(fb), ref_plain)
    assert sorted(ref_back) == sorted(ref_plain.state_dict()), sorted(set(ref_back) ^ set(ref_plain.state_dict()))
    assert all(torch.equal(v, state[reference_to_timm(k)]) for k, v in ref_back.items())
    print("the reference file's checkpoint_filter_fn(fb.*) gives the reference layout (= timm names via reference_to_timm)")

    tensors = {f"fb.{k}": v for k, v in fb.items()}
    tensors["fb_logits"] = logits64(model, x)
    return tensors, [[k, list(v.shape)] for k, v in sorted(state.items())]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ssf-convnext", required=True, type=Path, help="the SSF repository's models/convnext.py")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ref = load_reference(args.ssf_convnext)

    torch.manual_seed(2)
    x = torch.randn(INPUT_SHAPE)
    tensors = {"input": x}
    tensors.update(reference_part(ref, x))
    fb_tensors, timm_keys = facebook_part(ref, x)
    tensors.update(fb_tensors)
    tensors = {k: v.detach().float().contiguous() for k, v in tensors.items()}

    fixture = {
        "config": CONFIG,
        "input_shape": list(INPUT_SHAPE),
        "timm_keys": timm_keys,
        "source": {
            "ref": "github.com/dongzelian/SSF models/convnext.py, ConvNeXt(tuning_mode='ssf'), state_dict "
                   "randomised; ref_logits: the file as is (its LayerNorm2d uses the unbiased variance for "
                   "non-contiguous input, which the downsampling norms get); ref_logits_timm_ln: LayerNorm2d "
                   "as in timm 1.0.11 (population variance); no SSF sites in downsampling (the file passes "
                   "a list as Downsample's tuning_mode)",
            "fb": "timm 1.0.11 ConvNeXt(depths, dims, num_classes) randomised, renamed by inverting "
                  "timm.models.convnext.checkpoint_filter_fn (asserted: the filter maps it back onto timm's "
                  "state_dict exactly); fb_logits: timm's eval logits",
            "logits": "float64 from the stored float32 values, stored as float32",
        },
    }
    path = args.out_dir / "convnext_layouts.safetensors"
    save_file(tensors, str(path), metadata={"fixture": json.dumps(fixture, sort_keys=True)})
    size = path.stat().st_size
    print(f"{path.name}: {len(tensors)} tensors, {size} bytes")
    assert size <= SIZE_LIMIT, f"{size} bytes, over {SIZE_LIMIT}"


if __name__ == "__main__":
    main()
