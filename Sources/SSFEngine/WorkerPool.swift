// A fixed set of persistent worker threads that run one parallel job at a time.
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Persistent threads for `Threading.parallelFor`. A job is split into `parts`; part 0 runs
/// on the calling thread and parts 1… on the workers, which sleep on semaphores between jobs.
final class WorkerPool: @unchecked Sendable {
    private let workerCount: Int
    private let start: [DispatchSemaphore]
    private let done = DispatchSemaphore(value: 0)
    private var job: ((Int) -> Void)?
    private var parts = 0

    /// A pool able to run `threads` parts at once (`threads − 1` workers plus the caller).
    init(threads: Int) {
        workerCount = max(threads - 1, 0)
        start = (0..<workerCount).map { _ in DispatchSemaphore(value: 0) }
        for index in 0..<workerCount {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 8 << 20)
            let created = pthread_create(&thread, &attributes, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop(context.index)
                return nil
            }, context)
            precondition(created == 0, "cannot start worker thread (error \(created))")
            pthread_attr_destroy(&attributes)
            pthread_detach(thread)
        }
    }

    /// The most parts one job can have.
    var capacity: Int { workerCount + 1 }

    /// Runs `body(part)` for `part` in `0..<parts` (at most `capacity`) and returns when all finished.
    func run(parts: Int, _ body: (Int) -> Void) {
        precondition(parts >= 1 && parts <= capacity, "WorkerPool.run: \(parts) parts for \(capacity) threads")
        withoutActuallyEscaping(body) { body in
            job = body
            self.parts = parts
            for w in 0..<(parts - 1) { start[w].signal() }
            body(0)
            for _ in 0..<(parts - 1) { done.wait() }
            job = nil
        }
    }

    private func workerLoop(_ index: Int) {
        while true {
            start[index].wait()
            job?(index + 1)
            done.signal()
        }
    }
}

private final class WorkerContext {
    let pool: WorkerPool
    let index: Int
    init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
}
