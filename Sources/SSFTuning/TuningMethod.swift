// Tuning methods: which parameters exist and which train — full, linear, bias, SSF, Adapter,
// VPT-Shallow/Deep, LoRA, and their combinations (`ssf+lora`).
import SSFEngine
import SSFModels
import SSFNN

/// The hyperparameters of the methods that add parameters.
public struct TuningOptions: Hashable, Sendable {
    /// Hidden width of each bottleneck adapter.
    public var adapterDim = 8
    /// Number of VPT prompt tokens (per block for VPT-Deep).
    public var prompts = 10
    /// Dropout on the prompt tokens while training.
    public var promptDropout: Float = 0
    /// Rank r of each LoRA update.
    public var loraRank = 8
    /// LoRA's α (nil: equal to the rank, a scaling of 1); the update is scaled by α/r.
    public var loraAlpha: Float?
    /// Layers that get a LoRA update, from `qkv`, `proj` (attention) and `fc1`, `fc2` (MLP).
    public var loraTargets = ["qkv", "proj"]

    public init() {}

    /// `α / r`.
    public var loraScaling: Float { (loraAlpha ?? Float(loraRank)) / Float(loraRank) }

    /// The layer-path suffix each LoRA target names.
    public static let loraTargetPaths = ["qkv": "attn.qkv", "proj": "attn.proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"]
}

/// A method that does not apply to a model, or a method name that does not parse.
public struct TuningMethodError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A way of adapting a pretrained model: one component (`ssf`) or several that compose
/// (`ssf+lora`). The components add their parameters to the model and decide which train; the
/// head always trains.
public struct TuningMethod: RawRepresentable, CaseIterable, Hashable, Sendable {
    /// One method of the SSF paper's comparison (plus LoRA).
    public enum Component: String, CaseIterable, Sendable {
        /// Every parameter trains (full fine-tuning).
        case full
        /// Only the classification head trains (linear probing).
        case linear
        /// Biases (norm biases included) and the head train.
        case bias
        /// SSF scale/shift vectors and the head train (the reference's rule: a name containing
        /// `head.`, `ssf_scale` or `ssf_shift_`).
        case ssf
        /// A bottleneck adapter on each block's MLP output (`….adapter.down/up.*`) and the head train.
        case adapter
        /// Prompt tokens at the input (`prompt.embeddings`, `[1, N, D]`) and the head train.
        case vptShallow = "vpt-shallow"
        /// Prompt tokens at every block's input (`prompt.embeddings`, `[depth, N, D]`) and the head train.
        case vptDeep = "vpt-deep"
        /// Low-rank updates `lora_A`/`lora_B` of the targeted linear layers and the head train.
        case lora
    }

    /// The components, in `Component.allCases` order, without repetition.
    public let components: [Component]
    /// Hyperparameters of the components that add parameters.
    public var options: TuningOptions

    public init(_ components: [Component], options: TuningOptions = TuningOptions()) {
        self.components = Component.allCases.filter(components.contains)
        self.options = options
    }

    /// Parses `ssf`, `lora`, `ssf+lora`, …; nil for an unknown name, a repetition, or both VPT variants.
    public init?(rawValue: String) {
        let parts = rawValue.split(separator: "+", omittingEmptySubsequences: false).map { Component(rawValue: String($0)) }
        guard !parts.isEmpty, !parts.contains(where: { $0 == nil }) else { return nil }
        let list = parts.compactMap { $0 }
        guard Set(list).count == list.count, !(list.contains(.vptShallow) && list.contains(.vptDeep)) else { return nil }
        self.init(list)
    }

    /// The components joined by `+`.
    public var rawValue: String { components.map(\.rawValue).joined(separator: "+") }

    /// Every single-component method.
    public static var allCases: [TuningMethod] { Component.allCases.map { TuningMethod([$0]) } }

    public static let full = TuningMethod([.full])
    public static let linear = TuningMethod([.linear])
    public static let bias = TuningMethod([.bias])
    public static let ssf = TuningMethod([.ssf])
    public static let adapter = TuningMethod([.adapter])
    public static let vptShallow = TuningMethod([.vptShallow])
    public static let vptDeep = TuningMethod([.vptDeep])
    public static let lora = TuningMethod([.lora])

    public func contains(_ component: Component) -> Bool { components.contains(component) }

