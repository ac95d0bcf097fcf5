// NumPy .npz reading against the fixtures of tools/gen_checkpoint_fixtures.py: exact values for
// deflated and stored archives (every dtype, Fortran order, 0-d arrays, ViT-style names), the
// malformed corpus with the phrase each error must contain, and damaged copies.
import Foundation
import XCTest
import SSFEngine
import SSFFormats

final class NumPyArchiveTests: XCTestCase {
    func testCompressedArchiveMatchesNumPyValues() throws {
        let arrays = try NumPyArchive.load(checkpointFixture("arrays.npz"))
        try assertTensorsEqualFixture(arrays, "expected_npz.safetensors")
        XCTAssertEqual(arrays["Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel"]?.shape, [2, 3])
        XCTAssertEqual(arrays["scale"]?.shape, [])
        XCTAssertEqual(arrays["scale"]?.item, 2.5)
        XCTAssertEqual(arrays["step"]?.scalars, [7, -8])
        XCTAssertEqual(arrays["flags"]?.scalars, [1, 0])
        XCTAssertEqual(arrays["pixels"]?.scalars, [0, 128, 255])
    }

    func testFortranOrderIsTransposedToRowMajor() throws {
        let arrays = try NumPyArchive.load(checkpointFixture("arrays.npz"))
        let expected = try SafeTensors.load(checkpointFixture("expected_npz.safetensors")).tensors
        XCTAssertEqual(arrays["embedding/kernel"]?.shape, [2, 3, 2])
        assertBitsEqual(try XCTUnwrap(arrays["embedding/kernel"]).scalars, try XCTUnwrap(expected["embedding/kernel"]).scalars)
    }

    func testStoredArchive() throws {
        let arrays = try NumPyArchive.load(checkpointFixture("arrays_stored.npz"))
        XCTAssertEqual(Set(arrays.keys), ["half", "step"])
        XCTAssertEqual(arrays["half"]?.scalars, [0.5, -1, 65504])
        XCTAssertEqual(arrays["step"]?.scalars, [7, -8])
    }

    /// Each malformed fixture and a phrase its error must contain.
    private static let malformed: [String: String] = [
        "object_array.npz": "array \"w\": is an object array ('|O')",
        "big_endian.npz": "array \"w\": has big-endian dtype '>f4'",
        "bad_npy_magic.npz": "array \"w\": bad .npy magic",
        "short_data.npz": "array \"w\": data holds 8 bytes but shape [10] of '<f4' needs 40",
        "corrupt_deflate.npz": "zip entry \"w.npy\" has corrupt deflate data",
        "truncated.npz": "no end-of-central-directory record: the file is truncated",
        "state_dict_zip.pth": "holds no .npy arrays",
        "state_dict_legacy.pth.tar": "not a zip archive, so not an .npz file",
    ]

    func testMalformedCorpusIsRejectedWithItsProblem() throws {
        for (name, phrase) in Self.malformed.sorted(by: { $0.key < $1.key }) {
            assertCheckpointError(try checkpointFixture(name), phrase, NumPyArchive.load)
        }
    }

