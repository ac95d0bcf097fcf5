// Loading a checkpoint's tensors into a module tree, with a report of what did not match.
import SSFEngine

/// What happened when a state dictionary was loaded into a model.
public struct LoadReport: CustomStringConvertible, Sendable {
    /// Model tensors the checkpoint did not provide (they keep their initial values).
    public var missing: [String] = []
    /// Checkpoint tensors the model has no place for (ignored).
    public var unexpected: [String] = []
    /// Tensors present on both sides with different shapes (model value kept).
    public var shapeMismatches: [(name: String, model: [Int], checkpoint: [Int])] = []
    /// Number of tensors copied into the model.
    public var loaded = 0

    public var isExact: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty }

    public var description: String {
        var lines = ["loaded \(loaded) tensors"]
        if !missing.isEmpty { lines.append("missing (\(missing.count)): " + missing.joined(separator: ", ")) }
        if !unexpected.isEmpty { lines.append("unexpected (\(unexpected.count)): " + unexpected.joined(separator: ", ")) }
        for m in shapeMismatches { lines.append("shape mismatch \(m.name): model \(m.model), checkpoint \(m.checkpoint)") }
        return lines.joined(separator: "\n")
    }
}

extension Module {
    /// Copies matching tensors from `state` into the model by name and reports the rest.
    /// Names in `ignoring` are neither copied nor reported.
    @discardableResult
    public func load(stateDict state: [String: Tensor], ignoring: Set<String> = []) -> LoadReport {
        var report = LoadReport()
        var seen = Set<String>()
        for (name, p) in namedParameters() where !ignoring.contains(name) {
            seen.insert(name)
            guard let t = state[name] else { report.missing.append(name); continue }
            if t.shape != p.value.shape {
                // A [C] vector stored as [1, …, C] (or the reverse) is the same data.
                if t.count == p.value.count && t.shape.filter({ $0 != 1 }) == p.value.shape.filter({ $0 != 1 }) {
                    p.value = t.reshaped(p.value.shape)
                    report.loaded += 1
                } else {
                    report.shapeMismatches.append((name, p.value.shape, t.shape))
                }
                continue
            }
            p.value = t
            report.loaded += 1
        }
        report.unexpected = state.keys.filter { !seen.contains($0) && !ignoring.contains($0) }.sorted()
        return report
    }
}
