// Visual prompt tuning (Jia et al. 2022): learnable tokens inserted after a ViT's class token.
import Foundation
import SSFEngine
import SSFNN

/// The prompt tokens of VPT-Shallow (one set, prepended after the class token at the input) or
/// VPT-Deep (one set per block, replacing the previous block's prompt outputs at every block's
/// input). Prompts carry no position embedding and are never pooled: the class token stays token 0.
///
/// State-dictionary name: `prompt.embeddings`, `[L, N, D]` with L = 1 (shallow) or the depth (deep).
public final class VisualPrompts: Module, TrainingModeAware {
    public let embeddings: Parameter
    /// Dropout applied to the prompts (each sample independently) while training.
    public let dropoutProbability: Float
    public var training = false
    private var rng: RandomGenerator

    /// Uniform(−v, v) with v = √(6 / (3·p² + D)), the VPT reference's Xavier-uniform rule for a
    /// patch size p and width D (fan-in 3·p² of the patch projection, fan-out D).
    public init(count: Int, layers: Int, dim: Int, patchSize: Int, dropout: Float, using rng: inout RandomGenerator) {
        precondition(count > 0 && layers > 0, "VPT needs at least one prompt and one layer")
        let v = (6 / Float(3 * patchSize * patchSize + dim)).squareRoot()
        embeddings = Parameter(Tensor.randomUniform([layers, count, dim], low: -v, high: v, using: &rng))
        dropoutProbability = dropout
        self.rng = RandomGenerator(seed: rng.next())
    }

    /// Number of prompt tokens N.
    public var count: Int { embeddings.value.shape[1] }
    /// Whether every block gets its own prompts (VPT-Deep).
    public var isDeep: Bool { embeddings.value.shape[0] > 1 }

    public var localParameters: [(String, Parameter)] { [("embeddings", embeddings)] }

    /// The prompts of `layer` for a batch, `[B, N, D]`.
    private func prompts(layer: Int, batch: Int) -> Tensor {
        let shape = embeddings.value.shape
        let p = embeddings.tensor.slice(axis: 0, range: layer..<(layer + 1)).expanded(to: [batch, shape[1], shape[2]])
        return training && dropoutProbability > 0 ? dropout(p, probability: dropoutProbability, using: &rng) : p
    }

    /// `[B, 1 + T, D]` → `[B, 1 + N + T, D]`: the input prompts after the class token.
    public func insert(_ x: Tensor) -> Tensor {
        concat([x.slice(axis: 1, range: 0..<1), prompts(layer: 0, batch: x.shape[0]), x.slice(axis: 1, range: 1..<x.shape[1])], axis: 1)
    }

    /// `[B, 1 + N + T, D]` → the same with the N prompt outputs replaced by block `layer`'s prompts.
    public func replace(_ x: Tensor, layer: Int) -> Tensor {
        concat([x.slice(axis: 1, range: 0..<1), prompts(layer: layer, batch: x.shape[0]),
                x.slice(axis: 1, range: (1 + count)..<x.shape[1])], axis: 1)
    }
}
