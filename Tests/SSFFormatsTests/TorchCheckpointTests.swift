// PyTorch checkpoint reading against the fixtures of tools/gen_checkpoint_fixtures.py: exact
// values for zip and legacy files (every dtype, views, shared storages, nesting, `module.`),
// the malformed corpus with the phrase each error must contain, and damaged copies of the good
// files, which must fail cleanly or load, never crash.
import Foundation
import XCTest
import SSFEngine
import SSFFormats

/// The URL of a file in the committed Checkpoints fixture folder.
func checkpointFixture(_ name: String) throws -> URL {
    let folder = try XCTUnwrap(Bundle.module.url(forResource: "Checkpoints", withExtension: nil))
    return folder.appendingPathComponent(name)
}

/// Asserts that `tensors` equal the tensors of a safetensors fixture, names, shapes and bits.
func assertTensorsEqualFixture(_ tensors: [String: Tensor], _ expectedFile: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
    let expected = try SafeTensors.load(checkpointFixture(expectedFile)).tensors
    XCTAssertEqual(Set(tensors.keys), Set(expected.keys), file: file, line: line)
    for (name, want) in expected {
        guard let got = tensors[name] else { continue }
        XCTAssertEqual(got.shape, want.shape, name, file: file, line: line)
        assertBitsEqual(got.scalars, want.scalars, file: file, line: line)
    }
}

/// Asserts that `load` throws a CheckpointError about `url` whose problem contains `phrase`.
func assertCheckpointError(_ url: URL, _ phrase: String, _ load: (URL) throws -> [String: Tensor],
                           file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try load(url), url.lastPathComponent, file: file, line: line) { error in
        guard let error = error as? CheckpointError else {
            return XCTFail("\(url.lastPathComponent): \(error) is not a CheckpointError", file: file, line: line)
        }
        XCTAssertEqual(error.path, url.path, file: file, line: line)
        XCTAssertTrue(error.description.contains(url.lastPathComponent), error.description, file: file, line: line)
        XCTAssertTrue(error.problem.contains(phrase), "\(url.lastPathComponent): \"\(error.problem)\" lacks \"\(phrase)\"",
                      file: file, line: line)
    }
}

/// Writes `bytes` to `name` in `directory` and returns its URL.
func writeFile(_ bytes: [UInt8], named name: String, in directory: URL) throws -> URL {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

/// Loads `url` with `load`, accepting success or a CheckpointError about `url`, and failing on any other error.
func assertLoadsOrFailsCleanly(_ url: URL, _ load: (URL) throws -> [String: Tensor], _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try load(url)
    } catch let error as CheckpointError {
        XCTAssertEqual(error.path, url.path, what, file: file, line: line)
    } catch {
        XCTFail("\(what): \(error) is not a CheckpointError", file: file, line: line)
    }
}

final class TorchCheckpointTests: XCTestCase {
    func testZipCheckpointMatchesTorchValues() throws {
        let tensors = try TorchCheckpoint.load(checkpointFixture("state_dict_zip.pth"))
        try assertTensorsEqualFixture(tensors, "expected_torch.safetensors")
    }

    func testLegacyCheckpointMatchesTorchValues() throws {
        let tensors = try TorchCheckpoint.load(checkpointFixture("state_dict_legacy.pth.tar"))
        try assertTensorsEqualFixture(tensors, "expected_torch.safetensors")
    }

    func testStateDictUnderModelKeyWithoutPrefix() throws {
        let tensors = try TorchCheckpoint.load(checkpointFixture("model_only.bin"))
        try assertTensorsEqualFixture(tensors, "expected_torch.safetensors")
    }

    func testModulePrefixIsStrippedAndOtherEntriesIgnored() throws {
        let tensors = try TorchCheckpoint.load(checkpointFixture("state_dict_zip.pth"))
        XCTAssertFalse(tensors.keys.contains { $0.hasPrefix("module.") })
        XCTAssertEqual(tensors["fc.weight"]?.shape, [3, 4])
        // The optimizer's exp_avg (a tensor under "optimizer") and epoch/args/metric are not state dict entries.
        XCTAssertEqual(tensors.count, 16)
    }

    func testViewsDtypesAndSharedStoragesByValue() throws {
        let tensors = try TorchCheckpoint.load(checkpointFixture("state_dict_zip.pth"))
        // base = arange(12) * 0.5 - 2 shared by three views at offsets 2, 6 and 1 (stride 4).
        XCTAssertEqual(tensors["shared.a"]?.shape, [2, 3])
        XCTAssertEqual(tensors["shared.a"]?.scalars, [-1, -0.5, 0, 0.5, 1, 1.5])
        XCTAssertEqual(tensors["shared.b"]?.scalars, [1, 1.5, 2, 2.5, 3, 3.5])
        XCTAssertEqual(tensors["shared.column"]?.scalars, [-1.5, 0.5, 2.5])
        XCTAssertEqual(tensors["expanded"]?.scalars, [1.5, -2, 4, 1.5, -2, 4])
        XCTAssertEqual(tensors["empty"]?.shape, [0, 3])
        XCTAssertEqual(tensors["bn.num_batches_tracked"]?.shape, [])
        XCTAssertEqual(tensors["bn.num_batches_tracked"]?.item, 42)
        XCTAssertEqual(tensors["half"]?.scalars, [1, -2.5, 65504, 0.00006103515625, 0x1p-24])
        XCTAssertEqual(tensors["bf16"]?.scalars.first, 1)
        XCTAssertEqual(tensors["long"]?.scalars, [-7, 0, 123456])
        XCTAssertEqual(tensors["byte"]?.scalars, [0, 7, 255])
        XCTAssertEqual(tensors["mask"]?.scalars, [1, 0, 1])
        // proj.weight was saved as the transpose view of a [4, 5] tensor (stride 1, 5).
        XCTAssertEqual(tensors["proj.weight"]?.shape, [5, 4])
    }

