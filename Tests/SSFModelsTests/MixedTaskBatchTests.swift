// One frozen backbone, several tasks in one batch: with per-sample SSF vectors in effect, each
// sample's output equals that task's model run alone.
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels

final class MixedTaskBatchTests: XCTestCase {
    private func check(_ name: String, _ model: ImageClassifier, size: Int) {
        var rng = RandomGenerator(seed: 8)
        model.enableSSF(using: &rng)
        model.setTraining(false)
        let sites = model.declaredSSFSites()
        // Two tasks' vectors for every site.
        let tasks = (0..<2).map { _ in sites.map { s in
            (Tensor.randomNormal([s.site.channels], mean: 1, std: 0.3, using: &rng), Tensor.randomNormal([s.site.channels], std: 0.3, using: &rng))
        } }
        let images = Tensor.randomNormal([3, 3, size, size], using: &rng)
        let assignment = [1, 0, 1]
        // Each task alone.
        var alone: [[Float]] = []
        for (n, task) in assignment.enumerated() {
            for (s, (scale, shift)) in zip(sites, tasks[task]) { s.site.scale.value = scale; s.site.shift.value = shift }
            alone.append(model(images.slice(axis: 0, range: n..<(n + 1))).scalars)
        }
        // Mixed batch: the site's own vectors are set to something else, the per-sample ones win.
        for s in sites { s.site.scale.value = .zeros([s.site.channels]); s.site.shift.value = .zeros([s.site.channels]) }
        let vectors = SSFTaskVectors()
        for (i, s) in sites.enumerated() {
            vectors.set(s.site, scale: stack(assignment.map { tasks[$0][i].0 }), shift: stack(assignment.map { tasks[$0][i].1 }))
        }
        let mixed = vectors.applying { model(images) }
        let classes = mixed.shape[1]
        for n in 0..<3 {
            let got = Array(mixed.scalars[(n * classes)..<((n + 1) * classes)])
            let diff = zip(got, alone[n]).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-4 * max(1, alone[n].map(abs).max()!), "\(name) sample \(n)")
        }
    }

    private func stack(_ rows: [Tensor]) -> Tensor { concat(rows.map { $0.reshaped([1, $0.count]) }, axis: 0) }

    func testEveryFamily() {
        var rng = RandomGenerator(seed: 1)
        check("vit", VisionTransformer(config: .init(imgSize: 16, patchSize: 8, numClasses: 4, embedDim: 12, depth: 2, numHeads: 2), using: &rng), size: 16)
        check("swin", SwinTransformer(config: .init(imgSize: 32, patchSize: 4, numClasses: 4, embedDim: 12, depths: [2, 1], numHeads: [2, 2], windowSize: 4, dropPathRate: 0), using: &rng), size: 32)
        check("convnext", ConvNeXt(config: .init(depths: [1, 1], dims: [8, 16], numClasses: 4), using: &rng), size: 32)
        check("asmlp", ASMLP(config: .init(embedDim: 8, depths: [1, 1], numClasses: 4, dropPathRate: 0), using: &rng), size: 32)
        let stages: [EfficientNetConfig.Stage] = [.init(.depthwiseSeparable, repeats: 1, kernelSize: 3, stride: 1, expansion: 1, channels: 8),
                                                  .init(.invertedResidual, repeats: 2, kernelSize: 5, stride: 2, expansion: 3, channels: 16)]
        check("efficientnet", EfficientNet(config: .init(stages: stages, stemChannels: 8, numFeatures: 32, numClasses: 4, padding: .tensorFlowSame, batchNormEps: 1e-3), using: &rng), size: 32)
    }
}
