// Vision Transformer (Dosovitskiy et al. 2021) with timm 1.0's parameter names and numerics, its SSF
// sites, and the registered `vit_*` models.
//
// Layout: `patch_embed.proj` (conv, kernel = stride = patch) → tokens; `cls_token` is prepended and
// `pos_embed` added; `blocks.N` (pre-norm, see VisionTransformerBlocks.swift) → final `norm` →
// class-token pooling → `head`. LayerNorm eps 1e-6, exact-erf GELU.
//
// SSF sites beyond the blocks' (SSF-SPEC, the reference `models/vision_transformer.py`): the patch
// embedding's `ssf_*_1` and the root's `ssf_*_1` after the final `norm`.
import SSFEngine
import SSFNN

/// The hyperparameters of a ViT (timm's `VisionTransformer` keyword arguments of the same meaning).
public struct VisionTransformerConfig: Sendable, Equatable {
    /// Input height and width (square images); sets the position-embedding grid.
    public var imgSize: Int
    public var patchSize: Int
    public var inChannels: Int
    /// Classes of the head; 0 means no head (the model returns the pooled class token).
    public var numClasses: Int
    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int
    public var mlpRatio: Double
    public var qkvBias: Bool
    /// Initial value of the layer-scale vectors `ls1.gamma`/`ls2.gamma`; nil means no layer scale.
    public var layerScaleInit: Float?
    /// Stochastic-depth rate of the last block (linearly increasing from 0 over the blocks).
    public var dropPathRate: Float

    public init(imgSize: Int = 224, patchSize: Int = 16, inChannels: Int = 3, numClasses: Int = 1000, embedDim: Int = 768,
                depth: Int = 12, numHeads: Int = 12, mlpRatio: Double = 4, qkvBias: Bool = true,
                layerScaleInit: Float? = nil, dropPathRate: Float = 0) {
        precondition(imgSize % patchSize == 0, "ViT: image size \(imgSize) is not a multiple of the patch size \(patchSize)")
        self.imgSize = imgSize; self.patchSize = patchSize; self.inChannels = inChannels; self.numClasses = numClasses
        self.embedDim = embedDim; self.depth = depth; self.numHeads = numHeads; self.mlpRatio = mlpRatio
        self.qkvBias = qkvBias; self.layerScaleInit = layerScaleInit; self.dropPathRate = dropPathRate
    }

    /// Patches per side.
    public var gridSize: Int { imgSize / patchSize }
    /// Width of the MLP's hidden layer (`int(dim * mlp_ratio)` as timm computes it).
    public var mlpHiddenDim: Int { Int(Double(embedDim) * mlpRatio) }

    /// ViT-Ti: 192 wide, 12 blocks, 3 heads.
    public static func tiny(patchSize: Int = 16, imgSize: Int = 224, numClasses: Int = 1000) -> Self {
        .init(imgSize: imgSize, patchSize: patchSize, numClasses: numClasses, embedDim: 192, depth: 12, numHeads: 3)
    }
    /// ViT-S: 384 wide, 12 blocks, 6 heads.
    public static func small(patchSize: Int = 16, imgSize: Int = 224, numClasses: Int = 1000) -> Self {
        .init(imgSize: imgSize, patchSize: patchSize, numClasses: numClasses, embedDim: 384, depth: 12, numHeads: 6)
    }
    /// ViT-B: 768 wide, 12 blocks, 12 heads.
    public static func base(patchSize: Int = 16, imgSize: Int = 224, numClasses: Int = 1000) -> Self {
        .init(imgSize: imgSize, patchSize: patchSize, numClasses: numClasses, embedDim: 768, depth: 12, numHeads: 12)
    }
    /// ViT-L: 1024 wide, 24 blocks, 16 heads.
    public static func large(patchSize: Int = 16, imgSize: Int = 224, numClasses: Int = 1000) -> Self {
        .init(imgSize: imgSize, patchSize: patchSize, numClasses: numClasses, embedDim: 1024, depth: 24, numHeads: 16)
    }
}

