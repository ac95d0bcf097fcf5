"""Generates the PyTorch parity fixtures for the SSFEngine ops (Tests/SSFEngineTests/Fixtures).

Pinned environment: torch==2.5.1 (its CPU random stream defines the fixtures) and safetensors
(written with 0.8.0; the file format is stable across versions). Create it with

    python3 -m venv ~/venv-torch && ~/venv-torch/bin/pip install torch==2.5.1 safetensors numpy

and regenerate every fixture with

    ~/venv-torch/bin/python tools/gen_engine_fixtures.py

One safetensors file per op family (ops_<family>.safetensors). For a case named <case>:
  <case>.<name>       every input tensor, float32 (integer arguments such as labels or gather
                      indices are stored as float tensors too);
  <case>.out          the op's output;
  <case>.R            a fixed random cotangent with the output's shape;
  <case>.grad.<name>  d/d<name> of (out * R).sum() for each differentiable input.
The file's __metadata__ maps <case> to a JSON object: "op" (the Swift op to call), "inputs"
(the differentiable inputs, in argument order) and the op's scalar arguments.

References are computed in float64 from the float32 inputs, so they carry no float32 rounding.
The run is deterministic (torch.manual_seed). Dropout and dropPath are random by design and
are left out of parity testing.
"""
import json
from pathlib import Path

import safetensors
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save

assert torch.__version__.split("+")[0] == "2.5.1", f"needs torch==2.5.1, found {torch.__version__}"
if safetensors.__version__ != "0.8.0":
    print(f"note: fixtures were written with safetensors 0.8.0, found {safetensors.__version__}")

OUT_DIR = Path(__file__).resolve().parent.parent / "Tests" / "SSFEngineTests" / "Fixtures"
SIZE_LIMIT = 1_500_000

torch.manual_seed(0)
torch.set_num_threads(1)


def randn(*shape, scale=1.0):
    return torch.randn(shape, dtype=torch.float32) * scale


def away_from_zero(*shape):
    """Values in ±[0.5, 2], safe as divisors."""
    sign = torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)
    return sign * (0.5 + 1.5 * torch.rand(shape))


