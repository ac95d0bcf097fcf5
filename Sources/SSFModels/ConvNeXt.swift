// ConvNeXt (Liu et al. 2022) with timm 1.0's parameter names and numerics, and its SSF sites.
//
// Layout: `stem` (4×4/4 conv, LayerNorm2d) → 4 `stages` (stage 0 keeps the resolution, the
// others start with `downsample` = LayerNorm2d + 2×2/2 conv) of `blocks` (7×7 depthwise conv,
// LayerNorm → fc1 → GELU → fc2, layer scale `gamma`, residual) → `head` (global average pool →
// LayerNorm → fc).
//
// The stages run channels-last (NHWC) from the stem's output to the last block's: the blocks'
// depthwise conv, norm, MLP and residual all work on NHWC maps, so the only layout changes are
// one after the stem, two around each downsampling conv and one before the head, rather than two
// in every block. Block outputs (the feature taps) are NHWC; `forwardFeatures`
// returns NCHW, as timm's does.
//
// SSF sites (SSF-SPEC, the reference `models/convnext.py`): `stem.ssf_*_1` after the stem conv and
// `stem.ssf_*_2` after its norm; in each block `ssf_*_1` after `conv_dw`, `ssf_*_2` after `norm`,
// `mlp.ssf_*_1` after `fc1` (before GELU), `mlp.ssf_*_2` after `fc2` (before the layer scale);
// none in downsampling; the root's `ssf_*_1` on the last stage's output before pooling.
import SSFEngine
import SSFNN

/// The hyperparameters of a ConvNeXt (timm's `ConvNeXt` keyword arguments of the same names).
public struct ConvNeXtConfig: Sendable, Equatable {
    /// Blocks per stage.
    public var depths: [Int]
    /// Channels per stage.
    public var dims: [Int]
    public var numClasses: Int
    public var inChannels: Int
    /// Side of the stem's non-overlapping patches.
    public var patchSize: Int
    /// Side of the blocks' depthwise kernel.
    public var kernelSize: Int
    public var mlpRatio: Int
    /// Initial value of the layer-scale vectors.
    public var layerScaleInit: Float
    /// Stochastic-depth rate of the last block (linearly increasing from 0 over the blocks).
    public var dropPathRate: Float

    public init(depths: [Int], dims: [Int], numClasses: Int = 1000, inChannels: Int = 3, patchSize: Int = 4,
                kernelSize: Int = 7, mlpRatio: Int = 4, layerScaleInit: Float = 1e-6, dropPathRate: Float = 0) {
        precondition(depths.count == dims.count && !dims.isEmpty, "ConvNeXt: depths and dims must have equal, nonzero length")
        self.depths = depths; self.dims = dims; self.numClasses = numClasses; self.inChannels = inChannels
        self.patchSize = patchSize; self.kernelSize = kernelSize; self.mlpRatio = mlpRatio
        self.layerScaleInit = layerScaleInit; self.dropPathRate = dropPathRate
    }

    /// `convnext_tiny`: depths 3-3-9-3, dims 96…768.
    public static func tiny(numClasses: Int = 1000) -> Self { .init(depths: [3, 3, 9, 3], dims: [96, 192, 384, 768], numClasses: numClasses) }
    /// `convnext_small`: depths 3-3-27-3, dims 96…768.
    public static func small(numClasses: Int = 1000) -> Self { .init(depths: [3, 3, 27, 3], dims: [96, 192, 384, 768], numClasses: numClasses) }
    /// `convnext_base`: depths 3-3-27-3, dims 128…1024.
    public static func base(numClasses: Int = 1000) -> Self { .init(depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024], numClasses: numClasses) }
}

/// timm's initialisation of ConvNeXt convolutions and linears: weights ~ N(0, 0.02²) truncated, zero bias.
private func convNeXtInit(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
    Tensor.truncatedNormal(shape, std: 0.02, using: &rng)
}

