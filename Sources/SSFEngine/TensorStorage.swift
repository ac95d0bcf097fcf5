// Reference-counted, 64-byte-aligned Float32 buffer that backs every Tensor.
import CBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps large freed buffers in the process heap for reuse instead of returning them to the
/// system, so a training or inference step does not page-fault its activations in anew every
/// time (glibc would otherwise serve each large tensor with a fresh mmap).
private let heapReuseConfigured: Bool = {
    ssf_keep_freed_memory()
    return true
}()

/// Live-allocation counters, used by tests and benchmarks to prove that a code path
/// allocates nothing it keeps.
public enum StorageStats {
    static let liveBytesCounter = Atomic<Int>(0)
    static let allocationsCounter = Atomic<Int>(0)
    static let peakLiveBytesCounter = Atomic<Int>(0)

    /// Bytes currently held by tensor storages.
    public static var liveBytes: Int { liveBytesCounter.load(ordering: .relaxed) }
    /// Number of storages allocated since the process started.
    public static var allocations: Int { allocationsCounter.load(ordering: .relaxed) }
    /// The most bytes held at once since the last `resetPeak()`.
    public static var peakLiveBytes: Int { peakLiveBytesCounter.load(ordering: .relaxed) }
    /// Starts a new peak measurement from the current live bytes.
    public static func resetPeak() { peakLiveBytesCounter.store(liveBytes, ordering: .relaxed) }

    /// Peak resident memory of this process in MiB (tensors, allocator and libraries together).
    public static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}

/// A fixed-size Float32 buffer aligned to 64 bytes (one cache line, one AVX-512 vector).
public final class TensorStorage: @unchecked Sendable {
    /// Number of Float32 elements.
    public let count: Int
    /// Start of the buffer; valid for `count` elements while the storage is alive.
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` uninitialised elements.
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "negative element count")
        _ = heapReuseConfigured
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        let live = StorageStats.liveBytesCounter.add(bytes, ordering: .relaxed).newValue
        StorageStats.peakLiveBytesCounter.max(live, ordering: .relaxed)
        StorageStats.allocationsCounter.add(1, ordering: .relaxed)
    }

    /// Allocates `count` elements set to `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// Allocates a copy of `count` elements starting at `source`.
    public convenience init(copying source: UnsafePointer<Float>, count: Int) {
        self.init(uninitializedCount: count)
        pointer.update(from: source, count: count)
    }

    deinit {
        StorageStats.liveBytesCounter.subtract(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
        UnsafeMutableRawPointer(pointer).deallocate()
    }
}
