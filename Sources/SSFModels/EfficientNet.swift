// EfficientNet-Lite (Tan & Le 2019, the Lite variants: ReLU6, no squeeze-excitation, fixed stem
// and head) with timm 1.0's parameter names and numerics, and its SSF sites.
//
// Layout: `conv_stem` (3×3/2) + `bn1` → `blocks.S.B` → `conv_head` (1×1) + `bn2` → global average
// pool → `classifier`. A depthwise-separable block (stage 0) is `conv_dw` + `bn1` (ReLU6) →
// `conv_pw` + `bn2`; an inverted-residual block is `conv_pw` + `bn1` (ReLU6) → `conv_dw` + `bn2`
// (ReLU6) → `conv_pwl` + `bn3`; either adds its input when stride is 1 and widths agree.
// Convolutions have no bias; batch norm runs in evaluation form (running statistics), fused with
// its SSF site and ReLU6 into one per-channel pass (`batchNormScaleShiftClamp`).
//
// Padding: `tf_efficientnet_lite0` (weights ported from TensorFlow) pads like TensorFlow's 'SAME'
// — the total padding a strided convolution needs is split with the extra pixel at the bottom and
// right, computed from each input's size (timm's `Conv2dSame`); `efficientnet_lite0` pads
// symmetrically by ((stride − 1) + (k − 1)) / 2 like PyTorch.
//
// SSF sites (SSF-SPEC: "after every conv/BN pair"): one per batch norm, after the norm and before
// its activation, on the channels-first axis. The module that owns the norm hosts the pair and
// numbers it by the norm: a block's `ssf_scale_K`/`ssf_shift_K` follows its `bnK`; the root's
// `ssf_*_1` follows the stem's `bn1` and `ssf_*_2` the head's `bn2` (the pooled features' input
// norm). Each site folds into its batch norm's affine weight and bias.
import SSFEngine
import SSFNN

/// The hyperparameters of an EfficientNet-Lite (timm's `EfficientNet` with the Lite arch def).
public struct EfficientNetConfig: Sendable, Equatable {
    /// The two block types of EfficientNet-Lite (timm arch-def codes `ds` and `ir`).
    public enum BlockKind: String, Sendable {
        case depthwiseSeparable = "ds"
        case invertedResidual = "ir"
    }

    /// One stage of identical blocks (timm's `<kind>_r<repeats>_k<kernel>_s<stride>_e<expansion>_c<channels>`).
    public struct Stage: Sendable, Equatable {
        public var kind: BlockKind
        public var repeats: Int
        public var kernelSize: Int
        /// Stride of the stage's first block (the others have stride 1).
        public var stride: Int
        /// Width of an inverted residual's hidden layer relative to its input.
        public var expansion: Int
        /// Output channels (rounded to a multiple of 8 as timm rounds them).
        public var channels: Int

        public init(_ kind: BlockKind, repeats: Int, kernelSize: Int, stride: Int, expansion: Int, channels: Int) {
            self.kind = kind; self.repeats = repeats; self.kernelSize = kernelSize
            self.stride = stride; self.expansion = expansion; self.channels = channels
        }
    }

    /// How convolutions pad their input.
    public enum Padding: String, Sendable {
        /// TensorFlow 'SAME': output ⌈size / stride⌉, extra padding at the bottom and right.
        case tensorFlowSame
        /// PyTorch-style symmetric padding ((stride − 1) + (k − 1)) / 2 on every side.
        case symmetric
    }

    public var stages: [Stage]
    public var stemChannels: Int
    /// Channels of the 1×1 head convolution, the width of the pooled features.
    public var numFeatures: Int
    public var numClasses: Int
    public var inChannels: Int
    public var padding: Padding
    public var batchNormEps: Float
    /// Stochastic-depth rate; block i of n drops with rate · i / n as in timm.
    public var dropPathRate: Float

    public init(stages: [Stage], stemChannels: Int = 32, numFeatures: Int = 1280, numClasses: Int = 1000, inChannels: Int = 3,
                padding: Padding, batchNormEps: Float, dropPathRate: Float = 0) {
        self.stages = stages; self.stemChannels = stemChannels; self.numFeatures = numFeatures
        self.numClasses = numClasses; self.inChannels = inChannels; self.padding = padding
        self.batchNormEps = batchNormEps; self.dropPathRate = dropPathRate
    }

