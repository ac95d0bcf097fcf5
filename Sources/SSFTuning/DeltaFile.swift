// Per-task delta files: only the SSF vectors and the head (and batch-norm statistics training changed),
// tied to the exact base checkpoint.
import Foundation
import SSFEngine
import SSFModels
import SSFNN

/// A task's trained SSF vectors and head, with the identity of the base model they adapt.
///
/// Stored as safetensors; `__metadata__` holds `format` (`ssf-delta/1`), `base_model` (the
/// registry name), `base_sha256` (the fingerprint of the base model's backbone tensors, see
/// `SHA256.fingerprint`) and, when known, `class_names` (a JSON array).
public struct DeltaFile {
    public static let formatTag = "ssf-delta/1"

    public var tensors: [String: Tensor]
    public var baseModel: String
    public var baseFingerprint: String
    public var classNames: [String]?

    /// The head module's name, stored in the file (`head`): the registered model's, else timm's `head`.
    public var headName: String

    /// The head name of the registered `model` (timm's `head` for a name outside the registry).
    public static func headName(ofModel model: String) -> String { (try? ModelRegistry.spec(model))?.headName ?? "head" }

    /// Whether a state-dictionary entry belongs in a delta: an SSF vector or a parameter of the head `headName`.
    public static func isDeltaKey(_ name: String, headName: String) -> Bool {
        TuningMethod.isSSF(name) || name.hasPrefix(headName + ".")
    }

    /// The fingerprint of a model state's backbone: every tensor that is not part of a delta.
    public static func backboneFingerprint(_ state: [String: Tensor], headName: String) -> String {
        SHA256.fingerprint(state.filter { !isDeltaKey($0.key, headName: headName) })
    }

    /// Batch-norm running statistics, which a delta carries when training changed them.
    public static func isStatisticsKey(_ name: String) -> Bool {
        name.hasSuffix(".running_mean") || name.hasSuffix(".running_var") || name.hasSuffix(".num_batches_tracked")
    }

    /// The delta of an SSF model state (base tensors + SSF vectors + head). With `baseState` (the
    /// state before training), running statistics that training changed go into the delta too and
    /// the fingerprint is the base's.
    /// `headName` defaults to the registered model's.
    public init(ssfState state: [String: Tensor], baseState: [String: Tensor]? = nil, baseModel: String, headName: String? = nil,
                classNames: [String]? = nil) {
        let headName = headName ?? DeltaFile.headName(ofModel: baseModel)
        self.headName = headName
        tensors = state.filter { DeltaFile.isDeltaKey($0.key, headName: headName) }
        if let baseState {
            for (k, v) in state where DeltaFile.isStatisticsKey(k) && baseState[k].map({ $0.scalars != v.scalars }) == true { tensors[k] = v }
        }
        self.baseModel = baseModel
        baseFingerprint = DeltaFile.backboneFingerprint(baseState ?? state, headName: headName)
        self.classNames = classNames
    }

    public func save(to url: URL) throws {
        var metadata = ["format": DeltaFile.formatTag, "base_model": baseModel, "base_sha256": baseFingerprint, "head": headName]
        if let classNames { metadata["class_names"] = JSONValue.array(classNames.map { JSONValue($0) }).serialized }
        try SafeTensors.save(tensors, metadata: metadata, to: url)
    }

    public init(contentsOf url: URL) throws {
        let file = try SafeTensors.load(url)
        guard file.metadata["format"] == DeltaFile.formatTag,
              let model = file.metadata["base_model"], let sha = file.metadata["base_sha256"] else {
            throw CheckpointError(path: url.path, problem: "not an SSF delta file (its metadata lacks format \(DeltaFile.formatTag), base_model or base_sha256)")
        }
        tensors = file.tensors
        baseModel = model
        headName = file.metadata["head"] ?? DeltaFile.headName(ofModel: model)
        baseFingerprint = sha
        if let names = file.metadata["class_names"] {
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(names.utf8)) as? [String] else {
                throw CheckpointError(path: url.path, problem: "class_names metadata is not a JSON array of strings")
            }
            classNames = parsed
        }
        if let stray = tensors.keys.sorted().first(where: { !DeltaFile.isDeltaKey($0, headName: headName) && !DeltaFile.isStatisticsKey($0) }) {
            throw CheckpointError(path: url.path, problem: "delta holds \(stray), which is neither an SSF vector, a head parameter nor batch-norm statistics")
        }
    }

    /// The full SSF state for this delta on `baseState` (the base model's state dictionary,
    /// after loading into the registry model), after checking it is the base the delta was made on.
    public func ssfState(onBase baseState: [String: Tensor], model: String) throws -> [String: Tensor] {
        guard model == baseModel else {
            throw MergeError(problem: "the delta adapts \(baseModel), not \(model)")
        }
        let fingerprint = DeltaFile.backboneFingerprint(baseState, headName: headName)
        guard fingerprint == baseFingerprint else {
            throw MergeError(problem: "the delta was made on a different \(model) checkpoint (its base fingerprint is \(baseFingerprint.prefix(16))…, this base's is \(fingerprint.prefix(16))…)")
        }
        var state = baseState.filter { !DeltaFile.isDeltaKey($0.key, headName: headName) }
        for (k, v) in tensors { state[k] = v }
        return state
    }
}