/// A Vision Transformer image classifier whose state dictionary has timm's keys.
public final class VisionTransformer: ImageClassifier, SSFSiteHost {
    public let config: VisionTransformerConfig
    /// `[1, 1, D]`, prepended to the patch tokens.
    public let clsToken: Parameter
    /// `[1, 1 + grid², D]`, added after the class token is prepended.
    public let posEmbed: Parameter
    public let patchEmbed: ViTPatchEmbed
    public let blocks: ModuleList<ViTBlock>
    public let norm: LayerNorm
    public private(set) var head: Linear?
    var ssfNorm: ScaleShift?
    /// VPT prompt tokens (`prompt.embeddings`); nil in the plain architecture.
    var prompts: VisualPrompts?

    /// A randomly initialised model (timm's default scheme: truncated-normal linears and position
    /// embedding, N(0, 1e-6²) class token, PyTorch's default patch-projection init).
    public init(config: VisionTransformerConfig, using rng: inout RandomGenerator) {
        self.config = config
        let dim = config.embedDim
        patchEmbed = ViTPatchEmbed(inChannels: config.inChannels, embedDim: dim, patchSize: config.patchSize, using: &rng)
        clsToken = Parameter(Tensor.randomNormal([1, 1, dim], std: 1e-6, using: &rng))
        posEmbed = Parameter(Tensor.truncatedNormal([1, config.gridSize * config.gridSize + 1, dim], std: 0.02, using: &rng))
        var blocks: [ViTBlock] = []
        for i in 0..<config.depth {
            let rate = config.depth > 1 ? config.dropPathRate * Float(i) / Float(config.depth - 1) : 0
            blocks.append(ViTBlock(config: config, dropPathRate: rate, using: &rng))
        }
        self.blocks = ModuleList(blocks)
        norm = LayerNorm(dim, eps: 1e-6)
        head = config.numClasses > 0 ? transformerLinear(dim, config.numClasses, using: &rng) : nil
    }

    public var numClasses: Int { head?.outFeatures ?? 0 }
    public var featureDim: Int { config.embedDim }

    public var localParameters: [(String, Parameter)] {
        [("cls_token", clsToken), ("pos_embed", posEmbed)] + ssfParameters
    }

    public var ssfSites: [ScaleShift?] { [ssfNorm] }

    public var children: [(String, Module)] {
        (prompts.map { [("prompt", $0 as Module)] } ?? []) + [("patch_embed", patchEmbed), ("blocks", blocks), ("norm", norm)]
            + (head.map { [("head", $0 as Module)] } ?? [])
    }

    /// The normalised token sequence `[B, 1 + grid², D]` (after the final SSF site when enabled), timm's `forward_features`;
    /// with VPT prompts `[B, 1 + N + grid², D]`, the prompts following the class token.
    public func forwardFeatures(_ images: Tensor) -> Tensor {
        precondition(images.rank == 4 && images.shape[2] == config.imgSize && images.shape[3] == config.imgSize,
                     "ViT: input \(images.shape) must be [B, \(config.inChannels), \(config.imgSize), \(config.imgSize)]")
        let patches = patchEmbed(images)
        let batch = patches.shape[0]
        let cls = clsToken.tensor.expanded(to: [batch, 1, config.embedDim])
        var x = concat([cls, patches], axis: 1) + posEmbed.tensor
        if let prompts { x = prompts.insert(x) }
        for (i, block) in blocks.modules.enumerated() {
            if i > 0, let prompts, prompts.isDeep { x = prompts.replace(x, layer: i) }
            x = block(x)
            FeatureTaps.tap(x)
        }
        return norm(x, then: ssfNorm)
    }

    /// The class token of the final features, `[B, D]`.
    public func pooledFeatures(_ images: Tensor) -> Tensor {
        let x = forwardFeatures(images)
        return x.slice(axis: 1, range: 0..<1).reshaped([x.shape[0], config.embedDim])
    }

    public func callAsFunction(_ images: Tensor) -> Tensor { applyHead(headInput(images)) }
    public func headInput(_ images: Tensor) -> Tensor { pooledFeatures(images) }
    public func applyHead(_ input: Tensor) -> Tensor { head.map { $0(input) } ?? input }

    public func resetHead(numClasses: Int, using rng: inout RandomGenerator) {
        head = numClasses > 0 ? transformerLinear(config.embedDim, numClasses, using: &rng) : nil
    }

