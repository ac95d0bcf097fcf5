// The registry of architectures, keyed by timm model names.
import SSFEngine
import SSFNN

/// One registered architecture: its name, defaults and constructor.
public struct ModelSpec: Sendable {
    /// timm's model name, e.g. `vit_base_patch16_224` or `vit_base_patch16_224.augreg_in21k`.
    public let name: String
    /// Architecture family, e.g. "vit".
    public let family: String
    /// Classes of the pretrained head.
    public let defaultNumClasses: Int
    public let preprocess: PreprocessConfig
    /// Builds a randomly initialised model with `numClasses` outputs.
    public let build: @Sendable (_ numClasses: Int, _ rng: inout RandomGenerator) -> ImageClassifier
    /// Converts a checkpoint in another naming (e.g. Google's .npz, the reference SSF code's
    /// timm 0.6 layout) to this model's timm names; the identity for checkpoints already in them.
    /// The foreign checkpoint layouts this model reads (see `CheckpointLayout`), tried in order.
    public let layouts: [CheckpointLayout]
    /// The head module's name (the model class's `headName`).
    public let headName: String

    public init<Model: ImageClassifier>(name: String, family: String, defaultNumClasses: Int, preprocess: PreprocessConfig,
                                        layouts: [CheckpointLayout] = [],
                                        build: @escaping @Sendable (_ numClasses: Int, _ rng: inout RandomGenerator) -> Model) {
        self.name = name; self.family = family; self.defaultNumClasses = defaultNumClasses
        self.preprocess = preprocess; self.layouts = layouts
        self.build = { classes, rng in build(classes, &rng) }
        headName = Model.headName
    }

    /// Whether a tensor name belongs to this model's classification head.
    public func isHeadParameter(_ name: String) -> Bool { name.hasPrefix(headName + ".") }
}

/// An unknown model name.
public struct UnknownModelError: Error, CustomStringConvertible {
    public let name: String
    public var description: String {
        let near = ModelRegistry.names.filter { $0.hasPrefix(name.split(separator: "_").first.map(String.init) ?? name) }
        return "unknown model '\(name)'" + (near.isEmpty ? "; run `ssf models` for the list" : "; did you mean one of: \(near.joined(separator: ", "))")
    }
}

/// All architectures the tool can build.
public enum ModelRegistry {
    /// Every registered model, in listing order.
    public static let all: [ModelSpec] = vitSpecs + swinSpecs + convNeXtSpecs + asMLPSpecs + efficientNetSpecs

    public static var names: [String] { all.map(\.name) }

    /// The spec for `name`; a timm pretrained tag (`name.tag`) falls back to the untagged name.
    public static func spec(_ name: String) throws -> ModelSpec {
        if let s = all.first(where: { $0.name == name }) { return s }
        if let dot = name.firstIndex(of: "."), let s = all.first(where: { $0.name == String(name[..<dot]) }) { return s }
        throw UnknownModelError(name: name)
    }

    /// Builds `name` with `numClasses` outputs (the pretrained default when nil).
    public static func create(_ name: String, numClasses: Int? = nil, seed: UInt64 = 0) throws -> ImageClassifier {
        let s = try spec(name)
        var rng = RandomGenerator(seed: seed)
        return s.build(numClasses ?? s.defaultNumClasses, &rng)
    }
}
