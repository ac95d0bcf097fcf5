// The building blocks of timm 1.0's SwinTransformer (NHWC layout): patch embedding, window attention
// with relative position bias, the (shifted-)window block, and patch merging, with their SSF sites.
//
// SSF sites (SSF-SPEC, the reference `models/swin_transformer.py`): `patch_embed.ssf_*_1` after the
// projection and `ssf_*_2` after its norm; in each block `ssf_*_1` after `norm1` (before the shift and
// window partition) and `ssf_*_2` after `norm2`; `attn.ssf_*_1` after `qkv` (3·C channels) and
// `attn.ssf_*_2` after `proj`; `mlp.ssf_*_1/2` after `fc1`/`fc2`. Patch merging has none.
import SSFEngine
import SSFNN

/// Patches to an NHWC map: conv (kernel = stride = patch size) → LayerNorm.
public final class SwinPatchEmbed: SSFSiteHost {
    public let proj: Conv2d
    public let norm: LayerNorm
    var ssfProj: ScaleShift?, ssfNorm: ScaleShift?

    init(inChannels: Int, embedDim: Int, patchSize: Int, using rng: inout RandomGenerator) {
        proj = Conv2d(inChannels, embedDim, kernel: patchSize, stride: patchSize, using: &rng)
        norm = LayerNorm(embedDim)
    }

    public var ssfSites: [ScaleShift?] { [ssfProj, ssfNorm] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("proj", proj), ("norm", norm)] }

    func enableSSF(using rng: inout RandomGenerator) {
        ssfProj = ScaleShift(channels: proj.outChannels, after: "proj", using: &rng)
        ssfNorm = ScaleShift(channels: proj.outChannels, after: "norm", using: &rng)
    }

    /// `[B, C, H, W]` → `[B, H/p, W/p, D]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        norm(applySSF(ssfProj, proj(x).permuted([0, 2, 3, 1])), then: ssfNorm)
    }
}

/// The relative position of every token pair inside a `ws × ws` window as an index into the bias
/// table (timm's `get_relative_position_index`), row-major `[ws², ws²]`.
func swinRelativePositionIndex(windowSize ws: Int) -> [Int] {
    var index: [Int] = []
    index.reserveCapacity(ws * ws * ws * ws)
    for p in 0..<(ws * ws) {
        for q in 0..<(ws * ws) {
            index.append((p / ws - q / ws + ws - 1) * (2 * ws - 1) + (p % ws - q % ws + ws - 1))
        }
    }
    return index
}

/// The shifted-window attention mask `[nW, ws², ws²]` (0 within a region, −100 across regions) for
/// an `height × width` map padded up to whole windows, as timm's `get_attn_mask`.
func swinAttentionMask(height: Int, width: Int, windowSize ws: Int, shift: Int) -> Tensor {
    let hp = (height + ws - 1) / ws * ws, wp = (width + ws - 1) / ws * ws
    func band(_ i: Int, _ n: Int) -> Int { i < n - ws ? 0 : (i < n - shift ? 1 : 2) }
    var region = [Float](repeating: 0, count: hp * wp)
    for i in 0..<hp { for j in 0..<wp { region[i * wp + j] = Float(band(i, hp) * 3 + band(j, wp)) } }
    let windows = windowPartition(Tensor(shape: [1, hp, wp, 1], region), windowSize: ws).reshaped([-1, ws * ws, 1])
    let t = ws * ws
    let ids = windows.scalars
    var mask = [Float](repeating: 0, count: ids.count / t * t * t)
    for w in 0..<(ids.count / t) {
        for i in 0..<t { for j in 0..<t where ids[w * t + i] != ids[w * t + j] { mask[(w * t + i) * t + j] = -100 } }
    }
    return Tensor(shape: [ids.count / t, t, t], mask)
}

/// Multi-head attention inside windows with a learned relative position bias, timm's `WindowAttention`.
public final class SwinWindowAttention: SSFSiteHost {
    public let qkv: Linear, proj: Linear
    /// `[(2·ws − 1)², heads]`, indexed by `relativePositionIndex`.
    public let relativePositionBiasTable: Parameter
    public let numHeads: Int, windowSize: Int
    /// The non-persistent buffer of timm (not part of the state dictionary).
    let relativePositionIndex: [Int]
    var ssfQKV: ScaleShift?, ssfProj: ScaleShift?

    init(dim: Int, numHeads: Int, windowSize: Int, qkvBias: Bool, using rng: inout RandomGenerator) {
        precondition(dim % numHeads == 0, "Swin: width \(dim) is not divisible by \(numHeads) heads")
        relativePositionBiasTable = Parameter(Tensor.truncatedNormal([(2 * windowSize - 1) * (2 * windowSize - 1), numHeads],
                                                                     std: 0.02, using: &rng))
        qkv = transformerLinear(dim, 3 * dim, bias: qkvBias, using: &rng)
        proj = transformerLinear(dim, dim, using: &rng)
        self.numHeads = numHeads
        self.windowSize = windowSize
        relativePositionIndex = swinRelativePositionIndex(windowSize: windowSize)
    }

