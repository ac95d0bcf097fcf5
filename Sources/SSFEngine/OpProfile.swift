// Where a step's time goes, per op kind: while `OpProfile.measure` runs, each engine op called from
// the model (the outermost op only: one that calls another counts as itself) adds its wall time, its
// calls, the floating-point operations of its GEMMs and direct convolutions, and the bytes of the
// tensors it allocated; each recorded op's backward adds the same under "<kind> backward". Off, an op
// pays one load and branch.
import Dispatch
import Synchronization

/// The per-op-kind profile of one or more steps.
public struct OpProfileReport: Sendable {
    public struct Entry: Sendable {
        /// e.g. "linear", "depthwise conv backward".
        public let name: String
        public var seconds = 0.0
        public var calls = 0
        /// Floating-point operations counted (multiply and add separately; 0 where not counted).
        public var flops = 0.0
        /// Bytes of the tensors the op allocated (its outputs and scratch).
        public var bytesAllocated = 0.0
    }

    /// Entries by time, largest first.
    public var entries: [Entry]
    /// Wall time of the measured body.
    public var totalSeconds: Double
    /// Time inside no profiled op (optimiser, loss bookkeeping, framework overhead).
    public var unattributedSeconds: Double { max(0, totalSeconds - entries.reduce(0) { $0 + $1.seconds }) }
}

public enum OpProfile {
    nonisolated(unsafe) public static var active = false
    nonisolated(unsafe) static var depth = 0
    nonisolated(unsafe) static var current: String?
    /// Operations counted so far. GEMMs inside parallel loops (attention's per-head products) add
    /// to it from worker threads at the same time, so it is atomic.
    @usableFromInline static let flopCount = Atomic<Int>(0)
    nonisolated(unsafe) static var totals: [String: OpProfileReport.Entry] = [:]

    /// Runs `body` (on the calling thread; ops it runs on worker threads are timed from here) with
    /// the profile on and returns its result and the profile.
    public static func measure<R>(_ body: () throws -> R) rethrows -> (R, OpProfileReport) {
        totals = [:]; depth = 0; flopCount.store(0, ordering: .relaxed); current = nil
        active = true
        defer { active = false }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (result, OpProfileReport(entries: totals.values.sorted { $0.seconds > $1.seconds }, totalSeconds: seconds))
    }

    /// Runs an op's body, timed under `kind` when the profile is on and no other op encloses it.
    @inlinable @inline(__always)
    public static func run<R>(_ kind: StaticString, _ body: () -> R) -> R {
        guard active else { return body() }
        return timed(String(describing: kind), body)
    }

    @usableFromInline static func timed<R>(_ name: String, _ body: () -> R) -> R {
        guard depth == 0 else { return body() }
        depth += 1; current = name
        let flopsBefore = flopCount.load(ordering: .relaxed), bytesBefore = StorageStats.allocatedBytes
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        depth -= 1; current = nil
        var entry = totals[name] ?? OpProfileReport.Entry(name: name)
        entry.seconds += seconds; entry.calls += 1
        entry.flops += Double(flopCount.load(ordering: .relaxed) - flopsBefore)
        entry.bytesAllocated += Double(StorageStats.allocatedBytes - bytesBefore)
        totals[name] = entry
        return result
    }

    /// The kind of the op being recorded now (its backward is timed under "<kind> backward").
    static var recordingKind: String? { active ? current : nil }

    /// Adds floating-point operations to the op being timed.
    @inlinable @inline(__always)
    public static func addFlops(_ count: Int) {
        if active { flopCount.wrappingAdd(count, ordering: .relaxed) }
    }
}
