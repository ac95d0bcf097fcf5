// Re-parameterisation: folds SSF scale/shift vectors into the weights of the op before each site,
// as each site declares it (`ScaleShift.foldTarget`).
import SSFEngine
import SSFNN

/// A merge that could not be done.
public struct MergeError: Error, CustomStringConvertible {
    public let problem: String
    public init(problem: String) { self.problem = problem }
    public var description: String { problem }
}

/// The outcome of folding a state dictionary's SSF sites.
public struct MergeResult {
    /// The state dictionary with folded weights and no folded SSF entries.
    public var merged: [String: Tensor]
    /// SSF vectors of sites that declare no op to fold into, by site key (ConvNeXt's last-stage site).
    public var unfolded: [String: Tensor]
    /// Why each unfolded site stays, by its scale key.
    public var unfoldedReasons: [String: String] = [:]
    /// Number of sites folded.
    public var foldedSites: Int
}

public enum SSFMerge {
    /// Folds every SSF site that `model` declares (the model the state belongs to, its sites
    /// enabled) into the op the site names, in Float64 arithmetic rounded once to Float32.
    /// Sites declared unfoldable are returned in `unfolded`; an SSF tensor of the state that no
    /// declared site accounts for is an error.
    public static func merge(_ state: [String: Tensor], model: Module) throws -> MergeResult {
        var merged = state
        var result = MergeResult(merged: [:], unfolded: [:], foldedSites: 0)
        for declared in model.declaredSSFSites() {
            let (scaleKey, shiftKey) = (declared.scaleKey, declared.shiftKey)
            guard let gamma = state[scaleKey], let beta = state[shiftKey] else {
                throw MergeError(problem: "the model has the SSF site \(scaleKey), which the state lacks (it needs \(scaleKey) and \(shiftKey))")
            }
            merged[scaleKey] = nil
            merged[shiftKey] = nil
            guard let target = declared.targetPath else {
                result.unfolded[scaleKey] = gamma
                result.unfolded[shiftKey] = beta
                if case .unfoldable(let reason) = declared.site.foldTarget { result.unfoldedReasons[scaleKey] = reason }
                continue
            }
            guard let weight = merged[target + ".weight"] else {
                throw MergeError(problem: "SSF site \(scaleKey) folds into \(target).weight, which the state lacks")
            }
            let channels = gamma.count
            guard weight.shape.first == channels, beta.count == channels else {
                throw MergeError(problem: "SSF site \(scaleKey) has \(channels) channels but \(target).weight is \(weight.shape)")
            }
            let (w, b) = fold(weight: weight, bias: merged[target + ".bias"], gamma: gamma, beta: beta)
            merged[target + ".weight"] = w
            merged[target + ".bias"] = b
            result.foldedSites += 1
        }
        if let stray = merged.keys.sorted().first(where: { $0.contains("ssf_scale_") || $0.contains("ssf_shift_") }) {
            throw MergeError(problem: "\(stray) belongs to no SSF site the model declares; it has no fold rule")
        }
        result.merged = merged
        return result
    }

    /// `W' = diag(γ)·W` along the first axis and `b' = γ ⊙ b + β` (β when there is no bias).
    static func fold(weight: Tensor, bias: Tensor?, gamma: Tensor, beta: Tensor) -> (Tensor, Tensor) {
        let channels = gamma.count
        let perChannel = weight.count / channels
        var w = Tensor(uninitializedShape: weight.shape)
        var b = Tensor(uninitializedShape: [channels])
        let wp = w.mutablePointer(), bp = b.mutablePointer()
        let src = weight.pointer, g = gamma.pointer, s = beta.pointer, ob = bias?.pointer
        for c in 0..<channels {
            let scale = Double(g[c])
            for i in 0..<perChannel { wp[c * perChannel + i] = Float(scale * Double(src[c * perChannel + i])) }
            bp[c] = Float(scale * Double(ob?[c] ?? 0) + Double(s[c]))
        }
        return (w, b)
    }
}
