// Atomic writing: replacing an existing checkpoint, leaving no temporary files, and errors.
import Foundation
import XCTest
import SSFEngine
import SSFFormats

final class SafeTensorsSaveTests: XCTestCase {
    func testSaveReplacesExistingFileAndLeavesNoTemporaryFiles() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try SafeTensors.save(["w": Tensor(shape: [3], [1, 2, 3])], to: url)
        try SafeTensors.save(["v": Tensor(shape: [1], [4])], metadata: ["step": "2"], to: url)
        let file = try SafeTensors.load(url)
        XCTAssertEqual(file.order, ["v"])
        XCTAssertEqual(file.metadata, ["step": "2"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["ckpt.safetensors"])
    }

    func testSaveIntoMissingDirectoryThrowsNamingTheFile() throws {
        let url = try makeScratchDirectory(for: self).appendingPathComponent("missing/ckpt.safetensors")
        XCTAssertThrowsError(try SafeTensors.save(["w": Tensor(scalar: 1)], to: url)) { error in
            let error = error as? CheckpointError
            XCTAssertEqual(error?.path, url.path)
            XCTAssertTrue(error?.description.hasPrefix(url.path + ": cannot create a temporary file") ?? false, "\(String(describing: error))")
        }
    }

    func testSaveRejectsTheReservedMetadataName() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("bad.safetensors")
        XCTAssertThrowsError(try SafeTensors.save(["__metadata__": Tensor(scalar: 1)], to: url)) { error in
            XCTAssertTrue((error as? CheckpointError)?.problem.contains("reserved") ?? false, "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    }

    func testCheckpointErrorDescriptionIsPathThenProblem() {
        XCTAssertEqual(CheckpointError(path: "/a/b.safetensors", problem: "broken").description, "/a/b.safetensors: broken")
    }
}
