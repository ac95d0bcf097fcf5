// The evaluation loader with a corruption: the same seed gives the same batches, another seed
// other noise, and without a corruption the loader is the plain evaluation transform's.
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFTraining
import XCTest

final class CorruptedLoaderTests: XCTestCase {
    private func firstBatch(seed: UInt64, corruption: CorruptionSpec?) throws -> [Float] {
        let dataset = ProceduralShapesDataset(task: .source, count: 12, seed: 4)
        var config = TrainingConfig()
        config.batchSize = 6; config.workers = 0; config.seed = seed
        let preprocess = PreprocessConfig(inputSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], cropFraction: 1, interpolation: .bicubic)
        let batches = TrainingData.evalLoader(dataset, config: config, preprocess: preprocess, corruption: corruption).epoch(0)
        return try XCTUnwrap(try batches.next()).images.scalars
    }

    func testSeededAndOptional() throws {
        let noise = CorruptionSpec(.shotNoise, severity: 4)
        XCTAssertEqual(try firstBatch(seed: 1, corruption: noise), try firstBatch(seed: 1, corruption: noise))
        XCTAssertNotEqual(try firstBatch(seed: 1, corruption: noise), try firstBatch(seed: 2, corruption: noise))
        // Without a corruption the seed plays no part; with a deterministic one it does not either.
        XCTAssertEqual(try firstBatch(seed: 1, corruption: nil), try firstBatch(seed: 2, corruption: nil))
        let contrast = CorruptionSpec(.contrast, severity: 2)
        XCTAssertEqual(try firstBatch(seed: 1, corruption: contrast), try firstBatch(seed: 2, corruption: contrast))
        XCTAssertNotEqual(try firstBatch(seed: 1, corruption: contrast), try firstBatch(seed: 1, corruption: nil))
    }
}