    public func enableSSF(using rng: inout RandomGenerator) {
        patchEmbed.enableSSF(using: &rng)
        for block in blocks.modules { block.enableSSF(using: &rng) }
        ssfNorm = ScaleShift(channels: config.embedDim, after: "norm", using: &rng)
    }
}

/// Brings a ViT checkpoint into the timm names and shapes of a model built with `config`: Google's
/// `.npz` names are mapped (`GoogleViTLayout`), and a `pos_embed` for another grid is resampled
/// bicubically to this model's grid (`ViTPositionGridLayout`). Other checkpoints pass through.
public func vitAdaptCheckpoint(_ state: [String: Tensor], config: VisionTransformerConfig) throws -> [String: Tensor] {
    var out = state
    for layout in vitLayouts(config) where layout.detects(out) { out = try layout.convert(out).tensors }
    return out
}

func vitLayouts(_ config: VisionTransformerConfig) -> [CheckpointLayout] {
    [GoogleViTLayout(numHeads: config.numHeads), ViTPositionGridLayout(gridSize: config.gridSize)]
}

private func vitSpec(_ name: String, numClasses: Int = 1000, cropFraction: Float = 0.9, _ config: VisionTransformerConfig) -> ModelSpec {
    ModelSpec(name: name, family: "vit", defaultNumClasses: numClasses,
              preprocess: PreprocessConfig(inputSize: config.imgSize, mean: PreprocessConfig.inceptionMean,
                                           std: PreprocessConfig.inceptionStd, cropFraction: cropFraction, interpolation: .bicubic),
              layouts: vitLayouts(config),
              build: { classes, rng in
                  var c = config
                  c.numClasses = classes
                  return VisionTransformer(config: c, using: &rng)
              })
}

/// The registered ViT models. Preprocessing follows each name's default timm 1.0 pretrained_cfg
/// (mean = std = 0.5, bicubic, crop 0.9; the 384 model crops 1.0); the tagged in21k names carry
/// their own class counts (21,843, and 0 for `orig_in21k`, which has no head in timm 1.0).
let vitSpecs: [ModelSpec] = [
    vitSpec("vit_tiny_patch16_224", .tiny()),
    vitSpec("vit_small_patch16_224", .small()),
    vitSpec("vit_base_patch16_224", .base()),
    vitSpec("vit_large_patch16_224", .large()),
    vitSpec("vit_base_patch32_224", .base(patchSize: 32)),
    vitSpec("vit_base_patch16_384", cropFraction: 1.0, .base(imgSize: 384)),
    vitSpec("vit_base_patch16_224.augreg_in21k", numClasses: 21843, .base(numClasses: 21843)),
    vitSpec("vit_base_patch16_224.orig_in21k", numClasses: 0, .base(numClasses: 0)),
    vitSpec("demo_vit_patch4_32", numClasses: 8, cropFraction: 1.0, .demo),
]

extension VisionTransformerConfig {
    /// The small ViT of `ssf demo` (not a timm model): 32×32 inputs in 4×4 patches, 96 wide,
    /// 4 blocks of 3 heads, pretrained by the demo on its procedural source task.
    public static let demo = VisionTransformerConfig(imgSize: 32, patchSize: 4, numClasses: 8, embedDim: 96, depth: 4, numHeads: 3)
}

extension VisionTransformer: AdapterTunable, PromptTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        blocks.enableAdapters(dim: config.embedDim, bottleneck: bottleneck, using: &rng)
    }

    public func enablePrompts(count: Int, deep: Bool, dropout: Float, using rng: inout RandomGenerator) {
        prompts = VisualPrompts(count: count, layers: deep ? config.depth : 1, dim: config.embedDim,
                                patchSize: config.patchSize, dropout: dropout, using: &rng)
    }
}

extension VisionTransformer {
    /// The position embedding (ViT) or the attention windows and masks (Swin) are built for one size.
    public func inputSizeProblem(_ size: Int) -> String? {
        size == config.imgSize ? nil : "this model is built for \(config.imgSize)×\(config.imgSize) inputs, not \(size)×\(size)"
    }
}