    public var ssfSites: [ScaleShift?] { [ssfQKV, ssfProj] }
    public var localParameters: [(String, Parameter)] {
        [("relative_position_bias_table", relativePositionBiasTable)] + ssfParameters
    }
    public var children: [(String, Module)] { [("qkv", qkv), ("proj", proj)] }

    func enableSSF(using rng: inout RandomGenerator) {
        ssfQKV = ScaleShift(channels: qkv.outFeatures, after: "qkv", using: &rng)
        ssfProj = ScaleShift(channels: proj.outFeatures, after: "proj", using: &rng)
    }

    /// The bias `[heads, ws², ws²]` gathered from the table.
    public var relativePositionBias: Tensor {
        let t = windowSize * windowSize
        return relativePositionBiasTable.tensor.indexSelect(axis: 0, indices: relativePositionIndex)
            .reshaped([t, t, numHeads]).permuted([2, 0, 1])
    }

    /// Windows `[B·nW, ws², C]` → `[B·nW, ws², C]`; `mask` is `[nW, ws², ws²]` for shifted windows.
    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let packed = qkv(x, then: ssfQKV)
        let y = scaledDotProductAttention(qkv: packed, heads: numHeads, bias: relativePositionBias, mask: mask)
        return proj(y, then: ssfProj)
    }
}

/// A Swin block on an NHWC map: `x + attn(norm1(x))` over (shifted) windows, then `x + mlp(norm2(x))`.
public final class SwinBlock: TensorLayer, SSFSiteHost, AdapterCarrying {
    public let norm1: LayerNorm, attn: SwinWindowAttention, norm2: LayerNorm, mlp: TransformerMlp
    public let dropPath1: DropPath, dropPath2: DropPath
    /// Window side and cyclic shift, as timm derives them from the stage resolution.
    public let windowSize: Int, shiftSize: Int
    /// The shifted-window mask for the configured resolution (nil without a shift).
    let attentionMask: Tensor?
    /// The roll and window partition of a `resolution × resolution` map as one token reordering
    /// (its inverse is the window reverse and roll back; nil where the map is padded).
    let windowOrder: (side: Int, permutation: TokenPermutation)?
    var ssfNorm1: ScaleShift?, ssfNorm2: ScaleShift?
    /// A bottleneck adapter on the MLP's output, before the residual sum (the Adapter method); nil in the plain architecture.
    var adapter: Adapter?

    /// A block for a `resolution × resolution` map; odd blocks (`shifted`) shift by half a window
    /// unless the map fits in one window, which then shrinks to the map.
    init(dim: Int, resolution: Int, numHeads: Int, windowSize: Int, shifted: Bool, mlpRatio: Double, qkvBias: Bool,
         dropPathRate: Float, using rng: inout RandomGenerator) {
        self.windowSize = min(windowSize, resolution)
        shiftSize = shifted && resolution > windowSize ? windowSize / 2 : 0
        norm1 = LayerNorm(dim)
        attn = SwinWindowAttention(dim: dim, numHeads: numHeads, windowSize: self.windowSize, qkvBias: qkvBias, using: &rng)
        dropPath1 = DropPath(dropPathRate, seed: rng.next())
        norm2 = LayerNorm(dim)
        mlp = TransformerMlp(dim: dim, hidden: Int(Double(dim) * mlpRatio), using: &rng)
        dropPath2 = DropPath(dropPathRate, seed: rng.next())
        attentionMask = shiftSize > 0
            ? swinAttentionMask(height: resolution, width: resolution, windowSize: self.windowSize, shift: shiftSize) : nil
        if resolution % self.windowSize == 0 {
            let order = TokenPermutation.shiftedWindows(height: resolution, width: resolution, windowSize: self.windowSize, shift: shiftSize)
            windowOrder = (resolution, order)
        } else {
            windowOrder = nil
        }
    }

