// Reference-counted, 64-byte-aligned Float32 buffer that backs every Tensor.
import CBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps freed small buffers in the process heap for reuse instead of returning them to the
/// system (large ones are `LargeBuffers`' business).
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
    static let allocatedBytesCounter = Atomic<Int>(0)
    static let mappedBytesCounter = Atomic<Int>(0)

    /// Bytes currently held by tensor storages.
    public static var liveBytes: Int { liveBytesCounter.load(ordering: .relaxed) }
    /// Bytes of every storage allocated since the process started.
    public static var allocatedBytes: Int { allocatedBytesCounter.load(ordering: .relaxed) }
    /// Bytes of fresh memory mapped for large tensor buffers since the process started: what the
    /// buffer cache did not serve, each byte a page to fault in and zero.
    public static var freshlyMappedBytes: Int { mappedBytesCounter.load(ordering: .relaxed) }
    /// Number of storages allocated since the process started.
    public static var allocations: Int { allocationsCounter.load(ordering: .relaxed) }
    /// The most bytes held at once since the last `resetPeak()`.
    public static var peakLiveBytes: Int { peakLiveBytesCounter.load(ordering: .relaxed) }
    /// Starts a new peak measurement from the current live bytes.
    public static func resetPeak() { peakLiveBytesCounter.store(liveBytes, ordering: .relaxed) }

    /// Returns memory kept for reuse to the system: the cached mappings of freed large buffers and
    /// the heap's free space. For a long-running process after a phase it will not repeat (a server
    /// after loading), and before a resident-memory measurement.
    public static func releaseFreedMemory() {
        LargeBuffers.releaseCache()
        ssf_release_freed_memory()
    }

    /// Current resident memory of this process in MiB (Linux; elsewhere the peak).
    public static func residentMiB() -> Double {
        #if os(Linux)
        if let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
           let kib = Double(line.split(separator: " ").dropFirst().first ?? "") {
            return kib / 1024
        }
        #endif
        return peakResidentMiB()
    }

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
        let raw = LargeBuffers.serves(bytes) ? LargeBuffers.allocate(bytes)
                                             : UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        let live = StorageStats.liveBytesCounter.add(bytes, ordering: .relaxed).newValue
        StorageStats.peakLiveBytesCounter.max(live, ordering: .relaxed)
        StorageStats.allocationsCounter.add(1, ordering: .relaxed)
        StorageStats.allocatedBytesCounter.add(bytes, ordering: .relaxed)
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
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        StorageStats.liveBytesCounter.subtract(bytes, ordering: .relaxed)
        if LargeBuffers.serves(bytes) { LargeBuffers.release(UnsafeMutableRawPointer(pointer), bytes) } else { UnsafeMutableRawPointer(pointer).deallocate() }
    }
}

/// Large tensor buffers live in their own anonymous memory mappings (with transparent huge pages
/// where the kernel allows them), so freeing one returns its memory to the system: a training
/// step's peak resident memory stays close to its peak of live tensors, where a heap would keep
/// the holes that the step's changing mix of sizes leaves behind. Recently freed mappings are
/// kept for the next request of the same size: steps repeat the same sizes, and a reused mapping
/// costs no page faults. The cache holds up to `cacheLimit` bytes, or more while live tensors and
/// cached mappings together stay within the peak of live tensors (so the resident memory stays
/// near that peak): a training step frees its activations after the backward and maps them again
/// in the next forward, and a step whose activations exceed the fixed limit would otherwise fault
/// in gigabytes of fresh pages every step (Swin-B full fine-tuning at batch 8: 2.6 GiB of tensors,
/// 1.20 img/s with a 1 GiB cache, 1.55 with the peak rule, peak RSS 3120 → 3164 MiB).
enum LargeBuffers {
    /// Buffers from this size up are mapped (smaller ones come from malloc).
    static let threshold = 1 << 20
    /// Mapping sizes are rounded up to this, so nearby sizes share cache entries.
    static let granule = 1 << 16
    /// At most 1 GiB or an eighth of the machine's memory; `SSF_BUFFER_CACHE_MIB` sets it (and then
    /// it is a hard limit, without the peak rule).
    /// (Measured on ViT-B, Swin-B, ConvNeXt-B at batch 8: 256 MiB keeps SSF training fast but
    /// leaves full fine-tuning re-faulting its weight gradients every step; 1 GiB serves both.)
    static let cacheLimit: Int = {
        if let text = getenv("SSF_BUFFER_CACHE_MIB"), let mib = Int(String(cString: text)), mib >= 0 { return mib << 20 }
        #if os(Linux)
        let physical = sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
        return min(1 << 30, max(physical / 8, 64 << 20))
        #else
        return 1 << 30
        #endif
    }()
    /// How far live and cached bytes together may exceed the peak of live tensors: an eighth of it,
    /// at least 32 MiB. Without it, the buffers cached at the peak's moment (sizes the step needs
    /// only later) would be evicted and mapped again every step: at batch 8, SSF training mapped
    /// 190 MiB of fresh pages per step on ConvNeXt-B and 237 MiB on Swin-B at zero slack, 9 and
    /// 86 MiB with this one, for 16–36 MiB more peak RSS.
    static func peakSlack(_ peak: Int) -> Int { max(peak / 8, 32 << 20) }
    static let cacheLimitIsFixed = getenv("SSF_BUFFER_CACHE_MIB") != nil

