// How a replaced classification head starts: one rule for every family, so that fine-tuning
// begins from near-uniform predictions (first-batch loss ≈ ln(classes)).
import SSFEngine
import SSFNN

/// The initialisation of a new classification head (the linear layer(s) of the head; a head norm
/// keeps its pretrained values).
public enum HeadInit: String, Codable, Sendable, CaseIterable {
    /// Weight and bias 0: every class starts at the same logit (the SSF reference's ViT heads).
    case zeros
    /// Weight ~ N(0, 0.02²) truncated at ±2, bias 0 (timm's transformer init).
    case truncNormal = "trunc-normal"
    /// PyTorch's `nn.Linear` default: weight and bias ~ U(±1/√in_features).
    case torchDefault = "torch-default"

    /// The rule fine-tuning uses unless told otherwise (chosen by measurement; see docs/HEAD-INIT.md).
    public static let fineTuningDefault = HeadInit.zeros

    /// Re-initialises every 2-D head weight of `model` (and its bias) by this rule.
    public func apply(to model: ImageClassifier, using rng: inout RandomGenerator) {
        let state = Dictionary(model.namedParameters(), uniquingKeysWith: { a, _ in a })
        for (name, weight) in model.namedParameters() where model.isHeadParameter(name) && name.hasSuffix(".weight") && weight.value.rank == 2 {
            let shape = weight.value.shape
            let bias = state[String(name.dropLast("weight".count)) + "bias"]
            switch self {
            case .zeros:
                weight.value = .zeros(shape)
                bias?.value = .zeros([shape[0]])
            case .truncNormal:
                weight.value = .truncatedNormal(shape, std: 0.02, using: &rng)
                bias?.value = .zeros([shape[0]])
            case .torchDefault:
                let bound = 1 / Float(max(shape[1], 1)).squareRoot()
                weight.value = .randomUniform(shape, low: -bound, high: bound, using: &rng)
                bias?.value = .randomUniform([shape[0]], low: -bound, high: bound, using: &rng)
            }
        }
    }
}
