import Foundation
import SSFAnalysis
import SSFData
import SSFEngine
import SSFModels
import XCTest

final class CKATests: XCTestCase {
    private struct Reference: Decodable {
        let n: Int, dx: Int, dy: Int, batch: Int
        let rbf_sigma_fraction: Double
        let x: [Float], y: [Float], z: [Float]
        let hsic_xy_first_batch_linear: Double
        let gram_x_first_batch_rbf: [Double]
        let cka_xy_linear: Double, cka_xy_rbf: Double, cka_xz_linear: Double, cka_xy_linear_one_batch: Double
    }

    private func reference() throws -> Reference {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "cka_reference", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    private func gram(_ values: [Float], rows: Range<Int>, d: Int, kernel: CKAKernel) -> GramMatrix {
        values.withUnsafeBufferPointer { GramMatrix(features: $0.baseAddress! + rows.lowerBound * d, n: rows.count, d: d, kernel: kernel) }
    }

    private func minibatchCKA(_ a: [Float], _ da: Int, _ b: [Float], _ db: Int, n: Int, batch: Int, kernel: CKAKernel) -> Double? {
        var cka = MinibatchCKA()
        for start in stride(from: 0, to: n, by: batch) {
            let rows = start..<min(start + batch, n)
            cka.add(gram(a, rows: rows, d: da, kernel: kernel), gram(b, rows: rows, d: db, kernel: kernel))
        }
        return cka.value
    }

    /// Against NumPy (tools/gen_cka_fixtures.py): the HSIC estimate, the RBF Gram matrix and minibatch CKA, within 1e-6.
    func testMatchesNumPyReference() throws {
        let r = try reference()
        let hsic = unbiasedHSIC(gram(r.x, rows: 0..<r.batch, d: r.dx, kernel: .linear), gram(r.y, rows: 0..<r.batch, d: r.dy, kernel: .linear))
        XCTAssertEqual(hsic, r.hsic_xy_first_batch_linear, accuracy: 1e-6 * abs(r.hsic_xy_first_batch_linear))
        let rbf = CKAKernel.rbf(sigmaFraction: r.rbf_sigma_fraction)
        let k = gram(r.x, rows: 0..<r.batch, d: r.dx, kernel: rbf)
        XCTAssertEqual(k.values.count, r.gram_x_first_batch_rbf.count)
        let worst = zip(k.values, r.gram_x_first_batch_rbf).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-6)

        XCTAssertEqual(try XCTUnwrap(minibatchCKA(r.x, r.dx, r.y, r.dy, n: r.n, batch: r.batch, kernel: .linear)), r.cka_xy_linear, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(minibatchCKA(r.x, r.dx, r.y, r.dy, n: r.n, batch: r.batch, kernel: rbf)), r.cka_xy_rbf, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(minibatchCKA(r.x, r.dx, r.z, r.dy, n: r.n, batch: r.batch, kernel: .linear)), r.cka_xz_linear, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(minibatchCKA(r.x, r.dx, r.y, r.dy, n: r.n, batch: r.n, kernel: .linear)), r.cka_xy_linear_one_batch, accuracy: 1e-6)
        // The related pair is far more similar than the unrelated one.
        XCTAssertGreaterThan(r.cka_xy_linear, r.cka_xz_linear + 0.3)
    }

    /// A random orthogonal d×d matrix (Gram–Schmidt on normal columns, in Float64).
    private func orthogonal(_ d: Int, seed: UInt64) -> [Double] {
        var rng = RandomGenerator(seed: seed)
        var q = [Double](repeating: 0, count: d * d)   // column-major columns
        for c in 0..<d {
            var v = (0..<d).map { _ in Double(rng.nextNormal()) }
            for p in 0..<c {
                let dot = (0..<d).reduce(0.0) { $0 + v[$1] * q[p * d + $1] }
                for i in 0..<d { v[i] -= dot * q[p * d + i] }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<d { q[c * d + i] = v[i] / norm }
        }
        return q
    }

    /// CKA is 1 between a representation and its rotation or its isotropic scaling, for both kernels.
    func testInvariantToOrthogonalTransformAndIsotropicScaling() throws {
        let r = try reference()
        let q = orthogonal(r.dx, seed: 5)
        var rotated = [Float](repeating: 0, count: r.n * r.dx)
        for i in 0..<r.n {
            for c in 0..<r.dx {
                var s = 0.0
                for k in 0..<r.dx { s += Double(r.x[i * r.dx + k]) * q[c * r.dx + k] }
                rotated[i * r.dx + c] = Float(s)
            }
        }
        let scaled = r.x.map { $0 * 7.5 }
        for kernel in [CKAKernel.linear, .rbf(sigmaFraction: 0.8)] {
            XCTAssertEqual(try XCTUnwrap(minibatchCKA(r.x, r.dx, rotated, r.dx, n: r.n, batch: r.batch, kernel: kernel)), 1, accuracy: 1e-6, "\(kernel) rotation")
            XCTAssertEqual(try XCTUnwrap(minibatchCKA(r.x, r.dx, scaled, r.dx, n: r.n, batch: r.batch, kernel: kernel)), 1, accuracy: 1e-6, "\(kernel) scaling")
        }
        // A shift of every feature changes nothing either (the columns are centred).
        let shifted = r.x.enumerated().map { $0.element + Float($0.offset % r.dx) }
        XCTAssertEqual(try XCTUnwrap(minibatchCKA(r.x, r.dx, shifted, r.dx, n: r.n, batch: r.batch, kernel: .linear)), 1, accuracy: 1e-6)
    }

    func testConstantRepresentationHasNoCKA() throws {
        let r = try reference()
        let constant = [Float](repeating: 3, count: r.n * 4)
        XCTAssertNil(minibatchCKA(r.x, r.dx, constant, 4, n: r.n, batch: r.batch, kernel: .linear))
        XCTAssertNil(MinibatchCKA().value)
    }

    // MARK: Layers of real models

    private func loader(images: Int = 24, batch: Int = 8, size: Int = 16) -> DataLoader {
        let data = ProceduralShapesDataset(task: .source, count: images, size: 24, seed: 9)
        let transform = EvalTransform(imageSize: size, cropFraction: 1, filter: .bilinear, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        return DataLoader(dataset: data, batchSize: batch, shuffle: false, transform: transform, workers: 1, seed: 0)
    }

    private func vit(depth: Int, seed: UInt64, classes: Int = 3) -> VisionTransformer {
        var rng = RandomGenerator(seed: seed)
        return VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: classes, embedDim: 16, depth: depth, numHeads: 2), using: &rng)
    }

