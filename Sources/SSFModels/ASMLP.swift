// AS-MLP (Lian et al. 2021, "AS-MLP: An Axial Shifted MLP Architecture for Vision"), with the
// parameter names of the authors' code and of the SSF reference `models/as_mlp.py`; not in timm.
//
// Layout (NCHW throughout, every norm GroupNorm(1, C)): `patch_embed` (4×4/4 conv `proj`,
// `norm`) → `layers.N` of `blocks.M` (norm1 → `axial_shift` → residual, norm2 → `mlp` (1×1
// convs fc1, GELU, fc2) → residual), each stage but the last ending in `downsample` (patch
// merging) → `norm` → global average pool → `head`.
//
// SSF sites (SSF-SPEC, the reference file): in each block `ssf_*_1` after norm1 and `ssf_*_2`
// after norm2; `axial_shift.ssf_*_1…4` after conv1, conv2_1, conv2_2, conv3; `mlp.ssf_*_1`
// after fc1 (before GELU) and `mlp.ssf_*_2` after fc2; the root's `ssf_*_1` after the final
// norm. None in patch embedding or patch merging.
import SSFEngine
import SSFNN

/// The hyperparameters of an AS-MLP (the reference `AS_MLP` keyword arguments of the same names).
public struct ASMLPConfig: Sendable, Equatable {
    public var numClasses: Int
    public var inChannels: Int
    /// Side of the patch embedding's non-overlapping patches.
    public var patchSize: Int
    /// Channels of the first stage; each later stage doubles them.
    public var embedDim: Int
    /// Blocks per stage.
    public var depths: [Int]
    /// Number of channel groups of the axial shift (group g moves by g − shiftSize/2).
    public var shiftSize: Int
    /// Hidden width of the MLP relative to the block width.
    public var mlpRatio: Float
    /// Whether the axial-shift 1×1 convolutions have biases (`as_bias`).
    public var bias: Bool
    /// Whether the patch embedding ends in a norm (`patch_norm`).
    public var patchNorm: Bool
    /// Stochastic-depth rate of the last block (linearly increasing from 0 over the blocks).
    public var dropPathRate: Float

    public init(embedDim: Int, depths: [Int], numClasses: Int = 1000, inChannels: Int = 3, patchSize: Int = 4,
                shiftSize: Int = 5, mlpRatio: Float = 4, bias: Bool = true, patchNorm: Bool = true, dropPathRate: Float = 0.1) {
        precondition(!depths.isEmpty && embedDim > 0, "AS-MLP: needs at least one stage and a positive width")
        self.embedDim = embedDim; self.depths = depths; self.numClasses = numClasses; self.inChannels = inChannels
        self.patchSize = patchSize; self.shiftSize = shiftSize; self.mlpRatio = mlpRatio; self.bias = bias
        self.patchNorm = patchNorm; self.dropPathRate = dropPathRate
    }

    /// Channels of stage `i`.
    public func dim(stage i: Int) -> Int { embedDim << i }

    /// AS-MLP-T: width 96, depths 2-2-6-2.
    public static func tiny(numClasses: Int = 1000) -> Self { .init(embedDim: 96, depths: [2, 2, 6, 2], numClasses: numClasses) }
    /// AS-MLP-S: width 96, depths 2-2-18-2.
    public static func small(numClasses: Int = 1000) -> Self { .init(embedDim: 96, depths: [2, 2, 18, 2], numClasses: numClasses) }
    /// AS-MLP-B: width 128, depths 2-2-18-2.
    public static func base(numClasses: Int = 1000) -> Self { .init(embedDim: 128, depths: [2, 2, 18, 2], numClasses: numClasses) }
}

/// An AS-MLP image classifier whose state dictionary has the reference implementation's keys.
///
/// Any input whose feature map stays even at every patch merging works; the registered
/// models expect 224×224.
public final class ASMLP: ImageClassifier, SSFSiteHost {
    public let config: ASMLPConfig
    public let patchEmbed: ASMLPPatchEmbed
    public let layers: ModuleList<ASMLPStage>
    public let norm: GroupNorm
    public private(set) var head: Linear?
    var ssfOutput: ScaleShift?

