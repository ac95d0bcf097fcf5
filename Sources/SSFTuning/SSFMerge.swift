// Re-parameterisation: folds SSF scale/shift vectors into the weights of the op before each site.
import SSFEngine
import SSFNN

/// Where each SSF site of a family folds, by host module and site number.
///
/// A rule names the host path with `*` for list indices (`blocks.*.attn`), the site number K of
/// `ssf_scale_K` / `ssf_shift_K`, and the child of the host whose output the site scales: a
/// Linear or conv (`W' = diag(γ)·W`, `b' = γ ⊙ b + β`) or a norm's affine (`w' = γ ⊙ w`,
/// `b' = γ ⊙ b + β`). Both have the same algebra on `[C, …]` weights, so a rule needs only the
/// target's name.
public struct FoldRule: Sendable {
    public let host: String
    public let site: Int
    public let target: String
    public init(_ host: String, _ site: Int, _ target: String) { self.host = host; self.site = site; self.target = target }
}

/// The fold rules of every family (the reference placement of SSF-SPEC).
public enum SSFFoldRules {
    public static func rules(family: String) -> [FoldRule]? {
        switch family {
        case "vit":
            return [FoldRule("patch_embed", 1, "proj"), FoldRule("blocks.*", 1, "norm1"), FoldRule("blocks.*", 2, "norm2"),
                    FoldRule("blocks.*.attn", 1, "qkv"), FoldRule("blocks.*.attn", 2, "proj"),
                    FoldRule("blocks.*.mlp", 1, "fc1"), FoldRule("blocks.*.mlp", 2, "fc2"), FoldRule("", 1, "norm")]
        case "swin":
            return [FoldRule("patch_embed", 1, "proj"), FoldRule("patch_embed", 2, "norm"),
                    FoldRule("layers.*.blocks.*", 1, "norm1"), FoldRule("layers.*.blocks.*", 2, "norm2"),
                    FoldRule("layers.*.blocks.*.attn", 1, "qkv"), FoldRule("layers.*.blocks.*.attn", 2, "proj"),
                    FoldRule("layers.*.blocks.*.mlp", 1, "fc1"), FoldRule("layers.*.blocks.*.mlp", 2, "fc2"),
                    FoldRule("", 1, "norm")]
        case "convnext":
            // The root's site scales the last stage's output (a residual sum): no op to fold into.
            return [FoldRule("stem", 1, "0"), FoldRule("stem", 2, "1"),
                    FoldRule("stages.*.blocks.*", 1, "conv_dw"), FoldRule("stages.*.blocks.*", 2, "norm"),
                    FoldRule("stages.*.blocks.*.mlp", 1, "fc1"), FoldRule("stages.*.blocks.*.mlp", 2, "fc2")]
        case "asmlp":
            return [FoldRule("layers.*.blocks.*", 1, "norm1"), FoldRule("layers.*.blocks.*", 2, "norm2"),
                    FoldRule("layers.*.blocks.*.axial_shift", 1, "conv1"), FoldRule("layers.*.blocks.*.axial_shift", 2, "conv2_1"),
                    FoldRule("layers.*.blocks.*.axial_shift", 3, "conv2_2"), FoldRule("layers.*.blocks.*.axial_shift", 4, "conv3"),
                    FoldRule("layers.*.blocks.*.mlp", 1, "fc1"), FoldRule("layers.*.blocks.*.mlp", 2, "fc2"),
                    FoldRule("", 1, "norm")]
        case "efficientnet":
            return [FoldRule("", 1, "bn1"), FoldRule("", 2, "bn2"),
                    FoldRule("blocks.*.*", 1, "bn1"), FoldRule("blocks.*.*", 2, "bn2"), FoldRule("blocks.*.*", 3, "bn3")]
        default:
            return nil
        }
    }
}

/// A merge that could not be done.
public struct MergeError: Error, CustomStringConvertible {
    public let problem: String
    public init(problem: String) { self.problem = problem }
    public var description: String { problem }
}

/// The outcome of folding a state dictionary's SSF sites.
public struct MergeResult {
    /// The state dictionary with folded weights and no SSF entries.
    public var merged: [String: Tensor]
    /// SSF vectors that have no op to fold into, by site key (ConvNeXt's last-stage site).
    public var unfolded: [String: Tensor]
    /// Number of sites folded.
    public var foldedSites: Int
}

public enum SSFMerge {
    /// Splits `key` = `<host>.ssf_scale_<K>` (or a root-level `ssf_scale_<K>`) into host and K.
    static func site(of key: String, kind: String) -> (host: String, k: Int)? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let last = parts.last, last.hasPrefix("ssf_\(kind)_"), let k = Int(last.dropFirst("ssf_\(kind)_".count)) else { return nil }
        return (parts.dropLast().joined(separator: "."), k)
    }

    /// `blocks.3.attn` matches `blocks.*.attn`.
    static func matches(_ host: String, _ pattern: String) -> Bool {
        let h = host.split(separator: ".", omittingEmptySubsequences: false)
        let p = pattern.split(separator: ".", omittingEmptySubsequences: false)
        guard h.count == p.count else { return false }
        return zip(h, p).allSatisfy { $1 == "*" ? Int($0) != nil : $0 == $1 }
    }

    /// Folds every SSF site of `state` (a model of `family`) into the preceding op, in Float64
    /// arithmetic rounded once to Float32. Sites without a rule are returned in `unfolded`.
    public static func merge(_ state: [String: Tensor], family: String) throws -> MergeResult {
        guard let rules = SSFFoldRules.rules(family: family) else {
            throw MergeError(problem: "no SSF fold rules for the model family '\(family)'")
        }
        var merged = state
        var unfolded: [String: Tensor] = [:]
        var folded = 0
        for key in state.keys.sorted() {
            guard let (host, k) = site(of: key, kind: "scale") else { continue }
            let shiftKey = (host.isEmpty ? "" : host + ".") + "ssf_shift_\(k)"
            guard let gamma = state[key], let beta = state[shiftKey] else {
                throw MergeError(problem: "SSF site \(key) has no matching \(shiftKey)")
            }
            merged[key] = nil
            merged[shiftKey] = nil
            guard let rule = rules.first(where: { $0.site == k && matches(host, $0.host) }) else {
                unfolded[key] = gamma
                unfolded[shiftKey] = beta
                continue
            }
            let target = (host.isEmpty ? "" : host + ".") + rule.target
            guard let weight = state[target + ".weight"] else {
                throw MergeError(problem: "SSF site \(key) folds into \(target).weight, which the checkpoint lacks")
            }
            let channels = gamma.count
            guard weight.shape.first == channels, beta.count == channels else {
                throw MergeError(problem: "SSF site \(key) has \(channels) channels but \(target).weight is \(weight.shape)")
            }
            let (w, b) = fold(weight: weight, bias: state[target + ".bias"], gamma: gamma, beta: beta)
            merged[target + ".weight"] = w
            merged[target + ".bias"] = b
            folded += 1
        }
        return MergeResult(merged: merged, unfolded: unfolded, foldedSites: folded)
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