    /// One tap per block plus the pre-logit features; a model against itself (or against itself with
    /// another head) is 1 at every layer, against a differently initialised model less.
    func testLayerGramsOfViTBlocks() throws {
        let base = try LayerGrams(model: vit(depth: 3, seed: 1), loader: loader(), kernel: .linear)
        XCTAssertEqual(base.layerCount, 4)
        XCTAssertEqual(base.layerNames, ["block 1", "block 2", "block 3", "pre-logits"])
        XCTAssertEqual(base.batches.count, 3)
        XCTAssertEqual(base.images, 24)

        let same = try LayerGrams(model: vit(depth: 3, seed: 1), loader: loader(), kernel: .linear).cka(with: base)
        for value in same { XCTAssertEqual(try XCTUnwrap(value), 1, accuracy: 1e-9) }

        let otherHead = vit(depth: 3, seed: 1, classes: 3)
        var rng = RandomGenerator(seed: 77)
        otherHead.resetHead(numClasses: 5, using: &rng)
        for value in try LayerGrams(model: otherHead, loader: loader(), kernel: .linear).cka(with: base) { XCTAssertEqual(try XCTUnwrap(value), 1, accuracy: 1e-9) }

        let other = try LayerGrams(model: vit(depth: 3, seed: 2), loader: loader(), kernel: .linear).cka(with: base)
        let values = other.compactMap { $0 }
        XCTAssertEqual(values.count, 4)
        XCTAssertTrue(values.allSatisfy { $0 < 0.999 && $0 > -1 }, "\(values)")
    }

    func testMismatchedModelsAreRefused() throws {
        let three = try LayerGrams(model: vit(depth: 3, seed: 1), loader: loader(), kernel: .linear)
        let two = try LayerGrams(model: vit(depth: 2, seed: 1), loader: loader(), kernel: .linear)
        XCTAssertThrowsError(try two.cka(with: three)) { XCTAssertTrue("\($0)".contains("not the same architecture"), "\($0)") }
        let fewer = try LayerGrams(model: vit(depth: 3, seed: 1), loader: loader(images: 16), kernel: .linear)
        XCTAssertThrowsError(try fewer.cka(with: three)) { XCTAssertTrue("\($0)".contains("same images"), "\($0)") }
    }

    /// A last batch of fewer than 4 images is left out (the estimator needs 4).
    func testSmallLastBatchIsSkipped() throws {
        let grams = try LayerGrams(model: vit(depth: 1, seed: 1), loader: loader(images: 19, batch: 8), kernel: .linear)
        XCTAssertEqual(grams.images, 16)
    }

    /// Every EfficientNet block is a tap.
    func testEfficientNetBlocksAreTapped() throws {
        var rng = RandomGenerator(seed: 11)
        let stages: [EfficientNetConfig.Stage] = [.init(.depthwiseSeparable, repeats: 1, kernelSize: 3, stride: 1, expansion: 1, channels: 8),
                                                 .init(.invertedResidual, repeats: 2, kernelSize: 3, stride: 2, expansion: 2, channels: 8)]
        let model = EfficientNet(config: EfficientNetConfig(stages: stages, stemChannels: 8, numFeatures: 16, numClasses: 2, padding: .symmetric,
                                                            batchNormEps: 1e-3, dropPathRate: 0), using: &rng)
        let grams = try LayerGrams(model: model, loader: loader(size: 32), kernel: .linear)
        XCTAssertEqual(grams.layerCount, 4)
    }
}
