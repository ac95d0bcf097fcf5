// A prefetching batch loader: worker threads decode and augment batches ahead of the consumer
// (at most `prefetch` batches ahead); every random draw comes from (seed, epoch, index), so the
// batches are the same whatever the number of workers.
import Foundation
import SSFEngine

/// One batch of samples.
public struct Batch: @unchecked Sendable {
    /// `[N, 3, H, W]` normalised images (shape `[0]` when every sample of the batch was skipped).
    public var images: Tensor
    /// Hard labels, in batch order.
    public var labels: [Int]
    /// `[N, classes]` soft targets when mixup/cutmix is on, else nil.
    public var targets: Tensor?
    /// Dataset indices of the samples, in batch order.
    public var indices: [Int]
    /// Samples left out under `BadImagePolicy.skip`, with their errors.
    public var skipped: [(identity: String, problem: String)]
}

/// One process's part of a data-parallel run: process `rank` of `worldSize`.
public struct Shard: Sendable, Equatable {
    public let rank: Int
    public let worldSize: Int
    public init(rank: Int, worldSize: Int) {
        precondition(worldSize > 0 && (0..<worldSize).contains(rank), "shard \(rank) of \(worldSize)")
        self.rank = rank; self.worldSize = worldSize
    }
    /// The whole dataset in one process.
    public static let single = Shard(rank: 0, worldSize: 1)
}

/// Loads batches of a dataset for one epoch at a time.
///
/// With a `shard`, batch b is the rank's `batchSize` samples of the global batch b of
/// `batchSize × worldSize` samples, taken in the single-process order: the ranks' batches b
/// together are exactly the single-process batch b of that global size, with the same
/// per-sample augmentation (the draws depend on (seed, epoch, sample), not on the rank).
/// Mixup mixes within each rank's batch.
public struct DataLoader: Sendable {
    public let dataset: any ImageDataset
    public var batchSize: Int
    public var shuffle: Bool
    public var dropLast: Bool
    public var transform: any SampleTransform
    public var mixup: Mixup?
    public var workers: Int
    public var prefetch: Int
    public var seed: UInt64
    public var badImages: BadImagePolicy
    /// Decode JPEG files at a reduced DCT scale where the transform's `minimumSourceSide` allows
    /// (faster on large photos; the pixels then differ slightly from a full decode and resize).
    public var reducedDecoding = false
    /// This process's part of the data (`.single`: all of it).
    public var shard: Shard = .single

    /// `workers: 0` loads on the consumer's thread.
    public init(dataset: any ImageDataset, batchSize: Int, shuffle: Bool, dropLast: Bool = false, transform: any SampleTransform,
                mixup: Mixup? = nil, workers: Int = 2, prefetch: Int = 4, seed: UInt64 = 0, badImages: BadImagePolicy = .fail) {
        precondition(batchSize > 0, "batch size must be positive")
        self.dataset = dataset; self.batchSize = batchSize; self.shuffle = shuffle; self.dropLast = dropLast
        self.transform = transform; self.mixup = mixup; self.workers = workers; self.prefetch = max(prefetch, 1)
        self.seed = seed; self.badImages = badImages
    }

    /// Samples of one global batch (every rank's batch together).
    public var globalBatchSize: Int { batchSize * shard.worldSize }

    /// The number of batches per epoch (the same on every rank).
    public var batchCount: Int {
        dropLast ? dataset.count / globalBatchSize : (dataset.count + globalBatchSize - 1) / globalBatchSize
    }