/// A square convolution initialised as timm initialises ConvNeXt.
private func makeConv(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                      groups: Int = 1, using rng: inout RandomGenerator) -> Conv2d {
    Conv2d(weight: convNeXtInit([outChannels, inChannels / groups, kernel, kernel], using: &rng), bias: .zeros([outChannels]),
           stride: (stride, stride), padding: (padding, padding), groups: groups)
}

/// A linear layer initialised as timm initialises ConvNeXt.
private func makeLinear(_ inFeatures: Int, _ outFeatures: Int, using rng: inout RandomGenerator) -> Linear {
    Linear(weight: convNeXtInit([outFeatures, inFeatures], using: &rng), bias: .zeros([outFeatures]))
}

/// Patchify stem: `0` = conv (kernel = stride = patch size), `1` = LayerNorm2d.
public final class ConvNeXtStem: SSFSiteHost {
    public let conv: Conv2d
    public let norm: LayerNorm2d
    var ssfConv: ScaleShift?, ssfNorm: ScaleShift?

    init(inChannels: Int, dim: Int, patchSize: Int, using rng: inout RandomGenerator) {
        conv = makeConv(inChannels, dim, kernel: patchSize, stride: patchSize, using: &rng)
        norm = LayerNorm2d(dim)
    }

    public var ssfSites: [ScaleShift?] { [ssfConv, ssfNorm] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("0", conv), ("1", norm)] }

    func enableSSF(using rng: inout RandomGenerator) {
        ssfConv = ScaleShift(channels: conv.outChannels, axis: .channelsFirst, after: "0", using: &rng)
        ssfNorm = ScaleShift(channels: conv.outChannels, axis: .channelsFirst, after: "1", using: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        applySSF(ssfNorm, norm(applySSF(ssfConv, conv(x))))
    }
}

/// One residual block on an NHWC map: depthwise conv → norm and MLP → layer scale → + input.
public final class ConvNeXtBlock: TensorLayer, SSFSiteHost, AdapterCarrying {
    public let convDW: Conv2d
    public let norm: LayerNorm
    /// fc1 → GELU → fc2 on channels-last features (the transformers' MLP, with the same SSF sites).
    public let mlp: TransformerMlp
    /// Layer scale, one factor per channel.
    public let gamma: Parameter
    public let dropPath: DropPath
    var ssfConv: ScaleShift?, ssfNorm: ScaleShift?
    /// A bottleneck adapter on the MLP's output, before the layer scale (the Adapter method); nil in the plain architecture.
    var adapter: Adapter?

    init(dim: Int, kernelSize: Int, mlpRatio: Int, layerScaleInit: Float, dropPath: DropPath, using rng: inout RandomGenerator) {
        convDW = makeConv(dim, dim, kernel: kernelSize, padding: kernelSize / 2, groups: dim, using: &rng)
        norm = LayerNorm(dim, eps: 1e-6)
        mlp = TransformerMlp(dim: dim, hidden: mlpRatio * dim, using: &rng)
        gamma = Parameter(.full([dim], layerScaleInit))
        self.dropPath = dropPath
    }

    public var ssfSites: [ScaleShift?] { [ssfConv, ssfNorm] }
    public var localParameters: [(String, Parameter)] { [("gamma", gamma)] + ssfParameters }
    public var children: [(String, Module)] {
        [("conv_dw", convDW), ("norm", norm), ("mlp", mlp), ("drop_path", dropPath)] + (adapter.map { [("adapter", $0 as Module)] } ?? [])
    }

    func enableSSF(using rng: inout RandomGenerator) {
        let dim = gamma.count
        ssfConv = ScaleShift(channels: dim, after: "conv_dw", using: &rng)
        ssfNorm = ScaleShift(channels: dim, after: "norm", using: &rng)
        mlp.enableSSF(using: &rng)
    }

    /// `[N, H, W, C]` → `[N, H, W, C]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = depthwiseConv2dNHWC(x, weight: convDW.weight.tensor, bias: convDW.bias?.tensor, padding: convDW.padding.0)
        y = mlp(norm(applySSF(ssfConv, y), then: ssfNorm))
        if let adapter { y = adapter(y) }
        y = (consume y) * gamma.tensor
        return dropPath(y) + x
    }
}

