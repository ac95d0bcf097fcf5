// A fixed set of persistent worker threads that run one parallel job at a time.
import CBLAS
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Persistent threads for `Threading.parallelFor`. A job is split into `parts`; part 0 runs on
/// the calling thread and parts 1… on the workers.
///
/// Kernels arrive back to back during a forward or backward pass, so after a job a worker spins
/// for a short while (about 0.2 ms) watching for the next one before it sleeps on its semaphore;
/// waking a sleeping thread costs tens of microseconds, as much as a small kernel. The caller
/// waits for the workers the same way: it spins briefly, then sleeps until the last worker to
/// finish wakes it, so a long part (or a worker the OS has descheduled) costs no busy yielding.
final class WorkerPool: @unchecked Sendable {
    private let workerCount: Int
    private let slots: [WorkerSlot]
    /// Incremented once per job; workers compare it with the last job they saw.
    private let generation = Atomic<Int>(0)
    /// Parts of the current job not finished yet.
    private let remaining = Atomic<Int>(0)
    private var job: ((Int) -> Void)?
    private var parts = 0

    /// Spin iterations before a worker sleeps.
    private static let spinLimit = 20_000
    /// Spin iterations before the caller sleeps while workers finish their parts.
    private static let callerSpinLimit = 20_000
    /// 1 while the caller sleeps (or is about to) on `finished`; the worker that finishes the last
    /// part takes the flag and signals.
    private let callerSleeping = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)

    /// A pool able to run `threads` parts at once (`threads − 1` workers plus the caller).
    init(threads: Int) {
        workerCount = max(threads - 1, 0)
        slots = (0..<workerCount).map { _ in WorkerSlot() }
        for index in 0..<workerCount {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 8 << 20)
            let created = pthread_create(&thread, &attributes, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                ssf_flush_denormals()
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
            remaining.store(parts - 1, ordering: .relaxed)
            // Sequentially consistent with the worker's "sleeping" store and re-check below, so
            // either the worker sees the new generation or this sees it asleep and signals it.
            generation.add(1, ordering: .sequentiallyConsistent)
            for slot in slots where slot.sleeping.load(ordering: .sequentiallyConsistent) == 1 { slot.wakeUp.signal() }
            body(0)
            var spins = 0
            while remaining.load(ordering: .acquiring) > 0 && spins < WorkerPool.callerSpinLimit { spins += 1 }
            if remaining.load(ordering: .acquiring) > 0 {
                callerSleeping.store(1, ordering: .sequentiallyConsistent)
                if remaining.load(ordering: .sequentiallyConsistent) > 0 {
                    finished.wait()
                } else if callerSleeping.exchange(0, ordering: .sequentiallyConsistent) == 0 {
                    // The last worker took the flag after all: consume its signal.
                    finished.wait()
                }
            }
            job = nil
        }
    }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            var current = generation.load(ordering: .acquiring)
            var spins = 0
            while current == seen && spins < WorkerPool.spinLimit {
                spins += 1
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                let slot = slots[index]
                slot.sleeping.store(1, ordering: .sequentiallyConsistent)
                current = generation.load(ordering: .sequentiallyConsistent)
                if current == seen { slot.wakeUp.wait() }
                slot.sleeping.store(0, ordering: .releasing)
                continue
            }
            seen = current
            if index + 1 < parts {
                job?(index + 1)
                if remaining.subtract(1, ordering: .sequentiallyConsistent).newValue == 0,
                   callerSleeping.exchange(0, ordering: .sequentiallyConsistent) == 1 {
                    finished.signal()
                }
            }
        }
    }
}

/// A worker's wake-up semaphore and its "asleep" flag (1 while it sleeps or is about to).
private final class WorkerSlot: @unchecked Sendable {
    let wakeUp = DispatchSemaphore(value: 0)
    let sleeping = Atomic<Int>(0)
}

private final class WorkerContext {
    let pool: WorkerPool
    let index: Int
    init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
}