    /// A randomly initialised model (PyTorch's default layer initialisation, as the reference).
    public init(config: ASMLPConfig, using rng: inout RandomGenerator) {
        self.config = config
        patchEmbed = ASMLPPatchEmbed(patchSize: config.patchSize, inChannels: config.inChannels, embedDim: config.embedDim,
                                     patchNorm: config.patchNorm, using: &rng)
        let totalBlocks = config.depths.reduce(0, +)
        var blockIndex = 0
        var stages: [ASMLPStage] = []
        for (i, depth) in config.depths.enumerated() {
            let dim = config.dim(stage: i)
            var blocks: [AxialShiftedBlock] = []
            for _ in 0..<depth {
                let rate = totalBlocks > 1 ? config.dropPathRate * Float(blockIndex) / Float(totalBlocks - 1) : 0
                blocks.append(AxialShiftedBlock(dim: dim, shiftSize: config.shiftSize, mlpRatio: config.mlpRatio,
                                                bias: config.bias, dropPath: rate, using: &rng))
                blockIndex += 1
            }
            let downsample = i < config.depths.count - 1 ? ASMLPPatchMerging(dim: dim, using: &rng) : nil
            stages.append(ASMLPStage(blocks: blocks, downsample: downsample))
        }
        layers = ModuleList(stages)
        norm = GroupNorm(groups: 1, channels: config.dim(stage: config.depths.count - 1))
        resetHead(numClasses: config.numClasses, using: &rng)
    }

    public var numClasses: Int { head?.outFeatures ?? 0 }
    public var featureDim: Int { config.dim(stage: config.depths.count - 1) }

    public var ssfSites: [ScaleShift?] { [ssfOutput] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] {
        [("patch_embed", patchEmbed), ("layers", layers), ("norm", norm)] + (head.map { [("head", $0 as Module)] } ?? [])
    }

    /// The pooled features `[N, featureDim]` the head consumes.
    public func features(_ images: Tensor) -> Tensor {
        let x = layers.modules.reduce(patchEmbed(images)) { $1($0) }
        return globalAvgPool2d(applySSF(ssfOutput, norm(x)))
    }

    public func callAsFunction(_ images: Tensor) -> Tensor { applyHead(headInput(images)) }
    public func headInput(_ images: Tensor) -> Tensor { features(images) }
    public func applyHead(_ input: Tensor) -> Tensor { head.map { $0(input) } ?? input }

    public func resetHead(numClasses: Int, using rng: inout RandomGenerator) {
        head = numClasses > 0 ? Linear(featureDim, numClasses, using: &rng) : nil
    }

    public func enableSSF(using rng: inout RandomGenerator) {
        for stage in layers.modules {
            for block in stage.blocks.modules { block.enableSSF(using: &rng) }
        }
        ssfOutput = ScaleShift(channels: featureDim, axis: .channelsFirst, after: "norm", using: &rng)
    }
}

private func asMLPSpec(_ name: String, config: @escaping @Sendable (Int) -> ASMLPConfig) -> ModelSpec {
    ModelSpec(name: name, family: "asmlp", defaultNumClasses: 1000,
              preprocess: PreprocessConfig(inputSize: 224, mean: PreprocessConfig.imagenetMean, std: PreprocessConfig.imagenetStd,
                                           cropFraction: 0.9, interpolation: .bicubic),
              build: { numClasses, rng in ASMLP(config: config(numClasses), using: &rng) })
}

/// The registered AS-MLP models, named as in the SSF reference; preprocessing is the reference
/// `default_cfg` (224, ImageNet mean/std, crop 0.9, bicubic).
let asMLPSpecs: [ModelSpec] = [
    asMLPSpec("as_tiny_patch4_window7_224") { .tiny(numClasses: $0) },
    asMLPSpec("as_small_patch4_window7_224") { .small(numClasses: $0) },
    asMLPSpec("as_base_patch4_window7_224") { .base(numClasses: $0) },
]

extension ASMLP: AdapterTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        for (i, stage) in layers.modules.enumerated() { stage.blocks.enableAdapters(dim: config.dim(stage: i), bottleneck: bottleneck, using: &rng) }
    }
}