/// Resolution halving between stages: `0` = LayerNorm2d, `1` = 2×2/2 conv. No SSF sites.
public final class ConvNeXtDownsample: TensorLayer {
    public let norm: LayerNorm2d
    public let conv: Conv2d

    init(inChannels: Int, outChannels: Int, using rng: inout RandomGenerator) {
        norm = LayerNorm2d(inChannels)
        conv = makeConv(inChannels, outChannels, kernel: 2, stride: 2, using: &rng)
    }

    public var children: [(String, Module)] { [("0", norm), ("1", conv)] }
    /// `[N, H, W, C]` → `[N, H/2, W/2, C′]`: the norm over channels is a plain LayerNorm on the
    /// NHWC map; the 2×2 conv runs on its NCHW permutation.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let normed = layerNorm(x, weight: norm.weight.tensor, bias: norm.bias.tensor, eps: norm.eps)
        return conv(normed.permuted([0, 3, 1, 2])).permuted([0, 2, 3, 1])
    }
}

/// One resolution stage: optional downsampling, then residual blocks.
public typealias ConvNeXtStage = DownsampleStage<ConvNeXtDownsample, ConvNeXtBlock>

/// The classifier head: global average pool → LayerNorm (timm's LayerNorm2d on the pooled map) → fc.
public final class ConvNeXtHead: Module {
    public let norm: LayerNorm2d
    public private(set) var fc: Linear?

    init(features: Int, numClasses: Int, using rng: inout RandomGenerator) {
        norm = LayerNorm2d(features)
        fc = numClasses > 0 ? makeLinear(features, numClasses, using: &rng) : nil
    }

    public var children: [(String, Module)] { [("norm", norm)] + (fc.map { [("fc", $0 as Module)] } ?? []) }

    func reset(features: Int, numClasses: Int, using rng: inout RandomGenerator) {
        fc = numClasses > 0 ? makeLinear(features, numClasses, using: &rng) : nil
    }

    /// `[N, C, H, W]` → logits (or normalised pooled features without fc).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let pooled = layerNorm(globalAvgPool2d(x), weight: norm.weight.tensor, bias: norm.bias.tensor, eps: norm.eps)
        return fc.map { $0(pooled) } ?? pooled
    }
}

/// A ConvNeXt image classifier whose state dictionary has timm's keys.
public final class ConvNeXt: ImageClassifier, SSFSiteHost {
    public let config: ConvNeXtConfig
    public let stem: ConvNeXtStem
    public let stages: ModuleList<ConvNeXtStage>
    public let head: ConvNeXtHead
    var ssfOutput: ScaleShift?

    /// A randomly initialised model (timm's initialisation scheme).
    public init(config: ConvNeXtConfig, using rng: inout RandomGenerator) {
        self.config = config
        stem = ConvNeXtStem(inChannels: config.inChannels, dim: config.dims[0], patchSize: config.patchSize, using: &rng)
        let totalBlocks = config.depths.reduce(0, +)
        var blockIndex = 0
        var stages: [ConvNeXtStage] = []
        for (i, (depth, dim)) in zip(config.depths, config.dims).enumerated() {
            let downsample = i == 0 ? nil : ConvNeXtDownsample(inChannels: config.dims[i - 1], outChannels: dim, using: &rng)
            var blocks: [ConvNeXtBlock] = []
            for _ in 0..<depth {
                let rate = totalBlocks > 1 ? config.dropPathRate * Float(blockIndex) / Float(totalBlocks - 1) : 0
                let dropPath = DropPath(rate, seed: rng.next())
                blocks.append(ConvNeXtBlock(dim: dim, kernelSize: config.kernelSize, mlpRatio: config.mlpRatio,
                                            layerScaleInit: config.layerScaleInit, dropPath: dropPath, using: &rng))
                blockIndex += 1
            }
            stages.append(ConvNeXtStage(downsample: downsample, blocks: blocks))
        }
        self.stages = ModuleList(stages)
        head = ConvNeXtHead(features: config.dims[config.dims.count - 1], numClasses: config.numClasses, using: &rng)
    }

