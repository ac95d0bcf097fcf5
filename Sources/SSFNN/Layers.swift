// Basic layers with PyTorch's parameter names: Linear, Conv2d, LayerNorm, LayerNorm2d, GroupNorm, BatchNorm2d (training and eval form).
import SSFEngine

/// Uniform init in ±1/√fanIn, PyTorch's default for Linear and Conv weights and biases.
func defaultUniform(_ shape: [Int], fanIn: Int, using rng: inout RandomGenerator) -> Tensor {
    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
    return Tensor.randomUniform(shape, low: -bound, high: bound, using: &rng)
}

/// `y = x·Wᵀ + b` over the last axis (`weight` is `[out, in]`).
public final class Linear: Module {
    public let weight: Parameter
    public let bias: Parameter?
    /// An optional LoRA branch added to the output (`lora_A`/`lora_B`); nil for a plain layer.
    public var lora: LowRankUpdate?

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = Parameter(weight)
        self.bias = bias.map { Parameter($0) }
    }

    /// A layer with PyTorch's default initialisation.
    public convenience init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, using rng: inout RandomGenerator) {
        let w = defaultUniform([outFeatures, inFeatures], fanIn: inFeatures, using: &rng)
        let b = bias ? defaultUniform([outFeatures], fanIn: inFeatures, using: &rng) : nil
        self.init(weight: w, bias: b)
    }

    public var inFeatures: Int { weight.value.shape[1] }
    public var outFeatures: Int { weight.value.shape[0] }
    public var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) + (lora?.namedParameters ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = linear(x, weight: weight.tensor, bias: bias?.tensor)
        return lora.map { y + $0(x) } ?? y
    }
}

/// 2-D convolution over NCHW input (`weight` is `[out, in/groups, kh, kw]`).
public final class Conv2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int

    public init(weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        self.weight = Parameter(weight)
        self.bias = bias.map { Parameter($0) }
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
    }

    /// A square-kernel layer with PyTorch's default initialisation.
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1, bias: Bool = true, using rng: inout RandomGenerator) {
        let fanIn = inChannels / groups * kernel * kernel
        let w = defaultUniform([outChannels, inChannels / groups, kernel, kernel], fanIn: fanIn, using: &rng)
        let b = bias ? defaultUniform([outChannels], fanIn: fanIn, using: &rng) : nil
        self.init(weight: w, bias: b, stride: (stride, stride), padding: (padding, padding),
                  dilation: (dilation, dilation), groups: groups)
    }

    public var outChannels: Int { weight.value.shape[0] }
    public var localParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight.tensor, bias: bias?.tensor, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// Layer normalisation over the last axis with affine weight and bias.
public final class LayerNorm: Module {
    public let weight: Parameter, bias: Parameter
    public let eps: Float

    public init(_ channels: Int, eps: Float = 1e-5) {
        weight = Parameter(.ones([channels])); bias = Parameter(.zeros([channels])); self.eps = eps
    }

    public var localParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight.tensor, bias: bias.tensor, eps: eps) }
}

/// Layer normalisation of NCHW input over channels at each pixel (timm's `LayerNorm2d`).
public final class LayerNorm2d: Module {
    public let weight: Parameter, bias: Parameter
    public let eps: Float

    public init(_ channels: Int, eps: Float = 1e-6) {
        weight = Parameter(.ones([channels])); bias = Parameter(.zeros([channels])); self.eps = eps
    }

    public var localParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm2d(x, weight: weight.tensor, bias: bias.tensor, eps: eps) }
}

/// Group normalisation of `[N, C, …]` input.
public final class GroupNorm: Module {
    public let weight: Parameter, bias: Parameter
    public let groups: Int, eps: Float

    public init(groups: Int, channels: Int, eps: Float = 1e-5) {
        weight = Parameter(.ones([channels])); bias = Parameter(.zeros([channels]))
        self.groups = groups; self.eps = eps
    }

    public var localParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { groupNorm(x, groups: groups, weight: weight.tensor, bias: bias.tensor, eps: eps) }
}

/// How a batch norm behaves while its model trains.
public enum BatchNormMode: String, Codable, Sendable, CaseIterable {
    /// Batch statistics in the forward, running statistics updated (PyTorch's training mode).
    case train
    /// The running statistics stay fixed and normalise every batch (evaluation form while training).
    case frozen
}

/// Batch normalisation of NCHW input with PyTorch's semantics: in training mode (when the model
/// trains and `mode` is `.train`) each batch is normalised with its own statistics and the running
/// mean/variance move towards them (`r ← (1 − momentum)·r + momentum·batch`, the unbiased batch
/// variance); otherwise the running statistics are used.
public final class BatchNorm2d: Module, TrainingModeAware {
    public let weight: Parameter, bias: Parameter
    public let runningMean: Parameter, runningVar: Parameter, numBatchesTracked: Parameter
    public let eps: Float
    public let momentum: Float
    /// What training does to the statistics.
    public var mode: BatchNormMode = .train
    /// Set by `Module.setTraining`.
    public var training = false

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        weight = Parameter(.ones([channels])); bias = Parameter(.zeros([channels]))
        runningMean = Parameter(.zeros([channels]), isBuffer: true)
        runningVar = Parameter(.ones([channels]), isBuffer: true)
        numBatchesTracked = Parameter(.zeros([]), isBuffer: true)
        self.eps = eps; self.momentum = momentum
    }

    /// Whether a forward pass now uses (and updates) batch statistics.
    public var usesBatchStatistics: Bool { training && mode == .train }

    public var localParameters: [(String, Parameter)] {
        [("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar),
         ("num_batches_tracked", numBatchesTracked)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard usesBatchStatistics else {
            return batchNormInference(x, mean: runningMean.value, variance: runningVar.value, weight: weight.tensor, bias: bias.tensor, eps: eps)
        }
        let (y, stats) = batchNormTraining(x, weight: weight.tensor, bias: bias.tensor, eps: eps)
        let m = momentum
        runningMean.value = runningMean.value * (1 - m) + stats.mean * m
        runningVar.value = runningVar.value * (1 - m) + stats.unbiasedVariance * m
        numBatchesTracked.value = numBatchesTracked.value + 1
        return y
    }
}

extension Module {
    /// Every batch norm of the tree.
    public var batchNorms: [(String, BatchNorm2d)] {
        namedModules().compactMap { path, m in (m as? BatchNorm2d).map { (path, $0) } }
    }

    /// Sets how every batch norm of the tree behaves while training.
    public func setBatchNormMode(_ mode: BatchNormMode) {
        for (_, bn) in batchNorms { bn.mode = mode }
    }
}

/// Stochastic depth: drops whole samples of a residual branch while training.
public final class DropPath: Module, TrainingModeAware {
    public var probability: Float
    public var training = false
    /// The generator of the drop masks (its state is saved in resumable checkpoints).
    public var rng: RandomGenerator

    public init(_ probability: Float, seed: UInt64) {
        self.probability = probability
        rng = RandomGenerator(seed: seed)
    }

    /// Consumes `x`, so that at evaluation the same unshared buffer goes on (a residual sum can then reuse it).
    public func callAsFunction(_ x: consuming Tensor) -> Tensor {
        guard training && probability > 0 else { return x }
        return dropPath(x, probability: probability, using: &rng)
    }
}
