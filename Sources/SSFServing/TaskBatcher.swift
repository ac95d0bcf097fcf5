// Dynamic batching across requests and tasks: one queue of preprocessed images, drained by one
// compute thread into batches of up to `maxBatch` images or whatever arrived within `maxDelay`.
import Foundation
import SSFEngine
import SSFTuning

/// The queue is full: the request is refused (HTTP 503) rather than waiting without bound.
public struct QueueFull: Error {}

/// Runs `MultiTaskModel.logits` over batches mixing every task.
public final class TaskBatcher: @unchecked Sendable {
    private struct Item {
        let image: Tensor
        let task: String
        let done: (Result<[Float], Error>) -> Void
    }

    public let maxBatch: Int
    public let maxDelay: TimeInterval
    public let maxQueue: Int
    private let model: MultiTaskModel
    private let condition = NSCondition()
    private var queue: [Item] = []
    private var stopping = false
    private var thread: Thread?
    /// Sizes of the batches run so far (for `/metrics`), and the images they held.
    public private(set) var batches = 0, batchedImages = 0

    public init(model: MultiTaskModel, maxBatch: Int, maxDelay: TimeInterval, maxQueue: Int) {
        self.model = model; self.maxBatch = max(1, maxBatch); self.maxDelay = maxDelay; self.maxQueue = max(1, maxQueue)
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
            queue.append(Item(image: image, task: task) { continuation.resume(with: $0) })
            condition.broadcast()
        }
    }

    /// Finishes the queued images, then stops the compute thread.
    public func stop() {
        condition.lock(); stopping = true; condition.broadcast(); condition.unlock()
    }

    /// Runs a closure on the compute thread's model between batches (adding or removing a task).
    public func withModel<R>(_ body: (MultiTaskModel) throws -> R) rethrows -> R {
        condition.lock(); defer { condition.unlock() }
        return try body(model)
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping { condition.unlock(); return }
            // Wait up to maxDelay for a full batch.
            let deadline = Date().addingTimeInterval(maxDelay)
            while queue.count < maxBatch && !stopping && condition.wait(until: deadline) {}
            let items = Array(queue.prefix(maxBatch))
            queue.removeFirst(items.count)
            // The model runs under the lock, so tasks change only between batches.
            let result: Result<[[Float]], Error> = Result {
                let images = concat(items.map { $0.image.reshaped([1] + $0.image.shape) }, axis: 0)
                return try model.logits(images, tasks: items.map(\.task))
            }
            batches += 1; batchedImages += items.count
            condition.unlock()
            switch result {
            case .success(let rows): for (item, row) in zip(items, rows) { item.done(.success(row)) }
            case .failure(let error): for item in items { item.done(.failure(error)) }
            }
        }
    }
}
