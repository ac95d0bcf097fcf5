// The engine's thread budget, shared by our parallel loops and by BLAS so the two never oversubscribe the cores.
import CBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal mutex over pthread_mutex_t.
final class PthreadMutex: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}

/// Controls how many threads the engine uses, for its own loops and for BLAS together.
///
/// BLAS always runs single-threaded; `BLAS.sgemm` splits a large product across the engine's
/// own workers instead, so no second thread pool spins on the cores between calls.
public enum Threading {
    /// Read before any BLAS call (`BLAS.sgemm` asks for it), so BLAS is single-threaded from the start.
    nonisolated(unsafe) private static var budget: Int = {
        ssf_blas_set_threads(1)
        return defaultThreadCount()
    }()
    nonisolated(unsafe) private static var pool: WorkerPool?
    private static let poolLock = PthreadMutex()

    /// The number of threads in use.
    public static var threads: Int { budget }

    /// The default budget: `SSF_NUM_THREADS` if set, otherwise the number of online cores.
    public static func defaultThreadCount() -> Int {
        if let env = getenv("SSF_NUM_THREADS"), let n = Int(String(cString: env)), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Sets the budget for our loops and for BLAS; `nil` restores the default. The calling thread,
    /// like the engine's workers, then flushes denormal results to zero (values below 1.2e-38, which
    /// training never needs and which cost Intel cores a microcode assist per instruction).
    public static func configure(threads: Int?) {
        budget = max(1, threads ?? defaultThreadCount())
        ssf_blas_set_threads(1)
        ssf_flush_denormals()
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, one per thread, on up to
    /// `threads` threads. Work below `minimumPerThread` items per thread stays on the caller.
    @inlinable public static func parallelFor(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let workers = min(threads, count / max(minimumPerThread, 1))
        if workers <= 1 || isInParallelRegion {
            if count > 0 { body(0..<count) }
            return
        }
        runParallel(count: count, workers: workers, body)
    }

    /// Whether a parallel loop is running (its workers, and other threads meanwhile, run loops serially).
    public static var isInParallelRegion: Bool { poolInUse.load(ordering: .relaxed) }

    /// The shared pool, grown when the budget needs more threads than it has.
    private static func workerPool(for workers: Int) -> WorkerPool {
        poolLock.locked {
            if let pool, pool.capacity >= workers { return pool }
            let grown = WorkerPool(threads: max(workers, budget))
            pool = grown
            return grown
        }
    }

    /// Set while one thread uses the worker pool; another thread asking for it meanwhile (a data
    /// loader's, say) runs its loop itself instead of sharing the pool.
    private static let poolInUse = Atomic<Bool>(false)

    @usableFromInline static func runParallel(count: Int, workers: Int, _ body: (Range<Int>) -> Void) {
        guard poolInUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            body(0..<count)
            return
        }
        defer { poolInUse.store(false, ordering: .releasing) }
        workerPool(for: workers).run(parts: workers) { w in
            let lo = count * w / workers
            let hi = count * (w + 1) / workers
            if lo < hi { body(lo..<hi) }
        }
    }
}
