// Counts the multiply-adds of the compute-heavy ops while a measurement runs (for `ssf inspect`).

/// Counts multiply-accumulate operations of linear, matmul, convolution and attention ops.
/// Counting is off except inside `countMultiplyAdds`, where ops on the calling thread add
/// their analytic MAC count (elementwise ops are not counted, as in fvcore and timm).
public enum FlopCounter {
    nonisolated(unsafe) static var active = false
    nonisolated(unsafe) static var total = 0

    /// Runs `body` and returns the multiply-adds its ops performed.
    public static func countMultiplyAdds(_ body: () throws -> Void) rethrows -> Int {
        total = 0
        active = true
        defer { active = false }
        try body()
        return total
    }

    @inline(__always) static func add(_ macs: Int) {
        if active { total += macs }
    }
}
