// Swin Transformer (Liu et al. 2021) with timm 1.0's parameter names, NHWC layout and numerics, its
// SSF sites, the registered `swin_*` models, and the conversion of older (timm 0.6 / SSF reference)
// checkpoints.
//
// Layout: `patch_embed` (conv + LayerNorm) → `layers.N` (stage 0 keeps the resolution; stages 1… start
// with `downsample` = PatchMerging) of `blocks.M` (window attention with relative position bias,
// shifted windows on odd blocks) → final `norm` → global average pool → `head.fc`. LayerNorm eps 1e-5.
// The root's SSF site `ssf_*_1` follows the final `norm` (SSF-SPEC); the others live in the blocks.
import SSFEngine
import SSFNN

/// The hyperparameters of a Swin Transformer (timm's `SwinTransformer` keyword arguments).
public struct SwinTransformerConfig: Sendable, Equatable {
    /// Input height and width (square images).
    public var imgSize: Int
    public var patchSize: Int
    public var inChannels: Int
    /// Classes of `head.fc`; 0 means no head (the model returns pooled features).
    public var numClasses: Int
    /// Width of the first stage; each later stage doubles it.
    public var embedDim: Int
    /// Blocks per stage.
    public var depths: [Int]
    /// Attention heads per stage.
    public var numHeads: [Int]
    public var windowSize: Int
    public var mlpRatio: Double
    public var qkvBias: Bool
    /// Stochastic-depth rate of the last block (linearly increasing from 0 over all blocks; timm's default 0.1).
    public var dropPathRate: Float

    public init(imgSize: Int = 224, patchSize: Int = 4, inChannels: Int = 3, numClasses: Int = 1000, embedDim: Int = 96,
                depths: [Int] = [2, 2, 6, 2], numHeads: [Int] = [3, 6, 12, 24], windowSize: Int = 7, mlpRatio: Double = 4,
                qkvBias: Bool = true, dropPathRate: Float = 0.1) {
        precondition(depths.count == numHeads.count && !depths.isEmpty, "Swin: depths and numHeads must have equal, nonzero length")
        precondition(imgSize % patchSize == 0, "Swin: image size \(imgSize) is not a multiple of the patch size \(patchSize)")
        self.imgSize = imgSize; self.patchSize = patchSize; self.inChannels = inChannels; self.numClasses = numClasses
        self.embedDim = embedDim; self.depths = depths; self.numHeads = numHeads; self.windowSize = windowSize
        self.mlpRatio = mlpRatio; self.qkvBias = qkvBias; self.dropPathRate = dropPathRate
    }

    /// Width of stage `i`.
    public func dim(stage i: Int) -> Int { embedDim << i }
    /// Width of the final features.
    public var numFeatures: Int { dim(stage: depths.count - 1) }

    /// `swin_tiny_patch4_window7_224`: 96 wide, depths 2-2-6-2.
    public static func tiny(numClasses: Int = 1000) -> Self { .init(numClasses: numClasses) }
    /// `swin_small_patch4_window7_224`: 96 wide, depths 2-2-18-2.
    public static func small(numClasses: Int = 1000) -> Self { .init(numClasses: numClasses, depths: [2, 2, 18, 2]) }
    /// `swin_base_patch4_window7_224`: 128 wide, depths 2-2-18-2, heads 4-8-16-32.
    public static func base(numClasses: Int = 1000) -> Self {
        .init(numClasses: numClasses, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32])
    }
}

/// A Swin Transformer image classifier whose state dictionary has timm 1.0's keys.
public final class SwinTransformer: ImageClassifier, SSFSiteHost {
    public let config: SwinTransformerConfig
    public let patchEmbed: SwinPatchEmbed
    public let layers: ModuleList<SwinStage>
    public let norm: LayerNorm
    public let head: SwinHead
    var ssfNorm: ScaleShift?

