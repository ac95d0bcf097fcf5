// Tuning methods: which parameters exist and which train.
import SSFEngine
import SSFModels
import SSFNN

/// A way of adapting a pretrained model: it may add parameters (SSF sites) and decides which
/// parameters train.
public enum TuningMethod: String, CaseIterable, Sendable {
    /// Every parameter trains (full fine-tuning).
    case full
    /// Only the classification head trains (linear probing).
    case linear
    /// Biases (norm biases included) and the head train.
    case bias
    /// SSF scale/shift vectors and the head train (the reference's rule: a name containing
    /// `head.`, `ssf_scale` or `ssf_shift_`).
    case ssf

    /// Whether the parameter `name` trains under this method.
    public func trains(_ name: String) -> Bool {
        let head = TuningMethod.isHead(name)
        switch self {
        case .full: return true
        case .linear: return head
        case .bias: return head || name.hasSuffix(".bias") || name == "bias"
        case .ssf: return head || TuningMethod.isSSF(name)
        }
    }

    /// Adds the method's parameters to `model` (SSF sites) and sets which parameters train.
    public func apply(to model: ImageClassifier, using rng: inout RandomGenerator) {
        if self == .ssf { model.enableSSF(using: &rng) }
        model.setTrainable(where: trains)
    }

    /// Names of SSF vectors.
    public static func isSSF(_ name: String) -> Bool { name.contains("ssf_scale_") || name.contains("ssf_shift_") }

    /// Names of classification-head parameters (timm's `head`, `head.fc`, `head.norm`; EfficientNet's `classifier`).
    public static func isHead(_ name: String) -> Bool {
        name.hasPrefix("head.") || name.contains(".head.") || name.hasPrefix("classifier.")
    }
}

/// Trainable parameters of a model, split by kind.
public struct TrainableSummary: Sendable {
    public var ssf = 0, head = 0, other = 0
    /// Parameters of the model without its head and without SSF vectors.
    public var backbone = 0
    public var total: Int { ssf + head + other }
    /// Trainable parameters as a percentage of the backbone.
    public var percentOfBackbone: Double { backbone == 0 ? 0 : 100 * Double(total) / Double(backbone) }

    public init(_ model: Module) {
        for (name, p) in model.namedParameters() where !p.isBuffer {
            let isSSF = TuningMethod.isSSF(name), isHead = TuningMethod.isHead(name)
            if !isSSF && !isHead { backbone += p.count }
            guard p.trainable else { continue }
            if isSSF { ssf += p.count } else if isHead { head += p.count } else { other += p.count }
        }
    }
}
