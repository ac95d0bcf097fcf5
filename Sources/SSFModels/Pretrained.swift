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

    public init(model: ImageClassifier, spec: ModelSpec, report: LoadReport?, notes: [String]) {
        self.model = model; self.spec = spec; self.report = report; self.notes = notes
    }
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
    /// The class count of a checkpoint's head, read from its last 2-D head weight.
    static func headClasses(in state: [String: Tensor], spec: ModelSpec) -> Int? {
        state.filter { spec.isHeadParameter($0.key) && $0.key.hasSuffix("weight") && $0.value.rank == 2 }
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
        let converted = try spec.convertCheckpoint(checkpoint)
        if !converted.layouts.isEmpty { notes.append("converted the checkpoint (\(converted.summary))") }
        let state = converted.tensors
        let checkpointClasses = headClasses(in: state, spec: spec)
        let classes = numClasses ?? checkpointClasses ?? spec.defaultNumClasses
        let model = try ModelRegistry.create(name, numClasses: classes, seed: seed)
        prepare(model)
        notes += enableCheckpointSSFSites(model, keys: Set(state.keys), seed: seed)
        var ignoring: Set<String> = []
        let newHead = checkpointClasses != classes && classes > 0
        if newHead {
            ignoring = Set(state.keys.filter(spec.isHeadParameter))
            if let headInit {
                var rng = RandomGenerator(seed: seed &+ 2)
                headInit.apply(to: model, using: &rng)
            }
            let rule = headInit.map { "\($0.rawValue) initialisation" } ?? "the family's initialisation"
            let previous = checkpointClasses.map { "checkpoint head has \($0) classes" } ?? "checkpoint has no head"
            notes.append("\(previous); a new \(classes)-class head was initialised (\(rule))")
        }
        var report = model.load(stateDict: state, ignoring: ignoring)
        // The head tensors the checkpoint lacks are the new head's, not missing weights.
        if newHead { report.missing = report.missing.filter { !spec.isHeadParameter($0) } }
        return LoadedModel(model: model, spec: spec, report: report, notes: notes)
    }

    /// Lets the family enable SSF sites the checkpoint holds beyond its placement (see
    /// `ImageClassifier.enableSSFSites`); they train exactly when the model's other SSF sites do.
    static func enableCheckpointSSFSites(_ model: ImageClassifier, keys: Set<String>, seed: UInt64) -> [String] {
        let existing = model.declaredSSFSites()
        let before = Set(existing.map(\.scaleKey))
        let trains = !existing.isEmpty && existing.allSatisfy { $0.site.scale.trainable }
        var rng = RandomGenerator(seed: seed &+ 3)
        let notes = model.enableSSFSites(presentIn: keys, using: &rng)
        for site in model.declaredSSFSites() where !before.contains(site.scaleKey) {
            site.site.scale.trainable = trains
            site.site.shift.trainable = trains
        }
        return notes
    }
}
