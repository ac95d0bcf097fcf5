// LoRA (Hu et al. 2022): a trainable low-rank update `(α/r)·B·A` added to a frozen linear layer.
import SSFEngine

/// The low-rank branch of a LoRA linear layer: `x ↦ (α/r)·(x·Aᵀ)·Bᵀ`.
///
/// In a state dictionary the two matrices belong to the adapted `Linear`, named `lora_A`
/// (`[r, in]`) and `lora_B` (`[out, r]`), so the merged weight is `W + (α/r)·B·A`.
public final class LowRankUpdate {
    /// `[rank, in]`, PyTorch's default Linear initialisation (Kaiming-uniform, bound 1/√in).
    public let a: Parameter
    /// `[out, rank]`, zero at initialisation so the adapted layer starts as the frozen one.
    public let b: Parameter
    /// `α / r`.
    public let scaling: Float

    public init(inFeatures: Int, outFeatures: Int, rank: Int, alpha: Float, using rng: inout RandomGenerator) {
        precondition(rank > 0, "LoRA rank must be positive")
        let bound = 1 / Float(inFeatures).squareRoot()
        a = Parameter(Tensor.randomUniform([rank, inFeatures], low: -bound, high: bound, using: &rng))
        b = Parameter(.zeros([outFeatures, rank]))
        scaling = alpha / Float(rank)
    }

    public var rank: Int { a.value.shape[0] }

    /// The state-dictionary entries, local to the adapted layer.
    public var namedParameters: [(String, Parameter)] { [("lora_A", a), ("lora_B", b)] }

    /// `(α/r)·(x·Aᵀ)·Bᵀ` over the last axis (the scaling is applied on the narrow rank-r tensor).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        linear(linear(x, weight: a.tensor) * scaling, weight: b.tensor)
    }
}
