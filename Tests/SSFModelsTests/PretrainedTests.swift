// Loading checkpoints into registered models: class-count inference, head replacement, format detection.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels

final class PretrainedTests: XCTestCase {
    private func temporaryFile(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("ssf-pretrained-\(UInt32.random(in: 0...UInt32.max))-\(name)")
    }

    func testClassCountComesFromTheCheckpointAndHeadIsReplacedOnRequest() throws {
        let source = try ModelRegistry.create("as_tiny_patch4_window7_224", numClasses: 10, seed: 1)
        let url = temporaryFile("as_tiny.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.save(source.stateDict(), to: url)
        let image = Tensor.randomUniform([1, 3, 32, 32], using: &rngForTest)

        let same = try Pretrained.load(model: "as_tiny_patch4_window7_224", weights: url)
        XCTAssertEqual(same.model.numClasses, 10)
        XCTAssertEqual(same.report?.isExact, true)
        XCTAssertTrue(same.notes.isEmpty)
        XCTAssertEqual(same.model(image).scalars, source(image).scalars)

        let replaced = try Pretrained.load(model: "as_tiny_patch4_window7_224", weights: url, numClasses: 4)
        XCTAssertEqual(replaced.model.numClasses, 4)
        XCTAssertTrue(replaced.notes.contains { $0.contains("10 classes") && $0.contains("4-class head") }, "\(replaced.notes)")
        XCTAssertEqual(replaced.report?.missing, [])
        XCTAssertEqual(replaced.report?.unexpected, [])
        let newHead = try XCTUnwrap(replaced.model.stateDict()["head.weight"])
        XCTAssertEqual(newHead.shape, [4, source.featureDim])
        XCTAssertEqual(replaced.model.stateDict()["layers.0.blocks.0.norm1.weight"]?.scalars,
                       source.stateDict()["layers.0.blocks.0.norm1.weight"]?.scalars)
        XCTAssertEqual(replaced.report?.shapeMismatches.count, 0)
    }

    func testUnknownFormatAndMissingFileAreNamed() throws {
        let url = temporaryFile("notes.txt")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data("just some text, not a checkpoint".utf8).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(url)) { error in
            XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains("unrecognised"), "\(error)")
        }
        XCTAssertThrowsError(try Pretrained.load(model: "as_tiny_patch4_window7_224", weights: URL(fileURLWithPath: "/nonexistent/w.pth"))) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/w.pth"), "\(error)")
        }
        XCTAssertThrowsError(try Pretrained.load(model: "no_such_model", weights: nil)) { error in
            XCTAssertTrue("\(error)".contains("no_such_model"))
        }
    }
}

private var rngForTest = RandomGenerator(seed: 3)

final class CheckpointMismatchTests: XCTestCase {
    func testWrongShapesAndMissingKeysAreClearErrors() throws {
        let model = try ModelRegistry.create("as_tiny_patch4_window7_224", numClasses: 10, seed: 1)
        var state = model.stateDict()
        state["layers.0.blocks.0.norm1.weight"] = Tensor.ones([7])
        state["layers.1.blocks.0.mlp.fc1.bias"] = nil
        let loaded = try Pretrained.loadState(state, model: "as_tiny_patch4_window7_224")
        XCTAssertThrowsError(try loaded.requireComplete(path: "bad.pth")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad.pth") && text.contains("as_tiny_patch4_window7_224"), text)
            XCTAssertTrue(text.contains("layers.1.blocks.0.mlp.fc1.bias"), text)
            XCTAssertTrue(text.contains("layers.0.blocks.0.norm1.weight: the checkpoint has shape [7], the model needs [96]"), text)
        }
        let complete = try Pretrained.loadState(model.stateDict(), model: "as_tiny_patch4_window7_224")
        XCTAssertNoThrow(try complete.requireComplete(path: "good.pth"))
    }
}