    /// A randomly initialised model (timm's scheme: truncated-normal linears and bias tables).
    public init(config: SwinTransformerConfig, using rng: inout RandomGenerator) {
        self.config = config
        patchEmbed = SwinPatchEmbed(inChannels: config.inChannels, embedDim: config.embedDim, patchSize: config.patchSize, using: &rng)
        let totalBlocks = config.depths.reduce(0, +)
        var blockIndex = 0
        var resolution = config.imgSize / config.patchSize
        var stages: [SwinStage] = []
        for (i, depth) in config.depths.enumerated() {
            let dim = config.dim(stage: i)
            var downsample: SwinPatchMerging?
            if i > 0 {
                downsample = SwinPatchMerging(dim: config.dim(stage: i - 1), outDim: dim, using: &rng)
                resolution /= 2
            }
            var blocks: [SwinBlock] = []
            for m in 0..<depth {
                let rate = totalBlocks > 1 ? config.dropPathRate * Float(blockIndex) / Float(totalBlocks - 1) : 0
                blocks.append(SwinBlock(dim: dim, resolution: resolution, numHeads: config.numHeads[i], windowSize: config.windowSize,
                                        shifted: m % 2 == 1, mlpRatio: config.mlpRatio, qkvBias: config.qkvBias,
                                        dropPathRate: rate, using: &rng))
                blockIndex += 1
            }
            stages.append(SwinStage(downsample: downsample, blocks: blocks))
        }
        layers = ModuleList(stages)
        norm = LayerNorm(config.numFeatures)
        head = SwinHead(features: config.numFeatures, numClasses: config.numClasses, using: &rng)
    }

    public var numClasses: Int { head.fc?.outFeatures ?? 0 }
    public var featureDim: Int { config.numFeatures }

    public var ssfSites: [ScaleShift?] { [ssfNorm] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("patch_embed", patchEmbed), ("layers", layers), ("norm", norm), ("head", head)] }

    /// The normalised last-stage map `[B, H/32, W/32, C]` (NHWC; after the final SSF site when enabled), timm's `forward_features`.
    public func forwardFeatures(_ images: Tensor) -> Tensor {
        precondition(images.rank == 4 && images.shape[2] == config.imgSize && images.shape[3] == config.imgSize,
                     "Swin: input \(images.shape) must be [B, \(config.inChannels), \(config.imgSize), \(config.imgSize)]")
        var x = patchEmbed(images)
        for stage in layers.modules { x = stage(x) }
        return norm(x, then: ssfNorm)
    }

    public func callAsFunction(_ images: Tensor) -> Tensor { applyHead(headInput(images)) }
    public func headInput(_ images: Tensor) -> Tensor { forwardFeatures(images).mean(axes: [1, 2]) }
    public func applyHead(_ input: Tensor) -> Tensor { head(input) }

    public func resetHead(numClasses: Int, using rng: inout RandomGenerator) {
        head.reset(features: featureDim, numClasses: numClasses, using: &rng)
    }

    public func enableSSF(using rng: inout RandomGenerator) {
        patchEmbed.enableSSF(using: &rng)
        for stage in layers.modules {
            for block in stage.blocks.modules { block.enableSSF(using: &rng) }
        }
        ssfNorm = ScaleShift(channels: featureDim, after: "norm", using: &rng)
    }
}

private func swinSpec(_ name: String, _ config: @escaping @Sendable (Int) -> SwinTransformerConfig) -> ModelSpec {
    ModelSpec(name: name, family: "swin", defaultNumClasses: 1000,
              preprocess: PreprocessConfig(inputSize: 224, mean: PreprocessConfig.imagenetMean, std: PreprocessConfig.imagenetStd,
                                           cropFraction: 0.9, interpolation: .bicubic),
              layouts: [SwinLegacyLayout()],
              build: { numClasses, rng in SwinTransformer(config: config(numClasses), using: &rng) })
}

/// The registered Swin models; preprocessing follows timm 1.0's default pretrained_cfg of each name
/// (ImageNet mean/std, bicubic, crop 0.9).
let swinSpecs: [ModelSpec] = [
    swinSpec("swin_tiny_patch4_window7_224") { .tiny(numClasses: $0) },
    swinSpec("swin_small_patch4_window7_224") { .small(numClasses: $0) },
    swinSpec("swin_base_patch4_window7_224") { .base(numClasses: $0) },
]

extension SwinTransformer: AdapterTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        for (i, stage) in layers.modules.enumerated() { stage.blocks.enableAdapters(dim: config.dim(stage: i), bottleneck: bottleneck, using: &rng) }
    }

    public func reasonLacking(_ slot: TuningSlot) -> String {
        slot == .prompts ? "it attends within (shifted) windows and has no global token sequence for prompts"
                         : "it has no MLP blocks"
    }
}

extension SwinTransformer {
    /// The position embedding (ViT) or the attention windows and masks (Swin) are built for one size.
    public func inputSizeProblem(_ size: Int) -> String? {
        size == config.imgSize ? nil : "this model is built for \(config.imgSize)×\(config.imgSize) inputs, not \(size)×\(size)"
    }
}