    public var numClasses: Int { head.fc?.outFeatures ?? 0 }
    public var featureDim: Int { config.dims[config.dims.count - 1] }

    public var ssfSites: [ScaleShift?] { [ssfOutput] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("stem", stem), ("stages", stages), ("head", head)] }

    /// The last stage's output map `[N, C, H/32, W/32]` (after its SSF site when enabled), timm's `forward_features`.
    public func forwardFeatures(_ images: Tensor) -> Tensor {
        var x = stem(images).permuted([0, 2, 3, 1])
        for stage in stages.modules { x = stage(x) }
        return applySSF(ssfOutput, x.permuted([0, 3, 1, 2]))
    }

    public func callAsFunction(_ images: Tensor) -> Tensor { applyHead(headInput(images)) }
    public func headInput(_ images: Tensor) -> Tensor { forwardFeatures(images) }
    /// Pooling, `head.norm` (an SSF task trains it) and `head.fc`.
    public func applyHead(_ input: Tensor) -> Tensor { head(input) }

    public func resetHead(numClasses: Int, using rng: inout RandomGenerator) {
        head.reset(features: featureDim, numClasses: numClasses, using: &rng)
    }

    public func enableSSF(using rng: inout RandomGenerator) {
        stem.enableSSF(using: &rng)
        for stage in stages.modules {
            for block in stage.blocks.modules { block.enableSSF(using: &rng) }
        }
        enableOutputSSF(using: &rng)
    }

    /// Enables only the last-stage SSF site.
    public func enableOutputSSF(using rng: inout RandomGenerator) {
        ssfOutput = ScaleShift(channels: featureDim, axis: .channelsFirst, foldsInto: .unfoldable(reason: Self.outputSiteReason), using: &rng)
    }

    static let outputSiteReason = "it scales the last stage's output, a residual sum, before pooling and head.norm: no op precedes it"

    /// A merged SSF checkpoint keeps the last-stage site's two vectors (`ssf_scale_1`/`ssf_shift_1`).
    public func enableSSFSites(presentIn keys: Set<String>, using rng: inout RandomGenerator) -> [String] {
        guard ssfOutput == nil, keys.contains("ssf_scale_1") else { return [] }
        enableOutputSSF(using: &rng)
        return ["applying the checkpoint's last-stage SSF vectors (ssf_scale_1, ssf_shift_1)"]
    }
}

private func convNeXtSpec(_ name: String, cropFraction: Float, config: @escaping @Sendable (Int) -> ConvNeXtConfig) -> ModelSpec {
    ModelSpec(name: name, family: "convnext", defaultNumClasses: 1000,
              preprocess: PreprocessConfig(inputSize: 224, mean: PreprocessConfig.imagenetMean, std: PreprocessConfig.imagenetStd,
                                           cropFraction: cropFraction, interpolation: .bicubic),
              layouts: [FacebookConvNeXtLayout(), SSFReferenceConvNeXtLayout()],
              build: { numClasses, rng in ConvNeXt(config: config(numClasses), using: &rng) })
}

/// The registered ConvNeXt models; preprocessing follows each name's default timm pretrained_cfg
/// (tiny and small default to the `in12k_ft_in1k` weights with crop 0.95, base to `fb_in22k_ft_in1k` with 0.875).
let convNeXtSpecs: [ModelSpec] = [
    convNeXtSpec("convnext_tiny", cropFraction: 0.95) { .tiny(numClasses: $0) },
    convNeXtSpec("convnext_small", cropFraction: 0.95) { .small(numClasses: $0) },
    convNeXtSpec("convnext_base", cropFraction: 0.875) { .base(numClasses: $0) },
]

extension ConvNeXt: AdapterTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        for (stage, dim) in zip(stages.modules, config.dims) { stage.blocks.enableAdapters(dim: dim, bottleneck: bottleneck, using: &rng) }
    }
}
