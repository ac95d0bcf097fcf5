// The seams data-parallel training builds on: the trainable gradients in one flat buffer, and a
// hook between backward and the update whose result clipping and the optimiser see.
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
@testable import SSFTraining
@testable import SSFTuning

final class GradientSeamTests: XCTestCase {
    private func tinyViT(seed: UInt64) -> VisionTransformer {
        var rng = RandomGenerator(seed: seed)
        let model = VisionTransformer(config: .init(imgSize: 16, patchSize: 8, numClasses: 3, embedDim: 12, depth: 1, numHeads: 2), using: &rng)
        TuningMethod.ssf.apply(to: model, using: &rng)
        for (_, p) in model.trainableParameters { p.value = Tensor.randomNormal(p.value.shape, mean: 0.5, std: 0.3, using: &rng) }
        return model
    }

    private func sgdConfig(clip: Double? = nil) -> TrainingConfig {
        var config = TrainingConfig()
        config.opt = "sgd"; config.momentum = 0; config.weightDecay = 0; config.lr = 0.1
        config.epochs = 1; config.warmupEpochs = 0; config.minLR = 0.1; config.smoothing = 0; config.clipGrad = clip
        return config
    }

    private let images: Tensor = { var r = RandomGenerator(seed: 9); return Tensor.randomNormal([4, 3, 16, 16], using: &r) }()
    private let labels = [0, 2, 1, 2]

    /// Parameter i's span of the flat buffer is exactly its gradient from the tape.
    func testFlatBufferHoldsEachParametersGradient() throws {
        let model = tinyViT(seed: 1)
        let step = try TrainingStep(model: model, config: sgdConfig(), updatesPerEpoch: 1)
        _ = step.accumulate(images: images, labels: labels)
        let tape = Tape()
        let loss = tape.recording { crossEntropy(model(images), labels: labels) }
        let grads = tape.backward(from: loss)
        let flat = step.gradients
        XCTAssertEqual(flat.total, step.trainable.reduce(0) { $0 + $1.1.count })
        for (i, (name, p)) in step.trainable.enumerated() {
            let span = Array(flat.buffer[flat.offsets[i] ..< flat.offsets[i] + flat.counts[i]])
            XCTAssertEqual(span, try XCTUnwrap(grads[key: p]).scalars, name)
        }
    }

    /// The hook runs before clipping and the update: doubling the buffer there doubles an SGD
    /// step, and with clipping the step is clipped after the hook (its norm is lr · clip).
    func testHookRunsBeforeClippingAndTheUpdate() throws {
        func displacement(clip: Double?, hookFactor: Float?) throws -> [Float] {
            let model = tinyViT(seed: 1)
            let before = model.trainableParameters.flatMap { $0.1.value.scalars }
            let step = try TrainingStep(model: model, config: sgdConfig(clip: clip), updatesPerEpoch: 1)
            var calls = 0
            if let hookFactor {
                step.gradientHook = { g in calls += 1; for j in 0..<g.total { g.buffer[j] *= hookFactor } }
            }
            _ = step.accumulate(images: images, labels: labels)
            try step.update(index: 0)
            XCTAssertEqual(calls, hookFactor == nil ? 0 : 1)
            XCTAssertFalse(step.hasPendingGradients)
            return zip(model.trainableParameters.flatMap { $0.1.value.scalars }, before).map { $0 - $1 }
        }
        let plain = try displacement(clip: nil, hookFactor: nil)
        let doubled = try displacement(clip: nil, hookFactor: 2)
        for (a, b) in zip(doubled, plain) { XCTAssertEqual(a, 2 * b, accuracy: 1e-6 + 1e-5 * abs(b)) }
        let clipped = try displacement(clip: 0.5, hookFactor: 1000)
        let norm = clipped.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        XCTAssertEqual(norm, 0.1 * 0.5, accuracy: 1e-4)
    }

    /// A hook that averages two processes' buffers gives the update of one process that saw both
    /// batches (accumulated over a group of two): the shape of an all-reduce.
    func testAveragingHookMatchesAccumulationOverBothHalves() throws {
        let halves = [(images.slice(axis: 0, range: 0..<2), Array(labels[0..<2])), (images.slice(axis: 0, range: 2..<4), Array(labels[2..<4]))]
        // One process, both halves accumulated as a group of 2.
        let single = tinyViT(seed: 1)
        let step = try TrainingStep(model: single, config: sgdConfig(clip: 1.0), updatesPerEpoch: 1)
        for (x, y) in halves { _ = step.accumulate(images: x, labels: y, groupSize: 2) }
        try step.update(index: 0)
        // Two "ranks", each with one half; the hook averages their buffers.
        let ranks = [tinyViT(seed: 1), tinyViT(seed: 1)]
        let steps = try ranks.map { try TrainingStep(model: $0, config: sgdConfig(clip: 1.0), updatesPerEpoch: 1) }
        for (s, (x, y)) in zip(steps, halves) { _ = s.accumulate(images: x, labels: y) }
        let total = steps[0].gradients.total
        let mean = (0..<total).map { j in (steps[0].gradients.buffer[j] + steps[1].gradients.buffer[j]) / 2 }
        for s in steps {
            s.gradientHook = { g in for j in 0..<g.total { g.buffer[j] = mean[j] } }
            try s.update(index: 0)
        }
        let want = single.trainableParameters.flatMap { $0.1.value.scalars }
        for rank in ranks {
            for (a, b) in zip(rank.trainableParameters.flatMap { $0.1.value.scalars }, want) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        }
    }
}