    func testMalformedHeadersAreRejected() throws {
        let directory = try makeScratchDirectory(for: self)
        let cases: [(header: String, phrase: String)] = [
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "structured dtype"),
            ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "unsupported dtype '<c8'"),
            ("{'descr': '<f4', 'fortran_order': False, }", "lacks 'descr', 'fortran_order' or 'shape'"),
            ("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", "expected True or False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "expected a non-negative integer"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unexpected header key 'x'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", "negative or too large"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "malformed header"),
        ]
        for (index, item) in cases.enumerated() {
            var npy = [0x93] + Array("NUMPY".utf8) + [1, 0]
            npy += littleEndianBytes([UInt16(item.header.utf8.count)]) + Array(item.header.utf8) + [0, 0, 0, 0]
            let url = try writeFile(try storedZip(["w.npy": npy]), named: "header\(index).npz", in: directory)
            assertCheckpointError(url, item.phrase, NumPyArchive.load)
        }
    }

    func testEveryTruncationAndCorruptedByteFailsCleanly() throws {
        let directory = try makeScratchDirectory(for: self)
        for name in ["arrays_stored.npz", "arrays.npz"] {
            let bytes = Array(try Data(contentsOf: checkpointFixture(name)))
            for length in 0..<bytes.count {
                let url = try writeFile(Array(bytes[..<length]), named: "cut.npz", in: directory)
                XCTAssertThrowsError(try NumPyArchive.load(url), "\(name) cut at \(length)") { error in
                    XCTAssertTrue(error is CheckpointError, "\(name) cut at \(length): \(error)")
                }
            }
            for position in bytes.indices {
                var damaged = bytes
                damaged[position] ^= 0xA5
                let url = try writeFile(damaged, named: "damaged.npz", in: directory)
                assertLoadsOrFailsCleanly(url, NumPyArchive.load, "\(name) byte \(position)")
            }
        }
    }

    func testZip64ArchiveWithSaturatedFields() throws {
        let directory = try makeScratchDirectory(for: self)
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
        var npy = [0x93] + Array("NUMPY".utf8) + [1, 0] + littleEndianBytes([UInt16(header.utf8.count)]) + Array(header.utf8)
        npy += littleEndianBytes([Float(1.5).bitPattern, Float(-2).bitPattern])
        let url = try writeFile(try storedZip(["a.npy": npy, "b.npy": npy], zip64: true), named: "zip64.npz", in: directory)
        let arrays = try NumPyArchive.load(url)
        XCTAssertEqual(arrays["a"]?.scalars, [1.5, -2])
        XCTAssertEqual(arrays["b"]?.scalars, [1.5, -2])
    }

    /// A zip archive of stored entries, as `np.savez` writes it; with `zip64`, every size, offset
    /// and count is saturated in the 32-bit fields and given in ZIP64 extra fields and end records.
    private func storedZip(_ files: [String: [UInt8]], zip64: Bool = false) throws -> [UInt8] {
        var archive: [UInt8] = []
        var directory: [UInt8] = []
        for (name, contents) in files.sorted(by: { $0.key < $1.key }) {
            let size = zip64 ? UInt32.max : UInt32(contents.count)
            let extra = zip64 ? littleEndianBytes([UInt16(1), 24]) + littleEndianBytes([UInt64(contents.count), UInt64(contents.count), UInt64(archive.count)]) : []
            let common = littleEndianBytes([UInt16(zip64 ? 45 : 20), 0, 0, 0, 0]) + littleEndianBytes([crc32(contents), size, size])
                + littleEndianBytes([UInt16(name.utf8.count), UInt16(extra.count)])
            directory += littleEndianBytes([UInt32(0x0201_4B50)]) + littleEndianBytes([UInt16(45)]) + common
                + littleEndianBytes([UInt16(0), 0, 0]) + littleEndianBytes([UInt32(0), zip64 ? UInt32.max : UInt32(archive.count)])
                + Array(name.utf8) + extra
            archive += littleEndianBytes([UInt32(0x0403_4B50)]) + common + Array(name.utf8) + extra + contents
        }
        var end: [UInt8] = []
        if zip64 {
            let record = archive.count + directory.count
            end += littleEndianBytes([UInt32(0x0606_4B50)]) + littleEndianBytes([UInt64(44)]) + littleEndianBytes([UInt16(45), 45])
                + littleEndianBytes([UInt32(0), 0])
                + littleEndianBytes([UInt64(files.count), UInt64(files.count), UInt64(directory.count), UInt64(archive.count)])
            end += littleEndianBytes([UInt32(0x0706_4B50), 0]) + littleEndianBytes([UInt64(record)]) + littleEndianBytes([UInt32(1)])
        }
        let count = zip64 ? UInt16.max : UInt16(files.count)
        end += littleEndianBytes([UInt32(0x0605_4B50)]) + littleEndianBytes([UInt16(0), 0, count, count])
            + littleEndianBytes(zip64 ? [UInt32.max, UInt32.max] : [UInt32(directory.count), UInt32(archive.count)])
            + littleEndianBytes([UInt16(0)])
        return archive + directory + end
    }

    /// The CRC-32 (IEEE) of `bytes`.
    private func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc = UInt32.max
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
