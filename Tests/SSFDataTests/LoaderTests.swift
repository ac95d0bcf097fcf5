// The prefetching loader: identical batches whatever the worker count, seeded shuffles, bad-image policies.
import Foundation
import XCTest
import SSFEngine
@testable import SSFData

final class LoaderTests: XCTestCase {
    private func syntheticDataset(count: Int) -> PixelArrayDataset {
        var rng = RandomGenerator(seed: 77)
        let pixels = (0..<count * 3 * 20 * 24).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return PixelArrayDataset(width: 24, height: 20, channels: 3, pixels: pixels, labels: (0..<count).map { $0 % 4 },
                                 classNames: ["a", "b", "c", "d"], source: "synthetic")
    }

    private func trainTransform() throws -> TrainTransform {
        TrainTransform(crop: RandomResizedCrop(size: 16), randAugment: try RandAugment(config: "rand-m9-mstd0.5-inc1"),
                       mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], erasing: RandomErasing(probability: 0.25))
    }

    private func collect(_ loader: DataLoader, epoch: Int) throws -> [Batch] {
        let it = loader.epoch(epoch)
        var batches: [Batch] = []
        while let b = try it.next() { batches.append(b) }
        return batches
    }

    func testBatchesAreIdenticalForAnyWorkerCount() throws {
        let data = syntheticDataset(count: 23)
        let mixup = Mixup(classCount: 4)
        var reference: [Batch]?
        for workers in [0, 1, 3] {
            let loader = DataLoader(dataset: data, batchSize: 5, shuffle: true, transform: try trainTransform(), mixup: mixup,
                                    workers: workers, prefetch: 2, seed: 42)
            let batches = try collect(loader, epoch: 1)
            XCTAssertEqual(batches.count, 5)
            XCTAssertEqual(batches.map(\.images.shape), [[5, 3, 16, 16], [5, 3, 16, 16], [5, 3, 16, 16], [5, 3, 16, 16], [3, 3, 16, 16]])
            XCTAssertEqual(batches.flatMap(\.indices).sorted(), Array(0..<23))
            XCTAssertEqual(batches[0].targets?.shape, [5, 4])
            if let reference {
                for (a, b) in zip(batches, reference) {
                    XCTAssertEqual(a.indices, b.indices, "workers \(workers)")
                    XCTAssertEqual(a.labels, b.labels)
                    XCTAssertEqual(a.images.scalars, b.images.scalars, "workers \(workers)")
                    XCTAssertEqual(a.targets?.scalars, b.targets?.scalars)
                }
            } else {
                reference = batches
            }
        }
        // Another epoch reshuffles and redraws; the same epoch again repeats exactly.
        let loader = DataLoader(dataset: data, batchSize: 5, shuffle: true, transform: try trainTransform(), workers: 2, seed: 42)
        XCTAssertNotEqual(loader.order(epoch: 1), loader.order(epoch: 2))
        XCTAssertEqual(loader.order(epoch: 2), loader.order(epoch: 2))
        XCTAssertEqual(try collect(loader, epoch: 3).map(\.images.scalars), try collect(loader, epoch: 3).map(\.images.scalars))
        XCTAssertEqual(DataLoader(dataset: data, batchSize: 5, shuffle: true, dropLast: true, transform: try trainTransform()).batchCount, 4)
        // Resuming at batch 3 gives the uninterrupted run's batches 3 and 4.
        let full = try collect(loader, epoch: 4)
        let it = loader.epoch(4, from: 3)
        var resumed: [Batch] = []
        while let b = try it.next() { resumed.append(b) }
        XCTAssertEqual(resumed.map(\.indices), full[3...].map(\.indices))
        XCTAssertEqual(resumed.map(\.images.scalars), full[3...].map(\.images.scalars))
    }

    /// Sharded by (rank, world size), the ranks' batch b together is the single-process batch b of
    /// the global size: the same samples in the same order with the same augmentation.
    func testShardsPartitionTheSingleProcessBatches() throws {
        let data = syntheticDataset(count: 23)
        let world = 3
        var single = DataLoader(dataset: data, batchSize: 4 * world, shuffle: true, transform: try trainTransform(), workers: 0, seed: 42)
        let reference = try collect(single, epoch: 2)
        var ranks: [[Batch]] = []
        for rank in 0..<world {
            var loader = single
            loader.batchSize = 4
            loader.shard = Shard(rank: rank, worldSize: world)
            loader.workers = rank  // any worker count gives the same batches
            XCTAssertEqual(loader.batchCount, reference.count)
            ranks.append(try collect(loader, epoch: 2))
        }
        for (b, whole) in reference.enumerated() {
            let parts = ranks.map { $0[b] }
            XCTAssertEqual(parts.flatMap(\.indices), whole.indices, "batch \(b): samples or order differ")
            let joined = parts.flatMap { $0.images.shape == [0] ? [] : $0.images.scalars }
            XCTAssertEqual(joined, whole.images.scalars, "batch \(b): augmentation differs")
        }
        // 23 samples in global batches of 12: the last global batch has 11, rank 2 gets 3.
        XCTAssertEqual(ranks.map { $0.last!.indices.count }, [4, 4, 3])
        single.dropLast = true
        single.batchSize = 4
        single.shard = Shard(rank: 1, worldSize: world)
        XCTAssertEqual(single.batchCount, 1)
    }

    func testEvalLoaderKeepsOrderAndStopsEarly() throws {
        let data = syntheticDataset(count: 9)
        let eval = EvalTransform(imageSize: 16, cropFraction: 0.875, filter: .bicubic, mean: [0, 0, 0], std: [1, 1, 1])
        let loader = DataLoader(dataset: data, batchSize: 4, shuffle: false, transform: eval, workers: 2, prefetch: 1)
        let batches = try collect(loader, epoch: 0)
        XCTAssertEqual(batches.flatMap(\.indices), Array(0..<9))
        XCTAssertEqual(batches.flatMap(\.labels), (0..<9).map { $0 % 4 })
        XCTAssertNil(batches[0].targets)
        let expected = eval(try data.sample(at: 5).image)
        XCTAssertEqual(Array(batches[1].images.scalars[expected.count..<2 * expected.count]), expected.scalars)
        // Abandoning an epoch after one batch returns promptly.
        let it = DataLoader(dataset: data, batchSize: 1, shuffle: false, transform: eval, workers: 2, prefetch: 1).epoch(0)
        XCTAssertNotNil(try it.next())
        it.stop()
    }

    func testBadImagePolicies() throws {
        let root = try XCTUnwrap(Bundle.module.url(forResource: "datasets", withExtension: nil, subdirectory: "Fixtures"))
        let data = try DatasetSpec(parsing: "imagefolder:" + root.appendingPathComponent("bad").path).open(split: "train")
        let direct = DirectResizeTransform(size: 8, mean: [0, 0, 0], std: [1, 1, 1])
        for workers in [0, 2] {
            let failing = DataLoader(dataset: data, batchSize: 2, shuffle: false, transform: direct, workers: workers)
            XCTAssertThrowsError(try collect(failing, epoch: 0)) { XCTAssertTrue("\($0)".contains("broken.jpg"), "\($0)") }
            let skipping = DataLoader(dataset: data, batchSize: 2, shuffle: false, transform: direct, workers: workers, badImages: .skip)
            let batches = try collect(skipping, epoch: 0)
            XCTAssertEqual(batches.count, 1)
            XCTAssertEqual(batches[0].images.shape, [1, 3, 8, 8])
            XCTAssertEqual(batches[0].skipped.count, 1)
            XCTAssertTrue(batches[0].skipped[0].identity.hasSuffix("bad/train/x/broken.jpg"))
        }
    }
}