    /// EfficientNet-Lite0's stages (timm's `_gen_efficientnet_lite` arch def at multipliers 1.0).
    public static let lite0Stages: [Stage] = [
        Stage(.depthwiseSeparable, repeats: 1, kernelSize: 3, stride: 1, expansion: 1, channels: 16),
        Stage(.invertedResidual, repeats: 2, kernelSize: 3, stride: 2, expansion: 6, channels: 24),
        Stage(.invertedResidual, repeats: 2, kernelSize: 5, stride: 2, expansion: 6, channels: 40),
        Stage(.invertedResidual, repeats: 3, kernelSize: 3, stride: 2, expansion: 6, channels: 80),
        Stage(.invertedResidual, repeats: 3, kernelSize: 5, stride: 1, expansion: 6, channels: 112),
        Stage(.invertedResidual, repeats: 4, kernelSize: 5, stride: 2, expansion: 6, channels: 192),
        Stage(.invertedResidual, repeats: 1, kernelSize: 3, stride: 1, expansion: 6, channels: 320),
    ]

    /// `tf_efficientnet_lite0`: TensorFlow 'SAME' padding, batch-norm eps 1e-3.
    public static func tfLite0(numClasses: Int = 1000) -> Self {
        .init(stages: lite0Stages, numClasses: numClasses, padding: .tensorFlowSame, batchNormEps: 1e-3)
    }

    /// `efficientnet_lite0`: symmetric padding, batch-norm eps 1e-5.
    public static func lite0(numClasses: Int = 1000) -> Self {
        .init(stages: lite0Stages, numClasses: numClasses, padding: .symmetric, batchNormEps: 1e-5)
    }
}

/// timm's `make_divisible`: the nearest multiple of `divisor` (at least `divisor`), rounded up
/// when rounding down would lose more than 10%.
private func makeDivisible(_ value: Int, divisor: Int = 8) -> Int {
    var rounded = max(divisor, (value + divisor / 2) / divisor * divisor)
    if Double(rounded) < 0.9 * Double(value) { rounded += divisor }
    return rounded
}

/// A bias-free convolution that pads as the configuration says (timm's `create_conv2d` with the
/// model's `pad_type`).
public final class EfficientNetConv: Module {
    public let weight: Parameter
    public let stride: Int, groups: Int
    public let padding: EfficientNetConfig.Padding

    init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, groups: Int = 1,
         padding: EfficientNetConfig.Padding, using rng: inout RandomGenerator) {
        // timm's efficientnet_init_weights: N(0, 2 / fan_out), fan_out = k² · out / groups.
        let fanOut = kernel * kernel * outChannels / groups
        weight = Parameter(Tensor.randomNormal([outChannels, inChannels / groups, kernel, kernel],
                                               std: (2 / Float(fanOut)).squareRoot(), using: &rng))
        self.stride = stride; self.groups = groups; self.padding = padding
    }

    public var outChannels: Int { weight.value.shape[0] }
    public var localParameters: [(String, Parameter)] { [("weight", weight)] }

    /// Leading and trailing padding along an axis of `size` pixels.
    func pads(size: Int, kernel: Int) -> (Int, Int) {
        switch padding {
        case .symmetric:
            let p = ((stride - 1) + (kernel - 1)) / 2
            return (p, p)
        case .tensorFlowSame:
            let out = (size + stride - 1) / stride
            let total = max((out - 1) * stride + kernel - size, 0)
            return (total / 2, total - total / 2)
        }
    }

    public func callAsFunction(_ x: Tensor, epilogue: ChannelEpilogue? = nil) -> Tensor {
        let (kh, kw) = (weight.value.shape[2], weight.value.shape[3])
        let (top, bottom) = pads(size: x.shape[2], kernel: kh)
        let (left, right) = pads(size: x.shape[3], kernel: kw)
        // TensorFlow's extra bottom/right pixel is the convolution's trailing padding (no padded copy).
        return conv2d(x, weight: weight.tensor, stride: (stride, stride), padding: (top, left),
                      trailingPadding: (bottom - top, right - left), groups: groups, epilogue: epilogue)
    }
}

/// A convolution, its batch norm, the norm's SSF site and an optional ReLU6.
struct ConvNormAct {
    let conv: EfficientNetConv
    let norm: BatchNorm2d
    let activate: Bool

