"""The SSF repository's `models/convnext.py`, run by path for the ConvNeXt tools (never committed):
loaded with timm's `register_model` disabled, its ambiguous `ssf_ada` guarded, and a switch that
makes its LayerNorm2d compute as timm's. Used by gen_convnext_layout_fixtures.py and
check_convnext_merge_in_timm.py (torch==2.5.1, timm==1.0.11)."""
import contextlib
import importlib.util
import sys
import warnings

import timm
import torch.nn.functional as F


def load_reference(path):
    """Executes the SSF repository's models/convnext.py as module `ssf_convnext_reference`, with
    timm's `register_model` disabled so that timm's own convnext entries stay registered."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # timm's deprecated import aliases, which the file uses
        registry = importlib.import_module("timm.models.registry")
        saved = registry.register_model
        registry.register_model = lambda fn: fn
        try:
            spec = importlib.util.spec_from_file_location("ssf_convnext_reference", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        finally:
            registry.register_model = saved
    entry = timm.models._registry._model_entrypoints["convnext_tiny"]
    assert entry.__module__ == "timm.models.convnext", f"timm's convnext_tiny was replaced by {entry.__module__}"
    guard_ssf_ada(module)
    return module


def guard_ssf_ada(module):
    """Makes the file's `ssf_ada` refuse a 4-D tensor whose dims 1 and -1 both equal the vector
    length: it would pick the last axis whatever the layout (wrong for channels-first)."""
    ssf_ada = module.ssf_ada

    def guarded(x, scale, shift):
        c = scale.shape[0]
        if x.dim() == 4 and x.shape[1] == c and x.shape[-1] == c:
            raise ValueError(f"ssf_ada is ambiguous for shape {tuple(x.shape)} with {c} channels; "
                             "choose another input size")
        return ssf_ada(x, scale, shift)

    module.ssf_ada = guarded


@contextlib.contextmanager
def timm_layernorm(module):
    """Within the block, the reference LayerNorm2d computes as timm 1.0.11's (population variance
    on every path) instead of its unbiased-variance fallback for non-contiguous input."""
    cls = module.LayerNorm2d
    saved = cls.forward

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)

    cls.forward = forward
    try:
        yield
    finally:
        cls.forward = saved
