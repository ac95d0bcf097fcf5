// Malformed input: the committed corpus (tools/make_malformed_safetensors.py), every
// truncation of a valid file, corrupted header bytes, and files that are not there.
import Foundation
import XCTest
import SSFEngine
import SSFFormats

final class SafeTensorsMalformedTests: XCTestCase {
    /// Each corpus file and a phrase its error must contain.
    private static let expectedProblems: [String: String] = [
        "too_short": "too short to hold the 8-byte header length",
        "header_absurd_length": "header length 1099511627776 is absurdly large",
        "header_beyond_file": "header length 4096 runs beyond the end of the file",
        "invalid_utf8": "header is not valid UTF-8",
        "invalid_json": "invalid JSON at byte 24: unexpected end, expected a string key",
        "not_object": "header is an array, not a JSON object",
        "duplicate_key": "duplicate key \"w\"",
        "deep_nesting": "nested more than 64 levels deep",
        "unpaired_surrogate": "unpaired surrogate",
        "entry_not_object": "tensor \"w\" is an array, not an object",
        "missing_dtype": "tensor \"w\" is missing \"dtype\"",
        "missing_shape": "tensor \"w\" is missing \"shape\"",
        "missing_data_offsets": "tensor \"w\" is missing \"data_offsets\"",
        "dtype_not_string": "\"dtype\" is a number, not a string",
        "shape_not_array": "\"shape\" is a string, not an array",
        "offsets_three_values": "\"data_offsets\" must be an array of two integers",
        "offsets_not_integers": "data_offsets begin is a string, not an integer",
        "negative_shape": "shape dimension -2 is negative",
        "fractional_shape": "shape dimension 2.5 is not an integer",
        "unknown_dtype": "unsupported dtype \"F17\"",
        "offsets_reversed": "data_offsets [8, 0] begins after it ends",
        "offsets_beyond_buffer": "data_offsets [0, 8] run beyond the data buffer of 4 bytes",
        "offset_huge": "data_offsets end 18446744073709551616 is too large",
        "size_mismatch": "data_offsets hold 8 bytes but shape [3] of F32 needs 12",
        "shape_overflow": "shape [1099511627776, 1099511627776] is too large",
        "overlap": "tensor \"b\" overlaps tensor \"a\"",
        "hole_between": "bytes 4..<8 of the data buffer are not covered by any tensor",
        "hole_at_end": "bytes 4..<8 of the data buffer are not covered by any tensor",
        "metadata_not_object": "__metadata__ is an array, not an object",
        "metadata_value_not_string": "__metadata__ value for \"epoch\" is a number, not a string",
    ]

    func testEveryCorpusFileIsRejectedWithItsProblem() throws {
        let corpus = try XCTUnwrap(Bundle.module.url(forResource: "Malformed", withExtension: nil))
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".safetensors") }
        XCTAssertEqual(Set(files.map { String($0.dropLast(".safetensors".count)) }), Set(Self.expectedProblems.keys),
                       "corpus and expectations disagree; regenerate with tools/make_malformed_safetensors.py")
        for file in files.sorted() {
            let url = corpus.appendingPathComponent(file)
            let phrase = Self.expectedProblems[String(file.dropLast(".safetensors".count))] ?? "?"
            XCTAssertLessThanOrEqual(try Data(contentsOf: url).count, 512, file)
            XCTAssertThrowsError(try SafeTensors.load(url), file) { error in
                guard let error = error as? CheckpointError else { return XCTFail("\(file): \(error) is not a CheckpointError") }
                XCTAssertEqual(error.path, url.path)
                XCTAssertTrue(error.description.hasPrefix(url.path + ": "), error.description)
                XCTAssertTrue(error.description.contains(file), error.description)
                XCTAssertTrue(error.problem.contains(phrase), "\(file): \"\(error.problem)\" lacks \"\(phrase)\"")
            }
        }
    }

    func testEveryTruncationOfAValidFileThrows() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("valid.safetensors")
        try SafeTensors.save(["a": Tensor(shape: [2, 2], [1, 2, 3, 4]), "b": Tensor(scalar: 5)], metadata: ["k": "v"], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertNoThrow(try SafeTensors.load(url))
        let truncated = dir.appendingPathComponent("truncated.safetensors")
        for length in 0..<bytes.count {
            try Data(bytes[..<length]).write(to: truncated)
            XCTAssertThrowsError(try SafeTensors.load(truncated), "length \(length)") { error in
                XCTAssertTrue(error is CheckpointError, "length \(length): \(error)")
            }
        }
    }

    func testCorruptedHeaderBytesNeverCrash() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("valid.safetensors")
        try SafeTensors.save(["a": Tensor(shape: [2, 2], [1, 2, 3, 4]), "b": Tensor(scalar: 5)], metadata: ["k": "v"], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let corrupted = dir.appendingPathComponent("corrupted.safetensors")
        let replacements: [UInt8] = [0x00, 0xFF, 0x80, 0x20, UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "{"),
                                     UInt8(ascii: "]"), UInt8(ascii: ","), UInt8(ascii: "-"), UInt8(ascii: "9"), UInt8(ascii: "e")]
        var rejected = 0
        for position in 0..<bytes.count - 20 {
            for replacement in replacements where replacement != bytes[position] {
                var copy = bytes
                copy[position] = replacement
                try Data(copy).write(to: corrupted)
                do {
                    _ = try SafeTensors.load(corrupted)
                } catch is CheckpointError {
                    rejected += 1
                }
            }
        }
        XCTAssertGreaterThan(rejected, 0)
    }

    func testMissingFileAndDirectoryAreRejected() throws {
        let dir = try makeScratchDirectory(for: self)
        let missing = dir.appendingPathComponent("nope.safetensors")
        XCTAssertThrowsError(try SafeTensors.load(missing)) { error in
            XCTAssertTrue("\(error)".hasPrefix(missing.path + ": cannot open"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensors.load(dir)) { error in
            XCTAssertTrue((error as? CheckpointError)?.problem == "not a regular file", "\(error)")
        }
    }
}