    func callAsFunction(_ x: Tensor, ssf: ScaleShift?) -> Tensor {
        // With running statistics the norm, the site and ReLU6 are one per-channel map: applied as
        // the convolution writes its output at inference, one fused pass while training. A mixed
        // batch's per-sample site vectors and batch statistics take the ops one by one.
        let fusable = !norm.usesBatchStatistics && (ssf.map { SSFTaskVectors.current?.vectors(for: $0) == nil } ?? true)
        if fusable, Tape.active(for: x, conv.weight.tensor, norm.weight.tensor, norm.bias.tensor, ssf?.scale.tensor, ssf?.shift.tensor) == nil {
            return conv(x, epilogue: ChannelEpilogue(mean: norm.runningMean.value, variance: norm.runningVar.value,
                                                     weight: norm.weight.tensor, bias: norm.bias.tensor, eps: norm.eps,
                                                     scale: ssf?.scale.tensor, shift: ssf?.shift.tensor, clamp: activate ? 0...6 : nil))
        }
        let z = conv(x)
        if fusable {
            return batchNormScaleShiftClamp(z, mean: norm.runningMean.value, variance: norm.runningVar.value,
                                            weight: norm.weight.tensor, bias: norm.bias.tensor, eps: norm.eps,
                                            scale: ssf?.scale.tensor, shift: ssf?.shift.tensor, clamp: activate ? 0...6 : nil)
        }
        let y = applySSF(ssf, norm(z))
        return activate ? relu6(y) : y
    }
}

/// A depthwise-separable or inverted-residual block, named as timm names each.
public final class EfficientNetBlock: SSFSiteHost {
    public let kind: EfficientNetConfig.BlockKind
    let layers: [ConvNormAct]
    let hasSkip: Bool
    public let dropPath: DropPath
    var ssf: [ScaleShift?]

    init(kind: EfficientNetConfig.BlockKind, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, expansion: Int,
         config: EfficientNetConfig, dropPath: DropPath, using rng: inout RandomGenerator) {
        self.kind = kind
        let pad = config.padding, eps = config.batchNormEps
        func unit(_ i: Int, _ o: Int, k: Int, s: Int = 1, groups: Int = 1, act: Bool) -> ConvNormAct {
            ConvNormAct(conv: EfficientNetConv(i, o, kernel: k, stride: s, groups: groups, padding: pad, using: &rng),
                        norm: BatchNorm2d(o, eps: eps), activate: act)
        }
        switch kind {
        case .depthwiseSeparable:
            layers = [unit(inChannels, inChannels, k: kernel, s: stride, groups: inChannels, act: true),
                      unit(inChannels, outChannels, k: 1, act: false)]
        case .invertedResidual:
            let mid = makeDivisible(inChannels * expansion)
            layers = [unit(inChannels, mid, k: 1, act: true),
                      unit(mid, mid, k: kernel, s: stride, groups: mid, act: true),
                      unit(mid, outChannels, k: 1, act: false)]
        }
        hasSkip = stride == 1 && inChannels == outChannels
        self.dropPath = dropPath
        ssf = Array(repeating: nil, count: layers.count)
    }

    /// timm's names of the convolutions, in forward order.
    private var convNames: [String] {
        kind == .depthwiseSeparable ? ["conv_dw", "conv_pw"] : ["conv_pw", "conv_dw", "conv_pwl"]
    }

    public var ssfSites: [ScaleShift?] { ssf }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] {
        zip(convNames, layers).enumerated().flatMap { i, pair in
            [(pair.0, pair.1.conv as Module), ("bn\(i + 1)", pair.1.norm as Module)]
        } + [("drop_path", dropPath as Module)]
    }

    func enableSSF(using rng: inout RandomGenerator) {
        ssf = layers.indices.map { ScaleShift(channels: layers[$0].norm.weight.count, axis: .channelsFirst, after: "bn\($0 + 1)", using: &rng) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        for (layer, site) in zip(layers, ssf) { y = layer(y, ssf: site) }
        return hasSkip ? dropPath(y) + x : y
    }
}

/// An EfficientNet-Lite image classifier whose state dictionary has timm's keys.
public final class EfficientNet: ImageClassifier, SSFSiteHost {
    /// timm names EfficientNet's head `classifier`.
    public static let headName = "classifier"
    public let config: EfficientNetConfig
    let stem: ConvNormAct
    public let blocks: ModuleList<ModuleList<EfficientNetBlock>>
    let head: ConvNormAct
    public private(set) var classifier: Linear?
    var ssfStem: ScaleShift?, ssfHead: ScaleShift?