    public var ssfSites: [ScaleShift?] { [ssfNorm1, ssfNorm2] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    /// The drop-path modules hold no tensors; they are listed so `setTraining` reaches them.
    public var children: [(String, Module)] {
        [("norm1", norm1), ("attn", attn), ("drop_path1", dropPath1), ("norm2", norm2), ("mlp", mlp), ("drop_path2", dropPath2)]
            + (adapter.map { [("adapter", $0 as Module)] } ?? [])
    }

    func enableSSF(using rng: inout RandomGenerator) {
        ssfNorm1 = ScaleShift(channels: norm1.weight.count, after: "norm1", using: &rng)
        ssfNorm2 = ScaleShift(channels: norm2.weight.count, after: "norm2", using: &rng)
        attn.enableSSF(using: &rng)
        mlp.enableSSF(using: &rng)
    }

    /// `[B, H, W, C]` → `[B, H, W, C]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = x + dropPath1(windowAttention(norm1(x, then: ssfNorm1)))
        let branch = mlp(norm2(y, then: ssfNorm2))
        return y + dropPath2(adapter.map { $0(branch) } ?? branch)
    }

    /// Shift, zero-pad to whole windows, attend within windows, and undo all three.
    private func windowAttention(_ x: Tensor) -> Tensor {
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ws = windowSize
        if let (side, order) = windowOrder, h == side, w == side {
            // The roll and the partition in one gather, the reverse and the roll back in another
            // (none where the map is one unshifted window).
            if order.isIdentity { return attn(x.reshaped([-1, ws * ws, c]), mask: attentionMask).reshaped([b, h, w, c]) }
            let windows = permuteTokens(x, order, channels: c, shape: [b * h * w / (ws * ws), ws * ws, c])
            return permuteTokens(attn(windows, mask: attentionMask), order.inverse, channels: c, shape: [b, h, w, c])
        }
        let (padH, padW) = ((ws - h % ws) % ws, (ws - w % ws) % ws)
        var shifted = shiftSize > 0 ? roll(x, shifts: [-shiftSize, -shiftSize], axes: [1, 2]) : x
        if padH > 0 { shifted = concat([shifted, Tensor.zeros([b, padH, w, c])], axis: 1) }
        if padW > 0 { shifted = concat([shifted, Tensor.zeros([b, h + padH, padW, c])], axis: 2) }
        let windows = windowPartition(shifted, windowSize: ws).reshaped([-1, ws * ws, c])
        let attended = attn(windows, mask: attentionMask).reshaped([-1, ws, ws, c])
        var merged = windowReverse(attended, windowSize: ws, height: h + padH, width: w + padW)
        if padH > 0 { merged = merged.slice(axis: 1, range: 0..<h) }
        if padW > 0 { merged = merged.slice(axis: 2, range: 0..<w) }
        return shiftSize > 0 ? roll(merged, shifts: [shiftSize, shiftSize], axes: [1, 2]) : merged
    }
}

/// Halves the resolution and doubles the width: each 2×2 neighbourhood's channels are concatenated
/// (timm 1.0 order: (0,0), (1,0), (0,1), (1,1)), normalised, and linearly reduced.
public final class SwinPatchMerging: TensorLayer {
    public let norm: LayerNorm
    public let reduction: Linear

    init(dim: Int, outDim: Int, using rng: inout RandomGenerator) {
        norm = LayerNorm(4 * dim)
        reduction = transformerLinear(4 * dim, outDim, bias: false, using: &rng)
    }

    public var children: [(String, Module)] { [("norm", norm), ("reduction", reduction)] }

    /// `[B, H, W, C]` → `[B, ⌈H/2⌉, ⌈W/2⌉, 2C]` (odd sides are zero-padded).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if h % 2 == 1 { y = concat([y, Tensor.zeros([b, 1, w, c])], axis: 1) }
        if w % 2 == 1 { y = concat([y, Tensor.zeros([b, y.shape[1], 1, c])], axis: 2) }
        let (h2, w2) = (y.shape[1] / 2, y.shape[2] / 2)
        y = y.reshaped([b, h2, 2, w2, 2, c]).permuted([0, 1, 3, 4, 2, 5]).reshaped([b, h2, w2, 4 * c])
        return reduction(norm(y))
    }
}

/// One resolution stage: patch merging (all stages but the first, timm 1.0 layout), then blocks.
public typealias SwinStage = DownsampleStage<SwinPatchMerging, SwinBlock>

/// timm's `ClassifierHead` as Swin uses it: the (optional) `fc` after pooling.
public final class SwinHead: Module {
    public private(set) var fc: Linear?

    init(features: Int, numClasses: Int, using rng: inout RandomGenerator) {
        reset(features: features, numClasses: numClasses, using: &rng)
    }

    public var children: [(String, Module)] { fc.map { [("fc", $0 as Module)] } ?? [] }

    func reset(features: Int, numClasses: Int, using rng: inout RandomGenerator) {
        fc = numClasses > 0 ? transformerLinear(features, numClasses, using: &rng) : nil
    }

    /// Pooled features `[B, C]` → logits (or the features themselves without `fc`).
    public func callAsFunction(_ pooled: Tensor) -> Tensor { fc.map { $0(pooled) } ?? pooled }
}
