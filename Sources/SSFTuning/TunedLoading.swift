// Building a registered model with a method's parameters and loading a checkpoint into it: the one
// way every command and the trainer get a model.
import Foundation
import SSFEngine
import SSFModels
import SSFNN

extension TuningMethod {
    /// Builds `model`, adds this method's parameters (seeded `seed + 1`, after checking the method
    /// applies), and loads `weights` (any supported format and layout) with a head for `numClasses`.
    ///
    /// With `requireAdded` false, the method's own tensors may be absent from the checkpoint (a base
    /// checkpoint: they keep their initialisation); every other model tensor must be there with its
    /// shape. `notes` hears the loading notes before that check, so they are there when it fails.
    public func load(model name: String, weights: URL?, numClasses: Int? = nil, seed: UInt64 = 0,
                     headInit: HeadInit? = .fineTuningDefault, requireAdded: Bool = false,
                     notes: (String) -> Void = { _ in }) throws -> LoadedModel {
        let state = try weights.map { try Checkpoint.read($0) }
        return try load(model: name, state: state, path: weights?.path, numClasses: numClasses, seed: seed,
                        headInit: headInit, requireAdded: requireAdded, notes: notes)
    }

    /// As `load(model:weights:…)` for tensors already in memory (`path` names them in errors).
    public func load(model name: String, state: [String: Tensor]?, path: String? = nil, numClasses: Int? = nil, seed: UInt64 = 0,
                     headInit: HeadInit? = .fineTuningDefault, requireAdded: Bool = false,
                     notes: (String) -> Void = { _ in }) throws -> LoadedModel {
        let family = try ModelRegistry.spec(name).family
        var problem: Error?
        let prepare: (ImageClassifier) -> Void = { model in
            var rng = RandomGenerator(seed: seed &+ 1)
            do { try self.apply(to: model, family: family, using: &rng) } catch { problem = error }
        }
        let loaded: LoadedModel
        if let state {
            loaded = try Pretrained.loadState(state, model: name, numClasses: numClasses, seed: seed, headInit: headInit, prepare: prepare)
        } else {
            loaded = try Pretrained.load(model: name, weights: nil, numClasses: numClasses, seed: seed, headInit: headInit, prepare: prepare)
        }
        if let problem { throw problem }
        loaded.notes.forEach(notes)
        if state != nil {
            let where_ = path ?? "(checkpoint)"
            if requireAdded, let report = loaded.report {
                let missing = report.missing.filter(TuningMethod.isAdded)
                if !missing.isEmpty {
                    throw TuningMethodError("\(where_): holds none of \(missing.count) of \(name)'s \(rawValue) parameters (e.g. \(missing[0])); was it trained with --method \(rawValue)?")
                }
            }
            // Shapes must match too: a LoRA checkpoint of another rank would otherwise load as zero updates.
            try loaded.requireComplete(path: where_, allowMissing: TuningMethod.isAdded)
        }
        return loaded
    }
}