    /// A randomly initialised model (timm's initialisation scheme).
    public init(config: EfficientNetConfig, using rng: inout RandomGenerator) {
        self.config = config
        let pad = config.padding, eps = config.batchNormEps
        stem = ConvNormAct(conv: EfficientNetConv(config.inChannels, config.stemChannels, kernel: 3, stride: 2, padding: pad, using: &rng),
                           norm: BatchNorm2d(config.stemChannels, eps: eps), activate: true)
        let totalBlocks = config.stages.reduce(0) { $0 + $1.repeats }
        var channels = config.stemChannels, index = 0
        var stages: [ModuleList<EfficientNetBlock>] = []
        for stage in config.stages {
            var stageBlocks: [EfficientNetBlock] = []
            let out = makeDivisible(stage.channels)
            for r in 0..<stage.repeats {
                let dropPath = DropPath(config.dropPathRate * Float(index) / Float(totalBlocks), seed: rng.next())
                stageBlocks.append(EfficientNetBlock(kind: stage.kind, inChannels: channels, outChannels: out, kernel: stage.kernelSize,
                                                     stride: r == 0 ? stage.stride : 1, expansion: stage.expansion,
                                                     config: config, dropPath: dropPath, using: &rng))
                channels = out
                index += 1
            }
            stages.append(ModuleList(stageBlocks))
        }
        blocks = ModuleList(stages)
        head = ConvNormAct(conv: EfficientNetConv(channels, config.numFeatures, kernel: 1, padding: pad, using: &rng),
                           norm: BatchNorm2d(config.numFeatures, eps: eps), activate: true)
        classifier = EfficientNet.makeClassifier(config.numFeatures, config.numClasses, using: &rng)
    }

    /// timm's classifier initialisation: U(±1/√out), zero bias.
    private static func makeClassifier(_ features: Int, _ classes: Int, using rng: inout RandomGenerator) -> Linear? {
        guard classes > 0 else { return nil }
        let bound = 1 / Float(classes).squareRoot()
        return Linear(weight: .randomUniform([classes, features], low: -bound, high: bound, using: &rng), bias: .zeros([classes]))
    }

    public var numClasses: Int { classifier?.outFeatures ?? 0 }
    public var featureDim: Int { config.numFeatures }

    public var ssfSites: [ScaleShift?] { [ssfStem, ssfHead] }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] {
        [("conv_stem", stem.conv), ("bn1", stem.norm), ("blocks", blocks), ("conv_head", head.conv), ("bn2", head.norm)]
            + (classifier.map { [("classifier", $0 as Module)] } ?? [])
    }

    /// The head convolution's activated output `[N, numFeatures, H/32, W/32]`, timm's `forward_features`.
    public func forwardFeatures(_ images: Tensor) -> Tensor {
        var x = stem(images, ssf: ssfStem)
        for stage in blocks.modules {
            for block in stage.modules { x = block(x); FeatureTaps.tap(x) }
        }
        return head(x, ssf: ssfHead)
    }

    public func callAsFunction(_ images: Tensor) -> Tensor { applyHead(headInput(images)) }
    public func headInput(_ images: Tensor) -> Tensor { globalAvgPool2d(forwardFeatures(images)) }
    public func applyHead(_ input: Tensor) -> Tensor { classifier.map { $0(input) } ?? input }

    public func resetHead(numClasses: Int, using rng: inout RandomGenerator) {
        classifier = EfficientNet.makeClassifier(config.numFeatures, numClasses, using: &rng)
    }

    /// timm's EfficientNet rule: `rate · i / blocks` for block i.
    public func setDropPathRate(_ rate: Float) {
        let blocks = dropPathsByBlock
        for (i, group) in blocks.enumerated() { for d in group { d.probability = rate * Float(i) / Float(max(blocks.count, 1)) } }
    }

    public func enableSSF(using rng: inout RandomGenerator) {
        ssfStem = ScaleShift(channels: config.stemChannels, axis: .channelsFirst, after: "bn1", using: &rng)
        for stage in blocks.modules {
            for block in stage.modules { block.enableSSF(using: &rng) }
        }
        ssfHead = ScaleShift(channels: config.numFeatures, axis: .channelsFirst, after: "bn2", using: &rng)
    }
}

/// The registered EfficientNet-Lite models with timm's default pretrained_cfg preprocessing.
let efficientNetSpecs: [ModelSpec] = [
    ModelSpec(name: "tf_efficientnet_lite0", family: "efficientnet", defaultNumClasses: 1000,
              preprocess: PreprocessConfig(inputSize: 224, mean: PreprocessConfig.inceptionMean, std: PreprocessConfig.inceptionStd,
                                           cropFraction: 0.875, interpolation: .bicubic),
              layouts: [EfficientNetPyTorchLayout()],
              build: { numClasses, rng in EfficientNet(config: .tfLite0(numClasses: numClasses), using: &rng) }),
    ModelSpec(name: "efficientnet_lite0", family: "efficientnet", defaultNumClasses: 1000,
              preprocess: PreprocessConfig(inputSize: 224, mean: PreprocessConfig.imagenetMean, std: PreprocessConfig.imagenetStd,
                                           cropFraction: 0.875, interpolation: .bicubic),
              layouts: [EfficientNetPyTorchLayout()],
              build: { numClasses, rng in EfficientNet(config: .lite0(numClasses: numClasses), using: &rng) }),
]
