// One frozen base serving many SSF tasks: a mixed batch gives each image its own task's logits, as
// that task's model alone and as its merged plain model would.
import XCTest
import SSFEngine
import SSFNN
import SSFTestSupport
@testable import SSFModels
@testable import SSFTuning

final class MultiTaskModelTests: XCTestCase {
    private let modelName = "demo_vit_patch4_32"

    /// A task: the base with random SSF vectors and a random head of `classes` classes.
    private func task(base: [String: Tensor], classes: Int, seed: UInt64) throws -> LoadedModel {
        let loaded = try TuningMethod.ssf.load(model: modelName, state: base, numClasses: classes, seed: seed)
        var rng = RandomGenerator(seed: seed &+ 100)
        for (key, p) in loaded.model.namedParameters() where TuningMethod.isSSF(key) || loaded.spec.isHeadParameter(key) {
            let mean: Float = key.contains("ssf_scale") ? 1 : 0
            p.value = Tensor.randomNormal(p.value.shape, mean: mean, std: key.contains("ssf") ? 0.2 : 0.5, using: &rng)
        }
        loaded.model.setTraining(false)
        return loaded
    }

    func testMixedBatchOfEightTasksMatchesEachTaskAloneAndMerged() throws {
        let base = try ModelRegistry.create(modelName, numClasses: 8, seed: 1).stateDict()
        let served = try MultiTaskModel(model: modelName, base: base)
        var models: [String: LoadedModel] = [:]
        for t in 0..<8 {
            let loaded = try task(base: base, classes: 3 + t % 4, seed: UInt64(10 + t))
            let delta = DeltaFile(ssfState: loaded.model.stateDict(), baseModel: modelName, classNames: (0..<(3 + t % 4)).map { "c\($0)" })
            try served.add("task\(t)", delta: delta)
            models["task\(t)"] = loaded
        }
        XCTAssertEqual(served.tasks.count, 8)
        var rng = RandomGenerator(seed: 7)
        let images = Tensor.randomNormal([8, 3, 32, 32], using: &rng)
        let order = ["task5", "task0", "task3", "task7", "task1", "task6", "task2", "task4"]
        let mixed = try served.logits(images, tasks: order)
        for (n, taskName) in order.enumerated() {
            let image = images.slice(axis: 0, range: n..<(n + 1))
            let tuned = try XCTUnwrap(models[taskName])
            let alone = tuned.model(image)
            let got = Tensor(shape: alone.shape, mixed[n])
            XCTAssertLessThanOrEqual(relativeError(got, alone, floor: 1), 1e-5, "\(taskName): mixed batch vs the task alone")
            // The task merged into plain weights.
            let verified = try MethodMerge.mergeAndVerify(tuned, method: .ssf)
            let plain = try ModelRegistry.create(modelName, numClasses: tuned.model.numClasses)
            XCTAssertTrue(plain.load(stateDict: verified.state).isExact)
            plain.setTraining(false)
            XCTAssertLessThanOrEqual(relativeError(got, plain(image), floor: 1), 1e-5, "\(taskName): mixed batch vs the merged task")
        }
        // A batch of one task and a repeated task give the same rows (to rounding: BLAS kernels may
        // treat a row differently with another number of rows around it).
        let again = try served.logits(images.slice(axis: 0, range: 0..<2), tasks: ["task5", "task5"])
        XCTAssertEqual(again[0].count, mixed[0].count)
        for (x, y) in zip(again[0], mixed[0]) { XCTAssertEqual(x, y, accuracy: 1e-6 * max(1, abs(y)), "task5 alone vs in the mixed batch") }
    }

    func testTasksMadeOnAnotherBaseOrMissingAreRefused() throws {
        let base = try ModelRegistry.create(modelName, numClasses: 8, seed: 1).stateDict()
        let served = try MultiTaskModel(model: modelName, base: base)
        let otherBase = try ModelRegistry.create(modelName, numClasses: 8, seed: 2).stateDict()
        let foreign = try task(base: otherBase, classes: 3, seed: 4)
        XCTAssertThrowsError(try served.add("foreign", delta: DeltaFile(ssfState: foreign.model.stateDict(), baseModel: modelName))) { error in
            XCTAssertTrue("\(error)".contains("different \(modelName) checkpoint"), "\(error)")
        }
        let other = try task(base: base, classes: 3, seed: 4)
        XCTAssertThrowsError(try served.add("vit", delta: DeltaFile(ssfState: other.model.stateDict(), baseModel: "vit_tiny_patch16_224"))) { error in
            XCTAssertTrue("\(error)".contains("adapts vit_tiny_patch16_224"), "\(error)")
        }
        try served.add("mine", delta: DeltaFile(ssfState: other.model.stateDict(), baseModel: modelName))
        var rng = RandomGenerator(seed: 1)
        XCTAssertThrowsError(try served.logits(Tensor.randomNormal([1, 3, 32, 32], using: &rng), tasks: ["nope"])) { error in
            XCTAssertTrue("\(error)".contains("loaded: mine"), "\(error)")
        }
        XCTAssertTrue(served.remove("mine"))
        XCTAssertFalse(served.remove("mine"))
    }
}
