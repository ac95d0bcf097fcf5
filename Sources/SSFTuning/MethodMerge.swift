// Folding a tuned model back into the plain architecture: LoRA updates into their weights, then SSF
// sites into the preceding ops; bias, linear and full tuning change only existing tensors.
import SSFEngine
import SSFNN

public enum MethodMerge {
    /// Why `method`'s parameters cannot fold into the plain architecture, or nil when they can.
    public static func unfoldableReason(_ method: TuningMethod, family: String) -> String? {
        if method.contains(.adapter) {
            return "adapter adds a nonlinear branch (down-projection → GELU → up-projection) after every block; it cannot fold into the plain \(family) weights — keep the adapter weights with the model"
        }
        for vpt in [TuningMethod.Component.vptShallow, .vptDeep] where method.contains(vpt) {
            return "\(vpt.rawValue) adds prompt tokens that every attention layer attends over; they change the token sequence itself and cannot fold into the plain \(family) weights — keep the prompt embeddings with the model"
        }
        return nil
    }

    /// Folds every component of `method` in `state` (a model of `family` tuned with it) into a state
    /// dictionary with the plain architecture's keys: `W' = W + (α/r)·B·A` for each LoRA layer
    /// (Float64 arithmetic, rounded once), then the SSF sites (`SSFMerge`). Throws for adapter and
    /// VPT, and when the state holds added parameters the method does not account for.
    public static func merge(_ state: [String: Tensor], family: String, method: TuningMethod) throws -> MergeResult {
        if let reason = unfoldableReason(method, family: family) { throw MergeError(problem: reason) }
        var folded = state
        var loraLayers = 0
        if method.contains(.lora) {
            (folded, loraLayers) = try foldLoRA(state, scaling: method.options.loraScaling)
        }
        var result = method.contains(.ssf)
            ? try SSFMerge.merge(folded, family: family)
            : MergeResult(merged: folded, unfolded: [:], foldedSites: 0)
        result.foldedSites += loraLayers
        if let stray = result.merged.keys.sorted().first(where: TuningMethod.isAdded) {
            throw MergeError(problem: "the state holds \(stray), which the method '\(method.rawValue)' does not add; merge it with the method it was trained with")
        }
        return result
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