    public static func == (a: TuningMethod, b: TuningMethod) -> Bool { a.components == b.components && a.options == b.options }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(components)
        hasher.combine(options)
    }

    /// Whether the parameter `name` of `model` trains under this method.
    public func trains(_ name: String, in model: ImageClassifier) -> Bool {
        if contains(.full) || model.isHeadParameter(name) { return true }
        return components.contains { c in
            switch c {
            case .full: return true
            case .linear: return false
            case .bias: return name.hasSuffix(".bias") || name == "bias"
            case .ssf: return TuningMethod.isSSF(name)
            case .adapter: return TuningMethod.isAdapter(name)
            case .vptShallow, .vptDeep: return TuningMethod.isPrompt(name)
            case .lora: return TuningMethod.isLoRA(name)
            }
        }
    }

    /// Throws when a component does not apply to `model` (of the registry family `family`), with the reason.
    public func check(_ model: ImageClassifier, family: String) throws {
        if contains(.adapter), !(model is AdapterTunable) {
            throw TuningMethodError("adapter does not apply to \(family): \(model.reasonLacking(.adapter))")
        }
        for vpt in [Component.vptShallow, .vptDeep] where contains(vpt) && !(model is PromptTunable) {
            throw TuningMethodError("\(vpt.rawValue) does not apply to \(family): \(model.reasonLacking(.prompts))")
        }
        if contains(.lora) {
            let known = TuningOptions.loraTargetPaths
            if let bad = options.loraTargets.first(where: { known[$0] == nil }) {
                throw TuningMethodError("unknown LoRA target '\(bad)' (choose from qkv, proj, fc1, fc2)")
            }
            let present = Set(loraLayers(in: model, targets: Array(known.keys)).map(\.target))
            let missing = options.loraTargets.filter { !present.contains($0) }
            if !missing.isEmpty {
                let hint = present.isEmpty ? "" : " (it has \(present.sorted().joined(separator: ", ")): try --lora-targets \(present.sorted().joined(separator: ",")))"
                throw TuningMethodError("lora target(s) \(missing.joined(separator: ", ")) do not apply to \(family): it has no linear layers named \(missing.map { known[$0]! }.joined(separator: ", "))\(hint)")
            }
        }
    }

    /// The linear layers of `model` that `targets` (default: the options') name, with the target each matches.
    func loraLayers(in model: Module, targets: [String]? = nil) -> [(target: String, layer: Linear)] {
        model.namedModules().compactMap { path, module in
            guard let layer = module as? Linear,
                  let target = (targets ?? options.loraTargets).first(where: { t in TuningOptions.loraTargetPaths[t].map { path.hasSuffix($0) } == true })
            else { return nil }
            return (target, layer)
        }
    }

    /// Adds the method's parameters to `model` (SSF sites, adapters, prompts, LoRA updates, all
    /// freshly initialised) and sets which parameters train. Components that do not apply to the
    /// model (see `check`) add nothing.
    public func apply(to model: ImageClassifier, using rng: inout RandomGenerator) {
        if contains(.ssf) { model.enableSSF(using: &rng) }
        if contains(.adapter) { (model as? AdapterTunable)?.enableAdapters(bottleneck: options.adapterDim, using: &rng) }
        for vpt in [Component.vptShallow, .vptDeep] where contains(vpt) {
            (model as? PromptTunable)?.enablePrompts(count: options.prompts, deep: vpt == .vptDeep, dropout: options.promptDropout, using: &rng)
        }
        if contains(.lora) {
            let alpha = options.loraAlpha ?? Float(options.loraRank)
            for (_, layer) in loraLayers(in: model) {
                layer.lora = LowRankUpdate(inFeatures: layer.inFeatures, outFeatures: layer.outFeatures,
                                           rank: options.loraRank, alpha: alpha, using: &rng)
            }
        }
        model.setTrainable { trains($0, in: model) }
    }

    /// `check`, then `apply`.
    public func apply(to model: ImageClassifier, family: String, using rng: inout RandomGenerator) throws {
        try check(model, family: family)
        apply(to: model, using: &rng)
    }

    /// Names of SSF vectors.
    public static func isSSF(_ name: String) -> Bool { name.contains("ssf_scale_") || name.contains("ssf_shift_") }
    /// Names of adapter parameters.
    public static func isAdapter(_ name: String) -> Bool { name.hasPrefix("adapter.") || name.contains(".adapter.") }
    /// Names of VPT prompt tokens.
    public static func isPrompt(_ name: String) -> Bool { name.hasPrefix("prompt.") }
    /// Names of LoRA matrices.
    public static func isLoRA(_ name: String) -> Bool { name.hasSuffix(".lora_A") || name.hasSuffix(".lora_B") }
    /// Names of parameters a method adds to the plain architecture (SSF, adapter, prompt, LoRA).
    public static func isAdded(_ name: String) -> Bool { isSSF(name) || isAdapter(name) || isPrompt(name) || isLoRA(name) }

}

/// Trainable parameters of a model, split by kind.
public struct TrainableSummary: Sendable {
    /// SSF vectors, head, other added tensors (adapters, prompts, LoRA) and the rest (biases, backbone).
    public var ssf = 0, head = 0, added = 0, other = 0
    /// Parameters of the model without its head and without the parameters a method added.
    public var backbone = 0
    public var total: Int { ssf + head + added + other }
    /// Trainable parameters as a percentage of the backbone.
    public var percentOfBackbone: Double { backbone == 0 ? 0 : 100 * Double(total) / Double(backbone) }

    public init(_ model: ImageClassifier) {
        for (name, p) in model.namedParameters() where !p.isBuffer {
            let isSSF = TuningMethod.isSSF(name), isHead = model.isHeadParameter(name)
            if !TuningMethod.isAdded(name) && !isHead { backbone += p.count }
            guard p.trainable else { continue }
            if isSSF { ssf += p.count } else if isHead { head += p.count } else if TuningMethod.isAdded(name) { added += p.count } else { other += p.count }
        }
    }
}