    func testRebuildTensorV3ReadsADtypeOverAnUntypedStorage() throws {
        let tensors = try TorchCheckpoint.load(checkpointFixture("untyped_v3.pth"))
        XCTAssertEqual(tensors["w"]?.shape, [2, 2])
        XCTAssertEqual(tensors["w"]?.scalars, [1, -0.5, 2, 65504])
    }

    /// Each malformed fixture and a phrase its error must contain.
    private static let malformed: [String: String] = [
        "malicious_system.pth": "uses global posix.system, which a tensor checkpoint never needs",
        "malicious_eval_legacy.pth": "uses global __builtin__.eval, which a tensor checkpoint never needs",
        "unknown_global.pth": "uses global __main__.Unlisted",
        "unknown_opcode.pth": "unsupported pickle opcode 0x49",
        "truncated.pth": "no end-of-central-directory record: the file is truncated",
        "missing_data_pkl.pth": "no <folder>/data.pkl",
        "missing_storage.pth": "storage entry \"archive/data/0\" is missing",
        "storage_too_small.pth": "tensor \"w\" does not fit its storage \"0\": size [2, 3], stride [3, 1] and offset 1 reach element 6 but the storage holds only 4 elements",
        "stack_underflow.pth": "stack underflow: SETITEM needs 3 values, the stack has 2",
        "memo_missing.pth": "memo has no entry 7",
        "deep_nesting.pth": "nests MARKs more than 1000 deep",
        "bad_magic_legacy.pth": "bad magic number",
        "big_endian.pth": "big-endian",
    ]

    func testMalformedCorpusIsRejectedWithItsProblem() throws {
        for (name, phrase) in Self.malformed.sorted(by: { $0.key < $1.key }) {
            assertCheckpointError(try checkpointFixture(name), phrase, TorchCheckpoint.load)
        }
    }

    func testUnreadableAndForeignFilesAreRejected() throws {
        let directory = try makeScratchDirectory(for: self)
        assertCheckpointError(directory.appendingPathComponent("absent.pth"), "cannot read the file", TorchCheckpoint.load)
        assertCheckpointError(try writeFile([], named: "empty.pth", in: directory), "file is empty", TorchCheckpoint.load)
        assertCheckpointError(try writeFile(Array("hello".utf8), named: "text.pth", in: directory),
                              "neither a zip-format nor a legacy PyTorch checkpoint", TorchCheckpoint.load)
        assertCheckpointError(try checkpointFixture("expected_torch.safetensors"), "neither a zip-format", TorchCheckpoint.load)
        // A pickle of a plain dict is not a legacy checkpoint: its first object is not the magic number.
        assertCheckpointError(try writeFile([0x80, 0x02, 0x7D, 0x2E], named: "dict.pkl", in: directory),
                              "bad magic number", TorchCheckpoint.load)
    }

    func testNoTensorDictIsReported() throws {
        let directory = try makeScratchDirectory(for: self)
        // A legacy file whose object is {"epoch": 3} and whose storage list is empty.
        let magic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
        let version: [UInt8] = [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]
        let info: [UInt8] = [0x80, 0x02, 0x7D, 0x2E]
        let object: [UInt8] = [0x80, 0x02, 0x7D, 0x58, 0x05, 0, 0, 0] + Array("epoch".utf8) + [0x4B, 0x03, 0x73, 0x2E]
        let keys: [UInt8] = [0x80, 0x02, 0x5D, 0x2E]
        let url = try writeFile(magic + version + info + object + keys, named: "no_tensors.pth", in: directory)
        assertCheckpointError(url, "holds no tensor state dict: the pickled object is a dict with keys \"epoch\"", TorchCheckpoint.load)
    }

    func testEveryTruncationFailsCleanly() throws {
        let directory = try makeScratchDirectory(for: self)
        for name in ["state_dict_zip.pth", "state_dict_legacy.pth.tar"] {
            let bytes = Array(try Data(contentsOf: checkpointFixture(name)))
            for length in stride(from: 0, to: bytes.count, by: 5) {
                let url = try writeFile(Array(bytes[..<length]), named: "cut.pth", in: directory)
                XCTAssertThrowsError(try TorchCheckpoint.load(url), "\(name) cut at \(length)") { error in
                    XCTAssertTrue(error is CheckpointError, "\(name) cut at \(length): \(error)")
                }
            }
        }
    }

    func testEveryCorruptedByteLoadsOrFailsCleanly() throws {
        let directory = try makeScratchDirectory(for: self)
        for name in ["state_dict_zip.pth", "state_dict_legacy.pth.tar"] {
            let bytes = Array(try Data(contentsOf: checkpointFixture(name)))
            for position in stride(from: 0, to: bytes.count, by: 3) {
                var damaged = bytes
                damaged[position] ^= 0xA5
                let url = try writeFile(damaged, named: "damaged.pth", in: directory)
                assertLoadsOrFailsCleanly(url, TorchCheckpoint.load, "\(name) byte \(position)")
            }
        }
    }
}