class Family:
    """Collects the cases of one fixture file."""

    def __init__(self, name):
        self.name = name
        self.tensors = {}
        self.metadata = {}

    def case(self, case, op, fn, inputs, consts=None, **config):
        """Runs fn(**inputs, **consts) in float64 and stores inputs, output, R and gradients.

        inputs: differentiable float32 tensors (dict, in argument order); consts: tensors
        that get no gradient (running statistics, masks, labels, indices)."""
        assert case not in self.metadata, case
        consts = consts or {}
        leaves = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
        out = fn(**leaves, **{k: v.double() for k, v in consts.items()})
        r = torch.randn(out.shape, dtype=torch.float32)
        (out * r.double()).sum().backward()
        for k, v in list(inputs.items()) + list(consts.items()):
            self.tensors[f"{case}.{k}"] = v.float().contiguous().clone()
        self.tensors[f"{case}.out"] = out.detach().float().contiguous()
        self.tensors[f"{case}.R"] = r
        for k, leaf in leaves.items():
            grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
            self.tensors[f"{case}.grad.{k}"] = grad.float().contiguous()
        self.metadata[case] = json.dumps({"op": op, "inputs": list(inputs), **config}, sort_keys=True)

    def save(self):
        """Writes the file with its JSON header re-serialised with sorted keys: safetensors keeps
        __metadata__ in hash order, which would make every run's bytes differ."""
        blob = save(self.tensors, metadata=self.metadata)
        n = int.from_bytes(blob[:8], "little")
        header = json.dumps(json.loads(blob[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)
        path = OUT_DIR / f"ops_{self.name}.safetensors"
        path.write_bytes(len(header).to_bytes(8, "little") + header + blob[8 + n:])
        reloaded = load_file(str(path))
        assert all(torch.equal(reloaded[k], v) for k, v in self.tensors.items()), path
        return path


def arith():
    f = Family("arith")
    binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
    shapes = [
        ("add_same", "add", (3, 4, 5), (3, 4, 5)),
        ("add_bias", "add", (2, 3, 4), (4,)),
        ("add_both", "add", (2, 1, 4), (3, 1)),
        ("add_scalar_tensor", "add", (2, 3), ()),
        ("sub_col", "sub", (2, 3, 4), (3, 1)),
        ("sub_lhs_broadcast", "sub", (4,), (2, 3, 4)),
        ("mul_row", "mul", (2, 3, 4), (1, 3, 4)),
        ("mul_both", "mul", (3, 1, 5), (1, 4, 1)),
        ("div_mid", "div", (2, 3, 4), (2, 1, 4)),
        ("div_lhs_broadcast", "div", (1, 4), (3, 4)),
    ]
    for case, op, sa, sb in shapes:
        b = away_from_zero(*sb) if op == "div" else randn(*sb)
        f.case(case, op, lambda a, b, fn=binary[op]: fn(a, b), {"a": randn(*sa), "b": b})
    scalar_ops = {
        "mulScalar": lambda a, s: a * s,
        "addScalar": lambda a, s: a + s,
        "subScalar": lambda a, s: a - s,
        "divScalar": lambda a, s: a / s,
    }
    for op, fn in scalar_ops.items():
        f.case(op, op, lambda a, fn=fn: fn(a, 2.5), {"a": randn(3, 5)}, scalar=2.5)
    f.case("neg", "neg", lambda a: -a, {"a": randn(3, 5)})
    return f


def matmuls():
    f = Family("matmul")
    m, k, n = 5, 6, 4
    for ta in (False, True):
        for tb in (False, True):
            tag = ("t" if ta else "n") + ("t" if tb else "n")
            sa = (k, m) if ta else (m, k)
            sb = (n, k) if tb else (k, n)

            def mm(a, b, ta=ta, tb=tb):
                return (a.transpose(-1, -2) if ta else a) @ (b.transpose(-1, -2) if tb else b)

            cfg = dict(transposeA=ta, transposeB=tb)
            f.case(f"mm_{tag}", "matmul", mm, {"a": randn(*sa), "b": randn(*sb)}, **cfg)
            f.case(f"bmm_{tag}", "matmul", mm, {"a": randn(2, 3, *sa), "b": randn(2, 3, *sb)}, **cfg)
            f.case(f"bmm_shared_{tag}", "matmul", mm, {"a": randn(2, 3, *sa), "b": randn(*sb)}, **cfg)
    f.case("linear_bias", "linear", lambda x, weight, bias: F.linear(x, weight, bias),
           {"x": randn(2, 3, 6), "weight": randn(4, 6), "bias": randn(4)})
    f.case("linear_nobias", "linear", lambda x, weight: F.linear(x, weight),
           {"x": randn(5, 6), "weight": randn(4, 6)})
    return f


def reductions():
    f = Family("reduce")
    for case, op, axes, keep in [
        ("sum_13", "sum", [1, 3], False),
        ("sum_02_keep", "sum", [0, 2], True),
        ("sum_last", "sum", [3], False),
        ("mean_23", "mean", [2, 3], False),
        ("mean_1_keep", "mean", [1], True),
        ("mean_0", "mean", [0], False),
    ]:
        fn = torch.sum if op == "sum" else torch.mean
        f.case(case, op, lambda x, fn=fn, axes=axes, keep=keep: fn(x, dim=axes, keepdim=keep),
               {"x": randn(2, 3, 4, 5)}, axes=axes, keepDims=keep)
    f.case("sum_all", "sumAll", lambda x: x.sum(), {"x": randn(3, 4, 5)})
    f.case("mean_all", "meanAll", lambda x: x.mean(), {"x": randn(3, 4, 5)})
    return f


def layer_norm_2d(x, weight=None, bias=None, eps=1e-6):
    c = x.shape[1]
    return F.layer_norm(x.permute(0, 2, 3, 1), (c,), weight, bias, eps).permute(0, 3, 1, 2)


def norms():
    f = Family("norm")
    f.case("layerNorm", "layerNorm", lambda x, weight, bias: F.layer_norm(x, (8,), weight, bias, 1e-5),
           {"x": randn(2, 5, 8, scale=2) + 0.5, "weight": randn(8), "bias": randn(8)}, eps=1e-5)
    f.case("layerNorm_plain_eps1e-6", "layerNorm", lambda x: F.layer_norm(x, (8,), None, None, 1e-6),
           {"x": randn(3, 8)}, eps=1e-6)
    f.case("layerNorm_c19_tail", "layerNorm", lambda x, weight, bias: F.layer_norm(x, (19,), weight, bias, 1e-5),
           {"x": randn(3, 19), "weight": randn(19), "bias": randn(19)}, eps=1e-5)
    f.case("layerNorm2d", "layerNorm2d", lambda x, weight, bias: layer_norm_2d(x, weight, bias, 1e-6),
           {"x": randn(2, 6, 3, 4) + 1, "weight": randn(6), "bias": randn(6)}, eps=1e-6)
    f.case("layerNorm2d_plain", "layerNorm2d", lambda x: layer_norm_2d(x, eps=1e-6),
           {"x": randn(1, 5, 2, 3)}, eps=1e-6)
    for case, groups, shape in [("groupNorm_g1", 1, (2, 6, 3, 4)), ("groupNorm_g2", 2, (2, 6, 3, 4)),
                                ("groupNorm_g3_rank3", 3, (2, 6, 5))]:
        f.case(case, "groupNorm",
               lambda x, weight, bias, g=groups: F.group_norm(x, g, weight, bias, 1e-5),
               {"x": randn(*shape) - 0.5, "weight": randn(6), "bias": randn(6)}, groups=groups, eps=1e-5)
    f.case("groupNorm_g2_plain", "groupNorm", lambda x: F.group_norm(x, 2, None, None, 1e-5),
           {"x": randn(2, 4, 3, 3)}, groups=2, eps=1e-5)
    stats = {"mean": randn(6, scale=0.5), "variance": 0.5 + 1.5 * torch.rand(6)}
    f.case("batchNorm_eval", "batchNorm",
           lambda x, weight, bias, mean, variance: F.batch_norm(x, mean, variance, weight, bias, False, 0.0, 1e-5),
           {"x": randn(2, 6, 3, 4), "weight": randn(6), "bias": randn(6)}, stats, eps=1e-5)
    f.case("batchNorm_eval_plain", "batchNorm",
           lambda x, mean, variance: F.batch_norm(x, mean, variance, None, None, False, 0.0, 1e-5),
           {"x": randn(2, 6, 2, 3)}, stats, eps=1e-5)
    f.case("scaleShift_last", "scaleShift", lambda x, scale, shift: x * scale + shift,
           {"x": randn(2, 5, 8), "scale": 1 + randn(8, scale=0.1), "shift": randn(8, scale=0.1)}, channelAxis="last")
    f.case("scaleShift_channelsFirst", "scaleShift",
           lambda x, scale, shift: x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1),
           {"x": randn(2, 6, 3, 4), "scale": 1 + randn(6, scale=0.1), "shift": randn(6, scale=0.1)},
           channelAxis="channelsFirst")
    return f


def activations():
    f = Family("activation")
    f.case("softmax", "softmax", lambda x: torch.softmax(x, -1), {"x": randn(3, 5, 7, scale=3)})
    f.case("softmax_large", "softmax", lambda x: torch.softmax(x, -1), {"x": randn(4, 9, scale=30) + 50})
    f.case("logSoftmax", "logSoftmax", lambda x: torch.log_softmax(x, -1), {"x": randn(3, 5, 7, scale=3)})
    f.case("logSoftmax_large", "logSoftmax", lambda x: torch.log_softmax(x, -1), {"x": randn(4, 9, scale=30) - 50})
    for op, fn, scale in [
        ("gelu", F.gelu, 3),
        ("relu", F.relu, 2),
        ("relu6", F.relu6, 5),
        ("silu", F.silu, 4),
        ("hardSwish", F.hardswish, 4),
        ("sigmoid", torch.sigmoid, 4),
    ]:
        f.case(op, op, lambda x, fn=fn: fn(x), {"x": randn(4, 75, scale=scale)})
    return f


def convolutions():
    f = Family("conv")
    for case, (n, c, h, w), (o, k), stride, padding, dilation, groups, bias in [
        ("conv_k3_p1", (2, 3, 7, 7), (4, 3), 1, 1, 1, 1, True),
        ("conv_k3_s2_p1", (2, 3, 8, 8), (5, 3), 2, 1, 1, 1, True),
        ("conv_k3_s2_p0_odd", (1, 3, 9, 9), (4, 3), 2, 0, 1, 1, False),
        ("conv_k3_d2_p2", (2, 3, 7, 7), (4, 3), 1, 2, 2, 1, True),
        ("conv_groups2", (2, 4, 6, 6), (6, 3), 1, 1, 1, 2, True),
        ("conv_groups2_s2", (1, 4, 7, 7), (4, 3), 2, 1, 1, 2, False),
        ("conv_1x1", (2, 8, 4, 4), (6, 1), 1, 0, 1, 1, True),
        ("conv_c16_k3_p1", (1, 16, 10, 10), (16, 3), 1, 1, 1, 1, True),
        ("conv_patch4", (1, 3, 8, 8), (8, 4), 4, 0, 1, 1, True),
        ("conv_dw_via_conv2d", (2, 4, 6, 6), (4, 3), 1, 1, 1, 4, True),
    ]:
        inputs = {"x": randn(n, c, h, w), "weight": randn(o, c // groups, k, k, scale=0.5)}
        if bias:
            inputs["bias"] = randn(o)
        f.case(case, "conv2d",
               lambda x, weight, bias=None, s=stride, p=padding, d=dilation, g=groups:
                   F.conv2d(x, weight, bias, s, p, d, g),
               inputs, stride=stride, padding=padding, dilation=dilation, groups=groups)
    f.case("conv_tuple_k3x2", "conv2dTuple",
           lambda x, weight, bias: F.conv2d(x, weight, bias, (2, 1), (1, 0), (1, 2), 1),
           {"x": randn(1, 3, 7, 8), "weight": randn(4, 3, 3, 2, scale=0.5), "bias": randn(4)},
           strideHW=[2, 1], paddingHW=[1, 0], dilationHW=[1, 2])
    for k in (3, 5, 7):
        for stride in (1, 2):
            inputs = {"x": randn(2, 4, 9, 9), "weight": randn(4, 1, k, k, scale=0.5), "bias": randn(4)}
            f.case(f"dw_k{k}_s{stride}", "depthwiseConv2d",
                   lambda x, weight, bias, s=stride, p=k // 2: F.conv2d(x, weight, bias, s, p, 1, 4),
                   inputs, stride=stride, padding=k // 2)
    f.case("dw_k3_s1_p0_nobias", "depthwiseConv2d",
           lambda x, weight: F.conv2d(x, weight, None, 1, 0, 1, 3),
           {"x": randn(1, 3, 6, 7), "weight": randn(3, 1, 3, 3, scale=0.5)}, stride=1, padding=0)
    return f


def pools():
    f = Family("pool")
    for case, op, shape, kernel, stride, padding in [
        ("avg_k2_s2", "avgPool2d", (2, 3, 6, 6), 2, 2, 0),
        ("avg_k3_s2_p1", "avgPool2d", (2, 3, 7, 7), 3, 2, 1),
        ("avg_k3_s1_p1", "avgPool2d", (1, 2, 5, 5), 3, 1, 1),
        ("avg_k3_default_stride", "avgPool2d", (1, 2, 7, 8), 3, None, 0),
        ("max_k3_s2_p1", "maxPool2d", (2, 3, 7, 7), 3, 2, 1),
        ("max_k2_s2", "maxPool2d", (2, 3, 6, 6), 2, 2, 0),
        ("max_k3_s1_p1", "maxPool2d", (1, 2, 5, 5), 3, 1, 1),
    ]:
        fn = F.avg_pool2d if op == "avgPool2d" else F.max_pool2d
        f.case(case, op, lambda x, fn=fn, k=kernel, s=stride, p=padding: fn(x, k, s, p),
               {"x": randn(*shape)}, kernel=kernel, padding=padding,
               **({"stride": stride} if stride is not None else {}))
    f.case("globalAvgPool", "globalAvgPool2d", lambda x: x.mean(dim=(2, 3)), {"x": randn(2, 3, 5, 5)})
    return f


def window_partition(x, ws):
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, c)


def window_reverse(windows, ws, h, w):
    c = windows.shape[-1]
    x = windows.reshape(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def shapes():
    f = Family("shape")
    for case, shape, shifts, axes in [
        ("roll_swin", (2, 6, 6, 3), [-2, -2], [1, 2]),
        ("roll_back", (2, 6, 6, 3), [2, 2], [1, 2]),
        ("roll_mixed", (3, 4, 5), [1, -7], [0, 2]),
    ]:
        f.case(case, "roll", lambda x, s=shifts, a=axes: torch.roll(x, s, a), {"x": randn(*shape)},
               shifts=shifts, axes=axes)
    f.case("windowPartition", "windowPartition", lambda x: window_partition(x, 3),
           {"x": randn(2, 6, 6, 3)}, windowSize=3)
    f.case("windowPartition_rect", "windowPartition", lambda x: window_partition(x, 3),
           {"x": randn(1, 6, 9, 2)}, windowSize=3)
    f.case("windowReverse", "windowReverse", lambda windows: window_reverse(windows, 3, 6, 6),
           {"windows": randn(8, 3, 3, 3)}, windowSize=3, height=6, width=6)
    f.case("windowReverse_rect", "windowReverse", lambda windows: window_reverse(windows, 3, 6, 9),
           {"windows": randn(6, 3, 3, 2)}, windowSize=3, height=6, width=9)
    f.case("concat_1", "concat", lambda x0, x1, x2: torch.cat([x0, x1, x2], 1),
           {"x0": randn(2, 3, 4), "x1": randn(2, 5, 4), "x2": randn(2, 1, 4)}, axis=1)
    f.case("concat_last", "concat", lambda x0, x1: torch.cat([x0, x1], 2),
           {"x0": randn(2, 3, 4), "x1": randn(2, 3, 2)}, axis=2)
    f.case("concat_0", "concat", lambda x0, x1: torch.cat([x0, x1], 0),
           {"x0": randn(1, 3, 4), "x1": randn(2, 3, 4)}, axis=0)
    f.case("stack_0", "stack", lambda x0, x1, x2: torch.stack([x0, x1, x2], 0),
           {"x0": randn(3, 4), "x1": randn(3, 4), "x2": randn(3, 4)}, axis=0)
    f.case("stack_2", "stack", lambda x0, x1: torch.stack([x0, x1], 2),
           {"x0": randn(2, 3, 4), "x1": randn(2, 3, 4)}, axis=2)
    f.case("permute_nhwc", "permute", lambda x: x.permute(0, 2, 3, 1), {"x": randn(2, 3, 4, 5)},
           perm=[0, 2, 3, 1])
    f.case("permute_201", "permute", lambda x: x.permute(2, 0, 1), {"x": randn(3, 4, 5)}, perm=[2, 0, 1])
    f.case("permute_5d", "permute", lambda x: x.permute(2, 0, 3, 1, 4), {"x": randn(2, 3, 3, 2, 4)},
           perm=[2, 0, 3, 1, 4])
    f.case("transpose_12", "transposed", lambda x: x.transpose(1, 2), {"x": randn(2, 3, 4, 5)}, axes=[1, 2])
    f.case("transpose_03", "transposed", lambda x: x.transpose(0, 3), {"x": randn(2, 3, 4, 5)}, axes=[0, 3])
    f.case("slice_1", "slice", lambda x: x[:, 2:5], {"x": randn(2, 6, 4)}, axis=1, start=2, end=5)
    f.case("slice_last", "slice", lambda x: x[..., 1:2], {"x": randn(2, 3, 5)}, axis=2, start=1, end=2)
    f.case("slice_0", "slice", lambda x: x[0:2], {"x": randn(3, 4)}, axis=0, start=0, end=2)
    for case, shape, axis, idx in [
        ("indexSelect_1_repeat", (2, 5, 3), 1, [3, 0, 3, 1]),
        ("indexSelect_0", (6, 4), 0, [5, 2, 2, 0, 1, 5, 4]),
        ("indexSelect_last", (2, 3, 5), 2, [4, 0]),
    ]:
        f.case(case, "indexSelect",
               lambda x, indices, a=axis: torch.index_select(x, a, indices.long()),
               {"x": randn(*shape)}, {"indices": torch.tensor(idx, dtype=torch.float32)}, axis=axis)
    for case, shape, axis, index_shape in [
        ("gather_1", (3, 5), 1, (3, 4)),
        ("gather_0", (4, 3), 0, (6, 3)),
        ("gather_mid", (2, 3, 4), 1, (2, 5, 4)),
    ]:
        index = torch.randint(0, shape[axis], index_shape).float()
        f.case(case, "gather", lambda x, index, a=axis: torch.gather(x, a, index.long()),
               {"x": randn(*shape)}, {"index": index}, axis=axis)
    for case, shape, target in [
        ("expand_lead", (3, 1, 4), [2, 3, 5, 4]),
        ("expand_row", (1, 4), [3, 4]),
        ("expand_scalarlike", (1, 1), [2, 3]),
    ]:
        f.case(case, "expanded", lambda x, t=target: x.expand(*t), {"x": randn(*shape)}, shape=target)
    f.case("reshape", "reshaped", lambda x: x.reshape(6, 4, 2), {"x": randn(2, 3, 8)}, shape=[6, 4, 2])
    f.case("reshape_infer", "reshaped", lambda x: x.reshape(-1, 4), {"x": randn(2, 3, 8)}, shape=[-1, 4])
    return f


def losses():
    f = Family("loss")
    n, c = 6, 10
    labels = torch.randint(0, c, (n,)).float()
    for case, smoothing in [("ce_hard", 0.0), ("ce_smooth0.1", 0.1)]:
        f.case(case, "crossEntropy",
               lambda logits, labels, s=smoothing: F.cross_entropy(logits, labels.long(), label_smoothing=s),
               {"logits": randn(n, c, scale=2)}, {"labels": labels}, labelSmoothing=smoothing)
    # Mixup-style soft targets: a blend of two smoothed one-hot rows.
    lam = torch.rand(n, 1)
    second = torch.randint(0, c, (n,))
    one = F.one_hot(labels.long(), c).float() * 0.9 + 0.01
    two = F.one_hot(second, c).float() * 0.9 + 0.01
    soft = lam * one + (1 - lam) * two
    f.case("ce_soft", "crossEntropySoft",
           lambda logits, softTargets: torch.sum(-softTargets * torch.log_softmax(logits, -1), -1).mean(),
           {"logits": randn(n, c, scale=2), "softTargets": soft})
    return f


def attention_ref(qkv, heads, scale=None, bias=None, mask=None):
    b, t, d3 = qkv.shape
    dh = d3 // 3 // heads
    q, k, v = qkv.reshape(b, t, 3, heads, dh).permute(2, 0, 3, 1, 4)
    attn = q @ k.transpose(-2, -1) * (scale if scale is not None else dh ** -0.5)
    if bias is not None:
        attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        attn = attn.reshape(b // nw, nw, heads, t, t) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.reshape(b, heads, t, t)
    return (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, t, heads * dh)


def swin_mask(nw, t):
    """Per window: 0 between tokens of the same region, -100 otherwise (as in Swin's shifted windows)."""
    masks = []
    for w in range(nw):
        region = torch.randint(0, 1 + w, (t,)) if w else torch.zeros(t, dtype=torch.long)
        masks.append(torch.where(region[:, None] == region[None, :], 0.0, -100.0))
    return torch.stack(masks)


def attentions():
    f = Family("attention")
    heads, dh, t = 2, 4, 7
    d = heads * dh
    f.case("attn_plain", "attention", lambda qkv: attention_ref(qkv, heads),
           {"qkv": randn(2, t, 3 * d)}, heads=heads)
    f.case("attn_scale", "attention", lambda qkv: attention_ref(qkv, heads, scale=0.3),
           {"qkv": randn(2, t, 3 * d)}, heads=heads, scale=0.3)
    f.case("attn_bias", "attention", lambda qkv, bias: attention_ref(qkv, heads, bias=bias),
           {"qkv": randn(2, t, 3 * d), "bias": randn(heads, t, t)}, heads=heads)
    f.case("attn_bias_mask", "attention",
           lambda qkv, bias, mask: attention_ref(qkv, heads, bias=bias, mask=mask),
           {"qkv": randn(4, t, 3 * d), "bias": randn(heads, t, t)}, {"mask": swin_mask(2, t)}, heads=heads)
    f.case("attn_swin_window7", "attention",
           lambda qkv, bias, mask: attention_ref(qkv, 3, bias=bias, mask=mask),
           {"qkv": randn(2, 49, 3 * 12), "bias": randn(3, 49, 49)}, {"mask": swin_mask(2, 49)}, heads=3)
    f.case("attn_mask_3heads", "attention", lambda qkv, mask: attention_ref(qkv, 3, mask=mask),
           {"qkv": randn(6, 5, 3 * 3 * 2)}, {"mask": swin_mask(3, 5)}, heads=3)
    return f


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    total = 0
    for build in (arith, matmuls, reductions, norms, activations, convolutions, pools, shapes, losses, attentions):
        family = build()
        path = family.save()
        size = path.stat().st_size
        total += size
        print(f"{path.name}: {len(family.metadata)} cases, {size} bytes")
    print(f"total {total} bytes")
    assert total < SIZE_LIMIT, f"fixtures take {total} bytes, over {SIZE_LIMIT}"


if __name__ == "__main__":
    main()