    struct Cache {
        var free: [Int: [UnsafeMutableRawPointer]] = [:]
        /// Cached mappings, oldest first (evicted first).
        var order: [(size: Int, pointer: UnsafeMutableRawPointer)] = []
        var bytes = 0

        /// Removes and returns a cached mapping of `size` bytes (one must be there).
        mutating func take(_ size: Int) -> UnsafeMutableRawPointer {
            let p = free[size]!.removeLast()
            if free[size]!.isEmpty { free[size] = nil }
            bytes -= size
            if let i = order.firstIndex(where: { $0.pointer == p }) { order.remove(at: i) }
            return p
        }
    }
    static let cache = Mutex(Cache())

    @inline(__always) static func serves(_ bytes: Int) -> Bool {
        #if os(Linux)
        return bytes >= threshold
        #else
        return false
        #endif
    }

    static func size(_ bytes: Int) -> Int { (bytes + granule - 1) / granule * granule }

    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = size(bytes)
        let cached = cache.withLock { c -> (pointer: UnsafeMutableRawPointer, size: Int)? in
            var have = size
            if c.free[size] == nil {
                // No mapping of this size: the nearest one, resized, serves it (only the pages it gains
                // are faulted in). Larger ones count only up to twice the size, so a small request does
                // not throw away most of a large mapping's pages.
                guard let nearest = c.free.keys.filter({ $0 <= 2 * size }).min(by: { abs($0 - size) < abs($1 - size) }) else { return nil }
                have = nearest
            }
            let p = c.take(have)
            return (p, have)
        }
        if let cached {
            if cached.size == size { return cached.pointer }
            #if os(Linux)
            if let q = ssf_remap(cached.pointer, cached.size, size) {
                StorageStats.mappedBytesCounter.add(max(0, size - cached.size), ordering: .relaxed)
                return q
            }
            munmap(cached.pointer, cached.size)
            #else
            cached.pointer.deallocate()
            #endif
        }
        StorageStats.mappedBytesCounter.add(size, ordering: .relaxed)
        #if os(Linux)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory: cannot map \(size) bytes for a tensor")
        }
        _ = madvise(p, size, MADV_HUGEPAGE)
        return p
        #else
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        #endif
    }

    /// Unmaps every cached mapping.
    static func releaseCache() {
        let all = cache.withLock { c -> [(size: Int, pointer: UnsafeMutableRawPointer)] in
            let order = c.order
            c = Cache()
            return order
        }
        #if os(Linux)
        for e in all { munmap(e.pointer, e.size) }
        #endif
    }

    static func release(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        let size = size(bytes)
        var evicted: [(size: Int, pointer: UnsafeMutableRawPointer)] = []
        cache.withLock { c in
            c.free[size, default: []].append(p)
            c.order.append((size, p))
            c.bytes += size
            let peak = StorageStats.peakLiveBytes
            let limit = cacheLimitIsFixed ? cacheLimit : max(cacheLimit, peak + peakSlack(peak) - StorageStats.liveBytes)
            var dropped = 0
            while c.bytes > limit, dropped < c.order.count {
                let oldest = c.order[dropped]
                dropped += 1
                if let i = c.free[oldest.size]?.firstIndex(of: oldest.pointer) {
                    c.free[oldest.size]!.remove(at: i)
                    if c.free[oldest.size]!.isEmpty { c.free[oldest.size] = nil }
                }
                c.bytes -= oldest.size
                evicted.append(oldest)
            }
            c.order.removeFirst(dropped)
        }
        #if os(Linux)
        for e in evicted { munmap(e.pointer, e.size) }
        #endif
    }
}
