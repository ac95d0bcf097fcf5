// The building blocks of timm's VisionTransformer (patch embedding, attention, MLP, pre-norm block),
// with their SSF sites. The MLP is shared with the Swin Transformer and ConvNeXt.
//
// SSF sites (SSF-SPEC, the reference `models/vision_transformer.py`): `patch_embed.ssf_*_1` after the
// patch projection; in each block `ssf_*_1` after `norm1` and `ssf_*_2` after `norm2`;
// `attn.ssf_*_1` after `qkv` (all 3·D channels) and `attn.ssf_*_2` after `proj`;
// `mlp.ssf_*_1` after `fc1` (before GELU) and `mlp.ssf_*_2` after `fc2`.
import SSFEngine
import SSFNN

/// timm's initialisation of transformer linears: weights ~ N(0, 0.02²) truncated at ±2, zero bias.
func transformerLinear(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, using rng: inout RandomGenerator) -> Linear {
    Linear(weight: Tensor.truncatedNormal([outFeatures, inFeatures], std: 0.02, using: &rng),
           bias: bias ? .zeros([outFeatures]) : nil)
}

/// `fc1` → GELU (exact erf) → `fc2`, timm's `Mlp`.
public final class TransformerMlp: SSFSiteHost {
    public let fc1: Linear, fc2: Linear
    var ssfFC1: ScaleShift?, ssfFC2: ScaleShift?

    init(dim: Int, hidden: Int, using rng: inout RandomGenerator) {
        fc1 = transformerLinear(dim, hidden, using: &rng)
        fc2 = transformerLinear(hidden, dim, using: &rng)
    }

    public var ssfSites: [ScaleShift?] { [ssfFC1, ssfFC2] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("fc1", fc1), ("fc2", fc2)] }

    func enableSSF(using rng: inout RandomGenerator) {
        ssfFC1 = ScaleShift(channels: fc1.outFeatures, after: "fc1", using: &rng)
        ssfFC2 = ScaleShift(channels: fc2.outFeatures, after: "fc2", using: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        fc2.afterGELU(fc1(x, then: ssfFC1), then: ssfFC2)
    }
}

/// Non-overlapping patches to tokens: conv (kernel = stride = patch size), flattened to `[B, N, D]`.
public final class ViTPatchEmbed: SSFSiteHost {
    public let proj: Conv2d
    var ssf: ScaleShift?

    init(inChannels: Int, embedDim: Int, patchSize: Int, using rng: inout RandomGenerator) {
        proj = Conv2d(inChannels, embedDim, kernel: patchSize, stride: patchSize, using: &rng)
    }

    public var ssfSites: [ScaleShift?] { [ssf] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("proj", proj)] }

    func enableSSF(using rng: inout RandomGenerator) {
        ssf = ScaleShift(channels: proj.outChannels, after: "proj", using: &rng)
    }

    /// `[B, C, H, W]` → `[B, (H/p)·(W/p), D]`, patches in row-major order.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = proj(x)
        let (b, d) = (y.shape[0], y.shape[1])
        return applySSF(ssf, y.reshaped([b, d, -1]).permuted([0, 2, 1]))
    }
}

/// Multi-head self-attention on a fused `qkv` projection, timm's `Attention`.
public final class ViTAttention: SSFSiteHost {
    public let qkv: Linear, proj: Linear
    public let numHeads: Int
    var ssfQKV: ScaleShift?, ssfProj: ScaleShift?

    init(dim: Int, numHeads: Int, qkvBias: Bool, using rng: inout RandomGenerator) {
        precondition(dim % numHeads == 0, "ViT: embed dim \(dim) is not divisible by \(numHeads) heads")
        qkv = transformerLinear(dim, 3 * dim, bias: qkvBias, using: &rng)
        proj = transformerLinear(dim, dim, using: &rng)
        self.numHeads = numHeads
    }

