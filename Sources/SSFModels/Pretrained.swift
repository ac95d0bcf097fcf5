// Building a registered model and loading a checkpoint into it, with a new head when the class count differs.
import Foundation
import SSFEngine
import SSFNN

/// A model built from the registry, with what happened while loading its weights.
public struct LoadedModel {
    public let model: ImageClassifier
    public let spec: ModelSpec
    /// Missing/unexpected/mismatched tensors (nil when no weights were given).
    public let report: LoadReport?
    /// Human-readable notes (head re-initialised, keys remapped, …).
    public let notes: [String]
}

/// A checkpoint that does not provide what the model needs.
public struct CheckpointMismatchError: Error, CustomStringConvertible {
    public let path: String
    public let model: String
    public let report: LoadReport
    public var description: String {
        var lines = ["\(path): does not fit \(model):"]
        if !report.missing.isEmpty {
            lines.append("  missing \(report.missing.count) tensor(s): " + report.missing.prefix(8).joined(separator: ", ") + (report.missing.count > 8 ? ", …" : ""))
        }
        for m in report.shapeMismatches.prefix(8) {
            lines.append("  \(m.name): the checkpoint has shape \(m.checkpoint), the model needs \(m.model)")
        }
        return lines.joined(separator: "\n")
    }
}

extension LoadedModel {
    /// Throws unless every model tensor came from the checkpoint with the right shape, except
    /// the missing ones `allowMissing` accepts (e.g. SSF vectors a base checkpoint cannot have).
    public func requireComplete(path: String, allowMissing: (String) -> Bool = { _ in false }) throws {
        guard var report else { return }
        report.missing = report.missing.filter { !allowMissing($0) }
        if !report.missing.isEmpty || !report.shapeMismatches.isEmpty {
            throw CheckpointMismatchError(path: path, model: spec.name, report: report)
        }
    }
}

/// Loads registered models with pretrained weights.
public enum Pretrained {
    /// Whether a tensor name belongs to the classification head: timm's `head`, `head.fc`,
    /// `head.norm`; EfficientNet's `classifier`.
    public static func isHeadParameter(_ name: String) -> Bool {
        name.hasPrefix("head.") || name.contains(".head.") || name.hasPrefix("classifier.")
    }

    /// The class count of a checkpoint's head, read from its last 2-D head weight.
    static func headClasses(in state: [String: Tensor]) -> Int? {
        state.filter { isHeadParameter($0.key) && $0.key.hasSuffix("weight") && $0.value.rank == 2 }
            .sorted { $0.key < $1.key }.last?.value.shape[0]
    }

    /// Builds `name` and, when `weights` is given, loads that checkpoint (any supported format).
    ///
    /// Without `numClasses` the model gets the checkpoint's class count (or the registry's
    /// default). With a different `numClasses` (or a checkpoint without a head) the checkpoint's
    /// head is dropped and the new head is initialised by `headInit` (nil: the family's own
    /// initialisation), which is reported in `notes`.
    /// `prepare` runs on the freshly built model before the weights load (a tuning method adds
    /// its parameters there, so a checkpoint holding them loads into place).
    public static func load(model name: String, weights: URL?, numClasses: Int? = nil, seed: UInt64 = 0,
                            headInit: HeadInit? = .fineTuningDefault,
                            prepare: (ImageClassifier) -> Void = { _ in }) throws -> LoadedModel {
        let spec = try ModelRegistry.spec(name)
        guard let weights else {
            let model = try ModelRegistry.create(name, numClasses: numClasses, seed: seed)
            prepare(model)
            return LoadedModel(model: model, spec: spec, report: nil, notes: [])
        }
        return try loadState(try Checkpoint.read(weights), model: name, numClasses: numClasses, seed: seed, headInit: headInit, prepare: prepare)
    }

    /// As `load(model:weights:…)` for tensors already in memory.
    public static func loadState(_ checkpoint: [String: Tensor], model name: String, numClasses: Int? = nil, seed: UInt64 = 0,
                                 headInit: HeadInit? = .fineTuningDefault,
                                 prepare: (ImageClassifier) -> Void = { _ in }) throws -> LoadedModel {
        let spec = try ModelRegistry.spec(name)
        var notes: [String] = []
        var state = checkpoint
        let adapted = try spec.adaptCheckpoint(state)
        if adapted.keys.sorted() != state.keys.sorted() {
            notes.append("converted \(state.count) checkpoint tensors to timm names")
        }
        state = adapted
        let checkpointClasses = headClasses(in: state)
        let classes = numClasses ?? checkpointClasses ?? spec.defaultNumClasses
        let model = try ModelRegistry.create(name, numClasses: classes, seed: seed)
        prepare(model)
        if let convNeXt = model as? ConvNeXt, state["ssf_scale_1"] != nil, convNeXt.ssfOutput == nil {
            // A merged SSF ConvNeXt: its last-stage site stays as two vectors.
            var rng = RandomGenerator(seed: seed)
            convNeXt.enableOutputSSF(using: &rng)
            notes.append("applying the merged checkpoint's last-stage SSF vectors (ssf_scale_1, ssf_shift_1)")
        }
        var ignoring: Set<String> = []
        let newHead = checkpointClasses != classes && classes > 0
        if newHead {
            ignoring = Set(state.keys.filter(isHeadParameter))
            if let headInit {
                var rng = RandomGenerator(seed: seed &+ 2)
                headInit.apply(to: model, using: &rng)
            }
            let rule = headInit.map { "\($0.rawValue) initialisation" } ?? "the family's initialisation"
            let previous = checkpointClasses.map { "checkpoint head has \($0) classes" } ?? "checkpoint has no head"
            notes.append("\(previous); a new \(classes)-class head was initialised (\(rule))")
        }
        let report = model.load(stateDict: state, ignoring: ignoring)
        if newHead {
            // The head tensors the checkpoint lacks are the new head's, not missing weights.
            var r = report
            r.missing = r.missing.filter { !isHeadParameter($0) }
            return LoadedModel(model: model, spec: spec, report: r, notes: notes)
        }
        return LoadedModel(model: model, spec: spec, report: report, notes: notes)
    }
}