    /// The sample order of an epoch: a seeded shuffle, or dataset order.
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<dataset.count)
        guard shuffle else { return order }
        var rng = RandomGenerator(seed: mix(seed, UInt64(epoch), 0x5348_5546))
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.integer(0, i)) }
        return order
    }

    /// The generator a sample's transform draws from in `epoch` (seeded by the loader's seed, the epoch and
    /// the sample index, so a sample's augmentation does not depend on the batch it lands in).
    public func sampleGenerator(epoch: Int, index: Int) -> RandomGenerator {
        RandomGenerator(seed: mix(seed, UInt64(epoch), UInt64(index) &+ 1))
    }

    /// Sample indices of batch `b` of an epoch whose sample order is `order` (this rank's part).
    public func batchIndices(_ b: Int, order: [Int]) -> ArraySlice<Int> {
        let globalStart = b * globalBatchSize
        let start = min(globalStart + shard.rank * batchSize, order.count)
        return order[start..<min(start + batchSize, globalStart + globalBatchSize, order.count)]
    }

    /// Batch `b` of an epoch whose sample order is `order`.
    public func batch(_ b: Int, epoch: Int, order: [Int]) throws -> Batch {
        let indices = Array(batchIndices(b, order: order))
        var tensors: [Tensor] = [], labels: [Int] = [], kept: [Int] = [], skipped: [(String, String)] = []
        for index in indices {
            var rng = sampleGenerator(epoch: epoch, index: index)
            do {
                let (image, label) = try reducedDecoding && transform.minimumSourceSide != nil
                    ? dataset.sample(at: index, minimumSide: transform.minimumSourceSide!) : dataset.sample(at: index)
                tensors.append(transform(image, using: &rng)); labels.append(label); kept.append(index)
            } catch {
                guard badImages == .skip else { throw error }
                skipped.append((dataset.identity(at: index), "\(error)"))
            }
        }
        guard let first = tensors.first else {
            return Batch(images: Tensor(shape: [0], repeating: 0), labels: [], targets: nil, indices: [], skipped: skipped)
        }
        var images = Tensor(uninitializedShape: [tensors.count] + first.shape)
        let p = images.mutablePointer()
        for (i, t) in tensors.enumerated() {
            precondition(t.shape == first.shape, "transform produced \(t.shape) and \(first.shape) in one batch")
            (p + i * t.count).update(from: t.pointer, count: t.count)
        }
        var targets: Tensor?
        if let mixup {
            var rng = RandomGenerator(seed: mix(seed, UInt64(epoch), 0x4D49_5855_0000_0000 | UInt64(b)))
            let decision = mixup.decide(height: first.shape[1], width: first.shape[2], using: &rng)
            targets = mixup.apply(decision, images: &images, labels: labels)
        }
        return Batch(images: images, labels: labels, targets: targets, indices: kept, skipped: skipped)
    }

    /// The batches of `epoch` from batch `firstBatch` on (to resume mid-epoch), produced ahead by the worker threads.
    public func epoch(_ epoch: Int, from firstBatch: Int = 0) -> EpochIterator {
        EpochIterator(loader: self, epoch: epoch, firstBatch: firstBatch)
    }
}

/// SplitMix-style mixing of three words into one seed.
private func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    var z = a &* 0x9E37_79B9_7F4A_7C15 ^ (b &+ 0x632B_E59B_D9B4_E019) &* 0xBF58_476D_1CE4_E5B9 ^ c &* 0x94D0_49BB_1331_11EB
    z = (z ^ (z >> 31)) &* 0xD6E8_FEB8_6659_FD93
    return z ^ (z >> 32)
}

/// Iterates one epoch's batches in order; worker threads fill a bounded window ahead of it.
/// Dropping the iterator (or `stop()`) ends the workers after their current batch.
public final class EpochIterator: @unchecked Sendable {
    private let state: EpochState

    init(loader: DataLoader, epoch: Int, firstBatch: Int) {
        state = EpochState(loader: loader, epoch: epoch, firstBatch: firstBatch)
        for _ in 0..<min(loader.workers, max(state.total - firstBatch, 0)) {
            let thread = Thread { [state] in state.work() }
            thread.stackSize = 1 << 22
            thread.start()
        }
    }

    deinit { state.stop() }

    /// Asks the workers to stop after the batch each is producing.
    public func stop() { state.stop() }

    /// The next batch, or nil at the end of the epoch; rethrows a loading error (naming the image).
    public func next() throws -> Batch? { try state.next() }
}

/// The shared state of an epoch's workers and its consumer, guarded by one condition.
private final class EpochState: @unchecked Sendable {
    let loader: DataLoader
    let epoch: Int
    let order: [Int]
    let total: Int
    private let condition = NSCondition()
    private var results: [Int: Result<Batch, Error>] = [:]
    private var nextToClaim = 0
    private var nextToReturn = 0
    private var stopped = false

    init(loader: DataLoader, epoch: Int, firstBatch: Int) {
        self.loader = loader; self.epoch = epoch
        order = loader.order(epoch: epoch)
        total = loader.batchCount
        nextToClaim = firstBatch; nextToReturn = firstBatch
    }

    func stop() {
        condition.lock(); stopped = true; condition.broadcast(); condition.unlock()
    }

    func work() {
        while true {
            condition.lock()
            while !stopped && nextToClaim < total && nextToClaim >= nextToReturn + loader.prefetch { condition.wait() }
            guard !stopped, nextToClaim < total else { condition.unlock(); return }
            let b = nextToClaim
            nextToClaim += 1
            condition.unlock()
            let result = Result { try loader.batch(b, epoch: epoch, order: order) }
            condition.lock(); results[b] = result; condition.broadcast(); condition.unlock()
        }
    }

    func next() throws -> Batch? {
        guard nextToReturn < total else { return nil }
        if loader.workers == 0 {
            defer { nextToReturn += 1 }
            return try loader.batch(nextToReturn, epoch: epoch, order: order)
        }
        condition.lock()
        while results[nextToReturn] == nil { condition.wait() }
        let result = results.removeValue(forKey: nextToReturn)!
        nextToReturn += 1
        condition.broadcast()
        condition.unlock()
        return try result.get()
    }
}
