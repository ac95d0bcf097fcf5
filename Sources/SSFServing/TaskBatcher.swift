// Dynamic batching across requests and tasks: one queue of preprocessed images, drained by one
// compute thread into batches of up to `maxBatch` images or whatever arrived within `maxDelay`.
import Foundation
import SSFEngine
import SSFTuning

/// The queue is full: the request is refused (HTTP 503) rather than waiting without bound.
public struct QueueFull: Error {}

/// Runs a `TaskBatchModel` (a `MultiTaskModel`, or one merged task) over batches mixing every task.
public final class TaskBatcher: @unchecked Sendable {
    private struct Item {
        let image: Tensor
        let task: String
        let queued: Date
        let done: (Result<[Float], Error>) -> Void
    }

    public let maxBatch: Int
    public let maxDelay: TimeInterval
    public let maxQueue: Int
    private let model: any TaskBatchModel
    /// Hears each batch's size and how long each of its images waited in the queue.
    private let observe: @Sendable (_ size: Int, _ waits: [TimeInterval]) -> Void
    private let condition = NSCondition()
    private var queue: [Item] = []
    private var stopping = false
    private var thread: Thread?

    public init(model: any TaskBatchModel, maxBatch: Int, maxDelay: TimeInterval, maxQueue: Int,
                observe: @escaping @Sendable (_ size: Int, _ waits: [TimeInterval]) -> Void = { _, _ in }) {
        self.model = model; self.observe = observe; self.maxBatch = max(1, maxBatch); self.maxDelay = maxDelay; self.maxQueue = max(1, maxQueue)
        let thread = Thread { [unowned self] in self.loop() }
        thread.stackSize = 1 << 22
        self.thread = thread
        thread.start()
    }

    /// Images waiting.
    public var depth: Int { condition.lock(); defer { condition.unlock() }; return queue.count }

    /// The logits of one `[3, H, W]` image under `task`, once its batch has run.
    public func logits(_ image: Tensor, task: String) async throws -> [Float] {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            defer { condition.unlock() }
            guard !stopping, queue.count < maxQueue else { continuation.resume(throwing: QueueFull()); return }
            queue.append(Item(image: image, task: task, queued: Date()) { continuation.resume(with: $0) })
            condition.broadcast()
        }
    }

    /// Finishes the queued images, then stops the compute thread.
    public func stop() {
        condition.lock(); stopping = true; condition.broadcast(); condition.unlock()
    }

    /// Runs `body` between batches (adding or removing a task of the model).
    public func betweenBatches<R>(_ body: () throws -> R) rethrows -> R {
        condition.lock(); defer { condition.unlock() }
        return try body()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping { condition.unlock(); return }
            // Wait up to maxDelay for a full batch.
            let deadline = Date().addingTimeInterval(maxDelay)
            while queue.count < maxBatch && !stopping && condition.wait(until: deadline) {}
            let taken = Array(queue.prefix(maxBatch))
            queue.removeFirst(taken.count)
            let started = Date()
            // An image whose task was unloaded after it was queued fails alone, not its batch.
            let items = taken.filter { model.serves($0.task) }
            let dropped = taken.filter { !model.serves($0.task) }
            // The model runs under the lock, so tasks change only between batches.
            let result: Result<[[Float]], Error> = items.isEmpty ? .success([]) : Result {
                let images = concat(items.map { $0.image.reshaped([1] + $0.image.shape) }, axis: 0)
                return try model.logits(images, tasks: items.map(\.task))
            }
            condition.unlock()
            for item in dropped { item.done(.failure(TaskLoadError(task: item.task, problem: "was unloaded before its batch ran"))) }
            if !items.isEmpty { observe(items.count, items.map { started.timeIntervalSince($0.queued) }) }
            switch result {
            case .success(let rows): for (item, row) in zip(items, rows) { item.done(.success(row)) }
            case .failure(let error): for item in items { item.done(.failure(error)) }
            }
        }
    }
}
