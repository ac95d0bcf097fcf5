// Folding a tuned model back into the plain architecture: LoRA updates into their weights, then SSF
// sites into the preceding ops; bias, linear and full tuning change only existing tensors.
import SSFEngine
import SSFModels
import SSFNN

public enum MethodMerge {
    /// Why `method`'s parameters cannot fold into the plain architecture, or nil when they can.
    public static func unfoldableReason(_ method: TuningMethod, family: String = "model's") -> String? {
        if method.contains(.adapter) {
            return "adapter adds a nonlinear branch (down-projection → GELU → up-projection) after every block; it cannot fold into the plain \(family) weights — keep the adapter weights with the model"
        }
        for vpt in [TuningMethod.Component.vptShallow, .vptDeep] where method.contains(vpt) {
            return "\(vpt.rawValue) adds prompt tokens that every attention layer attends over; they change the token sequence itself and cannot fold into the plain \(family) weights — keep the prompt embeddings with the model"
        }
        return nil
    }

    /// Folds every component of `method` in `state` (the state of `model`, tuned with it) into a state
    /// dictionary with the plain architecture's keys: `W' = W + (α/r)·B·A` for each LoRA layer
    /// (Float64 arithmetic, rounded once), then the SSF sites `model` declares (`SSFMerge`). Throws
    /// for adapter and VPT, and when the state holds added parameters the method does not account for.
    public static func merge(_ state: [String: Tensor], model: Module, method: TuningMethod) throws -> MergeResult {
        if let reason = unfoldableReason(method) { throw MergeError(problem: reason) }
        var folded = state
        var loraLayers = 0
        if method.contains(.lora) {
            (folded, loraLayers) = try foldLoRA(state, scaling: method.options.loraScaling)
        }
        var result = method.contains(.ssf)
            ? try SSFMerge.merge(folded, model: model)
            : MergeResult(merged: folded, unfolded: [:], foldedSites: 0)
        result.foldedSites += loraLayers
        if let stray = result.merged.keys.sorted().first(where: TuningMethod.isAdded) {
            throw MergeError(problem: "the state holds \(stray), which the method '\(method.rawValue)' does not add; merge it with the method it was trained with")
        }
        return result
    }

    /// Folds `loaded` (a model tuned with `method`, in the state it holds now) and proves the fold:
    /// the merged state must load exactly into a freshly built plain model (plus the sites the
    /// family keeps unfolded) whose logits on a seeded probe image match the tuned model's.
    public static func mergeAndVerify(_ loaded: LoadedModel, method: TuningMethod) throws -> VerifiedMerge {
        let tuned = loaded.model
        let result = try merge(tuned.stateDict(), model: tuned, method: method)
        var out = result.merged
        for (k, v) in result.unfolded { out[k] = v }
        let plain = try ModelRegistry.create(loaded.spec.name, numClasses: tuned.numClasses)
        var rng = RandomGenerator(seed: 0)
        _ = plain.enableSSFSites(presentIn: Set(result.unfolded.keys), using: &rng)
        let report = plain.load(stateDict: out)
        guard report.isExact else {
            throw MergeError(problem: "the merged checkpoint does not load exactly into \(loaded.spec.name):\n\(report)")
        }
        let size = loaded.spec.preprocess.inputSize
        let probe = Tensor.randomNormal([1, 3, size, size], using: &rng)
        tuned.setTraining(false)
        plain.setTraining(false)
        let (a, b) = (plain(probe).scalars, tuned(probe).scalars)
        let difference = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        let scale = max(1, b.map(abs).max() ?? 0)
        guard difference <= 1e-3 * scale else {
            throw MergeError(problem: "the merged \(loaded.spec.name) does not reproduce the tuned model: max |Δlogit| = \(difference) on a probe image (logits up to \(scale))")
        }
        return VerifiedMerge(result: result, state: out, maxDifference: difference)
    }

    /// Replaces each `<layer>.weight` that has `<layer>.lora_A` / `<layer>.lora_B` with
    /// `W + scaling·B·A` and drops the two matrices; returns the new state and the layer count.
    static func foldLoRA(_ state: [String: Tensor], scaling: Float) throws -> ([String: Tensor], Int) {
        var out = state
        var count = 0
        for key in state.keys.sorted() where key.hasSuffix(".lora_A") {
            let layer = String(key.dropLast(".lora_A".count))
            guard let a = state[key], let b = state[layer + ".lora_B"], let w = state[layer + ".weight"] else {
                throw MergeError(problem: "LoRA layer \(layer) needs \(layer).lora_A, \(layer).lora_B and \(layer).weight")
            }
            let (rank, inF, outF) = (a.shape[0], a.shape[1], b.shape[0])
            guard a.rank == 2, b.shape == [outF, rank], w.shape == [outF, inF] else {
                throw MergeError(problem: "LoRA layer \(layer): lora_A \(a.shape), lora_B \(b.shape) and weight \(w.shape) do not fit W + B·A")
            }
            var merged = Tensor(uninitializedShape: w.shape)
            let m = merged.mutablePointer(), pw = w.pointer, pa = a.pointer, pb = b.pointer
            let s = Double(scaling)
            for o in 0..<outF {
                for i in 0..<inF {
                    var acc = 0.0
                    for r in 0..<rank { acc += Double(pb[o * rank + r]) * Double(pa[r * inF + i]) }
                    m[o * inF + i] = Float(Double(pw[o * inF + i]) + s * acc)
                }
            }
            out[layer + ".weight"] = merged
            out[key] = nil
            out[layer + ".lora_B"] = nil
            count += 1
        }
        if let orphan = out.keys.sorted().first(where: { $0.hasSuffix(".lora_B") }) {
            throw MergeError(problem: "\(orphan) has no matching lora_A")
        }
        return (out, count)
    }
}

/// A merge checked against the tuned model.
public struct VerifiedMerge {
    public let result: MergeResult
    /// The plain checkpoint to write: merged tensors plus the vectors of unfoldable sites.
    public let state: [String: Tensor]
    /// Largest |Δ| between the merged and the tuned model's logits on the probe image.
    public let maxDifference: Float

    /// What a command prints about the merge.
    public var summary: String {
        var line = "folded \(result.foldedSites) sites; merged vs tuned logits on a probe image: max |Δ| = \(maxDifference)"
        for (key, reason) in result.unfoldedReasons.sorted(by: { $0.key < $1.key }) {
            line += "\nkept \(key) and its shift: \(reason)"
        }
        return line
    }
}
