// Foreign checkpoint layouts: each family lists the layouts it reads, and each layout detects its
// own names, maps them to timm's, and reports every tensor it renamed or left out.
import SSFEngine

/// A checkpoint brought to timm's names, with what the conversion did.
public struct ConvertedCheckpoint {
    public var tensors: [String: Tensor]
    /// The layouts that were applied, in order.
    public var layouts: [String] = []
    /// Source name → timm name for every renamed tensor (a fused tensor lists its sources joined by " + ").
    public var renamed: [(from: String, to: String)] = []
    /// Source tensors left out, each with the reason.
    public var dropped: [(name: String, reason: String)] = []
    /// Other changes (resampled, reshaped), one line each.
    public var notes: [String] = []

    public init(tensors: [String: Tensor]) { self.tensors = tensors }

    /// One line a command can print: which layouts, how many renamed and dropped.
    public var summary: String {
        guard !layouts.isEmpty else { return "already in timm's names" }
        var parts = ["\(layouts.joined(separator: " + ")): \(renamed.count) tensors renamed"]
        if !dropped.isEmpty { parts.append("\(dropped.count) left out (\(dropped.prefix(3).map(\.name).joined(separator: ", "))\(dropped.count > 3 ? ", …" : ""))") }
        return parts.joined(separator: ", ") + (notes.isEmpty ? "" : "; " + notes.joined(separator: "; "))
    }
}

/// A tensor naming other than timm's that a model can read.
public protocol CheckpointLayout: Sendable {
    /// Short name, e.g. `facebook-convnext`.
    var name: String { get }
    /// Whether `tensors` are named in this layout.
    func detects(_ tensors: [String: Tensor]) -> Bool
    /// Maps the tensors to timm's names. Tensors the layout does not know are an error naming them.
    func convert(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint
}

/// A checkpoint a layout cannot map.
public struct CheckpointLayoutError: Error, CustomStringConvertible {
    public let layout: String
    public let problem: String
    public init(layout: String, problem: String) { self.layout = layout; self.problem = problem }
    public var description: String { "\(layout) checkpoint: \(problem)" }
}

extension ModelSpec {
    /// Applies every layout of this model that detects the tensors, in the listed order
    /// (e.g. Google's ViT names, then a position-embedding resample).
    public func convertCheckpoint(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint {
        var out = ConvertedCheckpoint(tensors: tensors)
        for layout in layouts where layout.detects(out.tensors) {
            let step = try layout.convert(out.tensors)
            out.tensors = step.tensors
            out.layouts.append(layout.name)
            out.renamed += step.renamed
            out.dropped += step.dropped
            out.notes += step.notes
        }
        return out
    }
}

/// One renaming rule: `from` and `to` are dotted prefixes in which `#` stands for a list index
/// (`stages.#.#.dwconv.` → `stages.#.blocks.#.conv_dw.`); the indices carry over in order.
/// A rule without a trailing dot matches the whole name.
public struct KeyRule: Sendable {
    public let from: String, to: String
    public init(_ from: String, _ to: String) { self.from = from; self.to = to }

    /// The renamed key, or nil when the rule does not match.
    func apply(_ key: String) -> String? {
        let pattern = from.split(separator: ".", omittingEmptySubsequences: false)
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        let wholeName = !from.hasSuffix(".")
        let fixed = wholeName ? pattern.count : pattern.count - 1
        guard wholeName ? parts.count == fixed : parts.count > fixed else { return nil }
        var indices: [Substring] = []
        for (p, k) in zip(pattern.prefix(fixed), parts.prefix(fixed)) {
            if p == "#" {
                guard Int(k) != nil else { return nil }
                indices.append(k)
            } else if p != k {
                return nil
            }
        }
        var head = to.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if !wholeName { head.removeLast() }
        var next = indices.makeIterator()
        head = head.map { $0 == "#" ? String(next.next() ?? "#") : $0 }
        return (head + parts.dropFirst(fixed).map(String.init)).joined(separator: ".")
    }
}

/// Renames by the first matching rule; a key no rule matches is an error naming it (and the others).
public func renameStrictly(_ tensors: [String: Tensor], rules: [KeyRule], layout: String) throws -> ConvertedCheckpoint {
    var out = ConvertedCheckpoint(tensors: [:])
    var unknown: [String] = []
    for key in tensors.keys.sorted() {
        guard let target = rules.lazy.compactMap({ $0.apply(key) }).first else { unknown.append(key); continue }
        out.tensors[target] = tensors[key]
        if target != key { out.renamed.append((key, target)) }
    }
    guard unknown.isEmpty else {
        throw CheckpointLayoutError(layout: layout, problem: "\(unknown.count) tensor(s) it does not know: "
                                    + unknown.prefix(8).joined(separator: ", ") + (unknown.count > 8 ? ", …" : ""))
    }
    return out
}
