// Google ViT (.npz naming) to timm: exact tensors and logits from the vit_jax fixture, whose `jax.*`
// tensors tools/gen_model_fixtures_vit.py checked against timm's own `_load_weights`; plus the
// prefixed, big_vision and scanned layouts, pre-logits, and clear errors.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
import SSFTestSupport

final class GoogleViTMappingTests: XCTestCase {
    private func assertSameTensors(_ a: [String: Tensor], _ b: [String: Tensor], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), file: file, line: line)
        for (key, value) in b {
            XCTAssertEqual(a[key]?.shape, value.shape, key, file: file, line: line)
            XCTAssertEqual(a[key]?.scalars, value.scalars, key, file: file, line: line)
        }
    }

    func testMapsGoogleNamesToTimmTensorsExactly() throws {
        let f = try ViTFixture("vit_jax")
        let jax = tensors(withPrefix: "jax.", in: f.file)
        XCTAssertTrue(isGoogleViTCheckpoint(jax))
        XCTAssertFalse(isGoogleViTCheckpoint(f.state))
        assertSameTensors(try googleViTToTimm(jax, numHeads: f.config.numHeads), f.state)
    }

    func testMappedCheckpointGivesTimmLogits() throws {
        let f = try ViTFixture("vit_jax")
        let model = f.makeModel()
        let adapted = try vitAdaptCheckpoint(tensors(withPrefix: "jax.", in: f.file), config: f.config)
        XCTAssertTrue(model.load(stateDict: adapted).isExact)
        XCTAssertLessThanOrEqual(relativeError(model(f["input"]), f["logits"], floor: 1), 1e-4)
    }

    func testOptimizerPrefixAndExtraKeys() throws {
        let f = try ViTFixture("vit_jax")
        var wrapped: [String: Tensor] = ["opt/state/step": Tensor(scalar: 3)]
        for (k, v) in tensors(withPrefix: "jax.", in: f.file) { wrapped["opt/target/" + k] = v }
        assertSameTensors(try googleViTToTimm(wrapped, numHeads: f.config.numHeads), f.state)
    }

    func testBigVisionNamesAndScannedBlocks() throws {
        let f = try ViTFixture("vit_jax")
        let jax = tensors(withPrefix: "jax.", in: f.file)
        // big_vision: `params/` prefix, top-level `pos_embedding`, attention 0, second norm 1, MLP 0.
        var bigVision: [String: Tensor] = [:]
        for (k, v) in jax {
            let name = k == "Transformer/posembed_input/pos_embedding" ? "pos_embedding"
                : k.replacingOccurrences(of: "MultiHeadDotProductAttention_1", with: "MultiHeadDotProductAttention_0")
                    .replacingOccurrences(of: "LayerNorm_2", with: "LayerNorm_1")
                    .replacingOccurrences(of: "MlpBlock_3", with: "MlpBlock_0")
            bigVision["params/" + name] = v
        }
        assertSameTensors(try googleViTToTimm(bigVision, numHeads: f.config.numHeads), f.state)
        // Scanned: one `Transformer/encoderblock/…` tensor per name with a leading depth axis.
        var scanned = jax.filter { !$0.key.hasPrefix("Transformer/encoderblock_") }
        let inner = Set(jax.keys.filter { $0.hasPrefix("Transformer/encoderblock_0/") }.map { $0.dropFirst("Transformer/encoderblock_0/".count) })
        for name in inner {
            scanned["Transformer/encoderblock/" + name] = stack((0..<f.config.depth).map { jax["Transformer/encoderblock_\($0)/" + name]! }, axis: 0)
        }
        assertSameTensors(try googleViTToTimm(scanned, numHeads: f.config.numHeads), f.state)
    }

    func testPreLogitsMapToTheRemovedRepresentationLayer() throws {
        let f = try ViTFixture("vit_jax")
        var jax = tensors(withPrefix: "jax.", in: f.file)
        let dim = f.config.embedDim
        jax["pre_logits/kernel"] = Tensor(shape: [dim, dim], (0..<(dim * dim)).map { Float($0) })
        jax["pre_logits/bias"] = Tensor.zeros([dim])
        let mapped = try googleViTToTimm(jax, numHeads: f.config.numHeads)
        XCTAssertEqual(mapped["pre_logits.fc.weight"]?.scalars[1], Float(dim))  // [in, out] kernel transposed
        XCTAssertEqual(mapped["pre_logits.fc.bias"]?.shape, [dim])
        let report = f.makeModel().load(stateDict: mapped)
        XCTAssertEqual(report.unexpected, ["pre_logits.fc.bias", "pre_logits.fc.weight"])
    }

    func testErrorsNameTheProblem() throws {
        let f = try ViTFixture("vit_jax")
        let jax = tensors(withPrefix: "jax.", in: f.file)
        XCTAssertThrowsError(try googleViTToTimm(f.state, numHeads: 2)) { XCTAssertTrue("\($0)".contains("embedding/kernel")) }
        var missing = jax
        missing["Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias"] = nil
        XCTAssertThrowsError(try googleViTToTimm(missing, numHeads: 2)) { XCTAssertTrue("\($0)".contains("MlpBlock_3/Dense_1/bias")) }
        XCTAssertThrowsError(try googleViTToTimm(jax, numHeads: 4)) { XCTAssertTrue("\($0)".contains("heads")) }
    }
}
