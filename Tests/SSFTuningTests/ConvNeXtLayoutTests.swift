// ConvNeXt checkpoints in the two foreign layouts users bring: the SSF reference code's (with its
// SSF vectors) and the original facebook release's. Fixture: tools/gen_convnext_layout_fixtures.py.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
@testable import SSFTuning
import SSFTestSupport

final class ConvNeXtLayoutTests: XCTestCase {
    private struct Metadata: Decodable {
        struct Config: Decodable { let depths: [Int], dims: [Int], num_classes: Int }
        let config: Config
        let timm_keys: [TimmKey]
    }
    /// One `[key, shape]` pair of timm's state dict.
    private struct TimmKey: Decodable {
        let key: String, shape: [Int]
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            key = try c.decode(String.self)
            shape = try c.decode([Int].self)
        }
    }

    /// The fixture with its metadata decoded.
    private struct Layouts {
        let fixture: Fixture
        let metadata: Metadata
        func group(_ prefix: String) -> [String: Tensor] { fixture.group(prefix) }
        subscript(_ key: String) -> Tensor { fixture[key] }
        func makeModel() -> ConvNeXt {
            var rng = RandomGenerator(seed: 1)
            let c = metadata.config
            return ConvNeXt(config: ConvNeXtConfig(depths: c.depths, dims: c.dims, numClasses: c.num_classes), using: &rng)
        }
        var timmShapes: [String: [Int]] { Dictionary(uniqueKeysWithValues: metadata.timm_keys.map { ($0.key, $0.shape) }) }
    }

    private func fixture() throws -> Layouts {
        let fixture = try Fixture("convnext_layouts", in: Bundle.module)
        return Layouts(fixture: fixture, metadata: try fixture.metadata(Metadata.self))
    }

    /// The registered ConvNeXt models list both layouts, and each detects only its own names.
    func testRegisteredConvNeXtsReadBothLayouts() throws {
        let f = try fixture()
        let spec = try ModelRegistry.spec("convnext_base")
        XCTAssertEqual(try spec.convertCheckpoint(f.group("ref.")).layouts, ["ssf-reference-convnext"])
        XCTAssertEqual(try spec.convertCheckpoint(f.group("fb.")).layouts, ["facebook-convnext"])
        XCTAssertEqual(try spec.convertCheckpoint(f.makeModel().stateDict()).layouts, [])
    }

    /// The SSF reference state dict loads exactly into our ConvNeXt with SSF, its logits match the
    /// reference's, and the merged state has timm's keys (plus the one unfoldable site) and reproduces them.
    func testSSFReferenceCheckpointLoadsMatchesAndMerges() throws {
        let f = try fixture()
        let converted = try SSFReferenceConvNeXtLayout().convert(f.group("ref."))
        XCTAssertTrue(converted.renamed.contains { $0.from == "stem.proj.weight" && $0.to == "stem.0.weight" })
        let model = f.makeModel()
        var rng = RandomGenerator(seed: 2)
        TuningMethod.ssf.apply(to: model, using: &rng)
        let report = model.load(stateDict: converted.tensors)
        XCTAssertTrue(report.isExact, "\(report)")
        model.setTraining(false)
        let logits = model(f["input"])
        let err = relativeError(logits, f["ref_logits_timm_ln"], floor: 1e-6)
        // The reference file's own LayerNorm2d takes an unbiased-variance path on non-contiguous
        // input (its downsampling norms); with timm's LayerNorm the logits agree to 1e-4.
        let asIs = relativeError(logits, f["ref_logits"], floor: 1e-6)
        print("ssf-reference convnext: logits vs reference (timm LayerNorm) \(err), vs the file as it runs \(asIs)")
        XCTAssertLessThanOrEqual(err, 1e-4)
        XCTAssertLessThanOrEqual(asIs, 0.1, "beyond the LayerNorm variance difference")

        let result = try SSFMerge.merge(model.stateDict(), model: model)
        XCTAssertEqual(result.unfolded.keys.sorted(), ["ssf_scale_1", "ssf_shift_1"])
        XCTAssertEqual(result.merged.mapValues(\.shape), f.timmShapes, "merged keys and shapes are timm's convnext state dict")
        let plain = f.makeModel()
        var file = result.merged
        for (k, v) in result.unfolded { file[k] = v }
        XCTAssertEqual(plain.enableSSFSites(presentIn: Set(file.keys), using: &rng).count, 1)
        XCTAssertTrue(plain.load(stateDict: file).isExact)
        plain.setTraining(false)
        XCTAssertLessThanOrEqual(relativeError(plain(f["input"]), f["ref_logits_timm_ln"], floor: 1e-6), 1e-4)
    }

    /// A facebook-release checkpoint loads exactly into the plain ConvNeXt and matches timm's logits.
    func testFacebookCheckpointLoadsAndMatchesTimm() throws {
        let f = try fixture()
        let converted = try FacebookConvNeXtLayout().convert(f.group("fb."))
        XCTAssertEqual(converted.tensors.mapValues(\.shape), f.timmShapes)
        XCTAssertEqual(converted.renamed.count, converted.tensors.count, "every facebook name differs from timm's")
        let model = f.makeModel()
        XCTAssertTrue(model.load(stateDict: converted.tensors).isExact)
        model.setTraining(false)
        XCTAssertLessThanOrEqual(relativeError(model(f["input"]), f["fb_logits"], floor: 1e-6), 1e-4)
    }

    /// Tensors a layout does not know are named in the error, never dropped.
    func testUnknownTensorsAreNamed() throws {
        let f = try fixture()
        var fb = f.group("fb.")
        fb["stages.0.0.grn.gamma"] = .ones([8])
        XCTAssertThrowsError(try FacebookConvNeXtLayout().convert(fb)) { XCTAssertTrue("\($0)".contains("stages.0.0.grn.gamma"), "\($0)") }
        var ref = f.group("ref.")
        ref["stages.1.downsample.ssf_scale_1"] = .ones([8])
        XCTAssertThrowsError(try SSFReferenceConvNeXtLayout().convert(ref)) { XCTAssertTrue("\($0)".contains("stages.1.downsample.ssf_scale_1"), "\($0)") }
    }
}