    public var ssfSites: [ScaleShift?] { [ssfQKV, ssfProj] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("qkv", qkv), ("proj", proj)] }

    func enableSSF(using rng: inout RandomGenerator) {
        ssfQKV = ScaleShift(channels: qkv.outFeatures, after: "qkv", using: &rng)
        ssfProj = ScaleShift(channels: proj.outFeatures, after: "proj", using: &rng)
    }

    /// `[B, T, D]` → `[B, T, D]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let packed = qkv(x, then: ssfQKV)
        return proj(scaledDotProductAttention(qkv: packed, heads: numHeads), then: ssfProj)
    }
}

/// A per-channel learnable factor on a residual branch, timm's `LayerScale` (`gamma`).
public final class LayerScale: Module {
    public let gamma: Parameter

    init(dim: Int, initValue: Float) { gamma = Parameter(.full([dim], initValue)) }

    public var localParameters: [(String, Parameter)] { [("gamma", gamma)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x * gamma.tensor }
}

/// A pre-norm transformer block: `x + ls1(attn(norm1(x)))`, then `x + ls2(mlp(norm2(x)))`.
public final class ViTBlock: SSFSiteHost, AdapterCarrying {
    public let norm1: LayerNorm, attn: ViTAttention, norm2: LayerNorm, mlp: TransformerMlp
    /// Layer scale, present only when the model is configured with an initial value.
    public let ls1: LayerScale?, ls2: LayerScale?
    public let dropPath1: DropPath, dropPath2: DropPath
    var ssfNorm1: ScaleShift?, ssfNorm2: ScaleShift?
    /// A bottleneck adapter on the MLP's output, before the residual sum (the Adapter method); nil in the plain architecture.
    var adapter: Adapter?

    init(config: VisionTransformerConfig, dropPathRate: Float, using rng: inout RandomGenerator) {
        let dim = config.embedDim
        norm1 = LayerNorm(dim, eps: 1e-6)
        attn = ViTAttention(dim: dim, numHeads: config.numHeads, qkvBias: config.qkvBias, using: &rng)
        ls1 = config.layerScaleInit.map { LayerScale(dim: dim, initValue: $0) }
        dropPath1 = DropPath(dropPathRate, seed: rng.next())
        norm2 = LayerNorm(dim, eps: 1e-6)
        mlp = TransformerMlp(dim: dim, hidden: config.mlpHiddenDim, using: &rng)
        ls2 = config.layerScaleInit.map { LayerScale(dim: dim, initValue: $0) }
        dropPath2 = DropPath(dropPathRate, seed: rng.next())
    }

    public var ssfSites: [ScaleShift?] { [ssfNorm1, ssfNorm2] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    /// The drop-path modules hold no tensors; they are listed so `setTraining` reaches them.
    public var children: [(String, Module)] {
        var out: [(String, Module)] = [("norm1", norm1), ("attn", attn)]
        if let ls1 { out.append(("ls1", ls1)) }
        out += [("drop_path1", dropPath1), ("norm2", norm2), ("mlp", mlp)]
        if let ls2 { out.append(("ls2", ls2)) }
        return out + [("drop_path2", dropPath2)] + (adapter.map { [("adapter", $0 as Module)] } ?? [])
    }

    func enableSSF(using rng: inout RandomGenerator) {
        ssfNorm1 = ScaleShift(channels: norm1.weight.count, after: "norm1", using: &rng)
        ssfNorm2 = ScaleShift(channels: norm2.weight.count, after: "norm2", using: &rng)
        attn.enableSSF(using: &rng)
        mlp.enableSSF(using: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var branch = attn(norm1(x, then: ssfNorm1))
        if let ls1 { branch = ls1(branch) }
        let y = x + dropPath1(consume branch)
        branch = mlp(norm2(y, then: ssfNorm2))
        if let adapter { branch = adapter(branch) }
        if let ls2 { branch = ls2(branch) }
        return y + dropPath2(consume branch)
    }
}
