// Round trips through SafeTensors.save/load, the exact written layout, and conversion of
// hand-built F16, BF16, F64, integer and BOOL files.
import Foundation
import XCTest
import SSFEngine
@testable import SSFFormats

final class SafeTensorsRoundTripTests: XCTestCase {
    func testFloat32RoundTripIsBitExact() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("model.safetensors")
        let special: [Float] = [.infinity, -.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .nan]
        let tensors: [String: Tensor] = [
            "blocks.0.weight": Tensor(shape: [2, 3], [1, -2, 3.5, 4e-20, 5e20, 6]),
            "scalar": Tensor(scalar: 0.125),
            "empty": Tensor(shape: [0, 4], []),
            "special": Tensor(shape: [6], special),
        ]
        try SafeTensors.save(tensors, to: url)
        let file = try SafeTensors.load(url)
        XCTAssertEqual(file.order, ["blocks.0.weight", "empty", "scalar", "special"])
        XCTAssertEqual(file.metadata, [:])
        XCTAssertEqual(file.sourceDTypes, ["blocks.0.weight": "F32", "empty": "F32", "scalar": "F32", "special": "F32"])
        for (name, tensor) in tensors {
            XCTAssertEqual(file.tensors[name]?.shape, tensor.shape, name)
            assertBitsEqual(file.tensors[name]?.scalars ?? [], tensor.scalars)
        }
    }

    func testMetadataRoundTrip() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("adapter.safetensors")
        let metadata = ["format": "pt", "": "empty key", "quote\"back\\slash": "line\nbreak\ttab\u{01}", "unicode": "ü → 🙂"]
        try SafeTensors.save(["w": Tensor(shape: [1], [1])], metadata: metadata, to: url)
        XCTAssertEqual(try SafeTensors.load(url).metadata, metadata)
    }

    func testWrittenLayoutIsByteExact() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("layout.safetensors")
        try SafeTensors.save(["b": Tensor(shape: [2], [1, 2]), "a": Tensor(scalar: 3)], metadata: ["k": "v"], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))

        let json = #"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let padded = Array(json.utf8) + Array(repeating: UInt8(ascii: " "), count: (8 - json.utf8.count % 8) % 8)
        XCTAssertEqual(padded.count % 8, 0)
        let data = littleEndianBytes([Float(3).bitPattern, Float(1).bitPattern, Float(2).bitPattern])
        XCTAssertEqual(bytes, littleEndianBytes([UInt64(padded.count)]) + padded + data)
    }

    func testEmptyCheckpointRoundTrip() throws {
        let dir = try makeScratchDirectory(for: self)
        let url = dir.appendingPathComponent("empty.safetensors")
        try SafeTensors.save([:], to: url)
        XCTAssertEqual([UInt8](try Data(contentsOf: url)), littleEndianBytes([UInt64(8)]) + Array("{}      ".utf8))
        let file = try SafeTensors.load(url)
        XCTAssertTrue(file.tensors.isEmpty)
        XCTAssertEqual(file.order, [])
    }

    func testFloat16ConversionIsExact() throws {
        let bits: [UInt16] = [0x3C00, 0xC100, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x8000, 0x8001, 0x7E00]
        let expected: [Float] = [1, -2.5, 0x1p-24, 1023 * 0x1p-24, 0x1p-14, 65504, .infinity, -.infinity, -0.0, -0x1p-24,
                                 Float(bitPattern: 0x7FC0_0000)]
        let header = #"{"h":{"dtype":"F16","shape":[11],"data_offsets":[0,22]}}"#
        let file = try loadBytes(safetensorsBytes(header: header, data: littleEndianBytes(bits)), in: makeScratchDirectory(for: self))
        XCTAssertEqual(file.sourceDTypes["h"], "F16")
        assertBitsEqual(file.tensors["h"]!.scalars, expected)
    }

    func testFloat16ConversionMatchesEveryBitPattern() {
        #if !(os(macOS) && arch(x86_64))
        for bits in UInt16.min...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let converted = SafeTensors.float(fromHalf: bits)
            if reference.isNaN {
                XCTAssertTrue(converted.isNaN, "\(bits)")
            } else {
                XCTAssertEqual(converted.bitPattern, reference.bitPattern, "\(bits)")
            }
        }
        #endif
    }

    func testBFloat16ConversionIsExact() throws {
        let bits: [UInt16] = [0x3F80, 0xC020, 0x0001, 0x7F80, 0xFF80, 0x8000, 0x7FC1]
        let expected: [Float] = [1, -2.5, Float(bitPattern: 0x0001_0000), .infinity, -.infinity, -0.0, Float(bitPattern: 0x7FC1_0000)]
        let header = #"{"b":{"dtype":"BF16","shape":[7],"data_offsets":[0,14]}}"#
        let file = try loadBytes(safetensorsBytes(header: header, data: littleEndianBytes(bits)), in: makeScratchDirectory(for: self))
        XCTAssertEqual(file.sourceDTypes["b"], "BF16")
        assertBitsEqual(file.tensors["b"]!.scalars, expected)
    }

    func testFloat64ConversionRoundsToNearest() throws {
        let values: [Double] = [1.5, -1e-3, 1e300, -1e300, 1e-300, 0.1]
        let header = #"{"d":{"dtype":"F64","shape":[3,2],"data_offsets":[0,48]}}"#
        let file = try loadBytes(safetensorsBytes(header: header, data: littleEndianBytes(values.map(\.bitPattern))),
                                 in: makeScratchDirectory(for: self))
        XCTAssertEqual(file.tensors["d"]!.shape, [3, 2])
        assertBitsEqual(file.tensors["d"]!.scalars, [1.5, Float(-1e-3), .infinity, -.infinity, 0, Float(0.1)])
    }

    func testIntegerAndBoolDTypes() throws {
        let data = littleEndianBytes([Int64(-3), Int64(1 << 40)]) + littleEndianBytes([Int32(-7)])
            + littleEndianBytes([Int16(-300)]) + littleEndianBytes([UInt16(65535)]) + littleEndianBytes([UInt32(4_000_000_000)])
            + littleEndianBytes([UInt64(5)]) + [UInt8(0xFF), 200, 0, 1, 7]
        let header = "{" + [
            #""i64":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}"#,
            #""i32":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}"#,
            #""i16":{"dtype":"I16","shape":[1],"data_offsets":[20,22]}"#,
            #""u16":{"dtype":"U16","shape":[1],"data_offsets":[22,24]}"#,
            #""u32":{"dtype":"U32","shape":[],"data_offsets":[24,28]}"#,
            #""u64":{"dtype":"U64","shape":[1],"data_offsets":[28,36]}"#,
            #""i8":{"dtype":"I8","shape":[1],"data_offsets":[36,37]}"#,
            #""u8":{"dtype":"U8","shape":[1],"data_offsets":[37,38]}"#,
            #""mask":{"dtype":"BOOL","shape":[3],"data_offsets":[38,41]}"#,
        ].joined(separator: ",") + "}"
        let file = try loadBytes(safetensorsBytes(header: header, data: data), in: makeScratchDirectory(for: self))
        XCTAssertEqual(file.tensors["i64"]!.scalars, [-3, 0x1p40])
        XCTAssertEqual(file.tensors["i32"]!.scalars, [-7])
        XCTAssertEqual(file.tensors["i16"]!.scalars, [-300])
        XCTAssertEqual(file.tensors["u16"]!.scalars, [65535])
        XCTAssertEqual(file.tensors["u32"]!.scalars, [4_000_000_000])
        XCTAssertEqual(file.tensors["u32"]!.shape, [])
        XCTAssertEqual(file.tensors["u64"]!.scalars, [5])
        XCTAssertEqual(file.tensors["i8"]!.scalars, [-1])
        XCTAssertEqual(file.tensors["u8"]!.scalars, [200])
        XCTAssertEqual(file.tensors["mask"]!.scalars, [0, 1, 1])
        XCTAssertEqual(file.order, ["i64", "i32", "i16", "u16", "u32", "u64", "i8", "u8", "mask"])
        XCTAssertEqual(file.sourceDTypes["mask"], "BOOL")
    }

    func testUnalignedDataAndUnpaddedHeaderAreRead() throws {
        // A 57-byte header puts the F32 data at file offset 65, which is not 4-byte aligned.
        let header = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   "#
        XCTAssertEqual(header.utf8.count, 57)
        let file = try loadBytes(safetensorsBytes(header: header, data: littleEndianBytes([Float(1.25).bitPattern, Float(-8).bitPattern])),
                                 in: makeScratchDirectory(for: self))
        XCTAssertEqual(file.tensors["w"]!.scalars, [1.25, -8])
    }

    func testOrderFollowsDataOffsetsAndAllowsEmptyTensorsAnywhere() throws {
        let header = "{" + [
            #""z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#,
            #""empty":{"dtype":"F16","shape":[0],"data_offsets":[4,4]}"#,
            #""a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}"#,
            #""m":{"dtype":"BF16","shape":[3,0],"data_offsets":[8,8]}"#,
        ].joined(separator: ",") + "}"
        let data = littleEndianBytes([Float(9).bitPattern, Float(7).bitPattern])
        let file = try loadBytes(safetensorsBytes(header: header, data: data), in: makeScratchDirectory(for: self))
        XCTAssertEqual(file.order, ["z", "empty", "a", "m"])
        XCTAssertEqual(file.tensors["z"]!.scalars, [9])
        XCTAssertEqual(file.tensors["a"]!.scalars, [7])
        XCTAssertEqual(file.tensors["m"]!.shape, [3, 0])
    }

    /// Written by `safetensors.numpy.save` 0.8.0 (numpy 2.4) with F16, F64, F32 scalar, I64 and BOOL
    /// tensors and metadata `{"format": "np", "note": "ü\"\n"}`.
    private static let referenceFile = """
        WAEAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJucCIsIm5vdGUiOiLDvFwiXG4ifSwibG9uZyI6eyJkdHlwZSI6Ikk2NCIsInNoYXBl\
        IjpbMl0sImRhdGFfb2Zmc2V0cyI6WzAsMTZdfSwiZG91YmxlIjp7ImR0eXBlIjoiRjY0Iiwic2hhcGUiOlsyLDJdLCJkYXRhX29mZnNldHMiOlsx\
        Niw0OF19LCJzaW5nbGUiOnsiZHR5cGUiOiJGMzIiLCJzaGFwZSI6W10sImRhdGFfb2Zmc2V0cyI6WzQ4LDUyXX0sImhhbGYiOnsiZHR5cGUiOiJG\
        MTYiLCJzaGFwZSI6WzZdLCJkYXRhX29mZnNldHMiOls1Miw2NF19LCJmbGFncyI6eyJkdHlwZSI6IkJPT0wiLCJzaGFwZSI6WzNdLCJkYXRhX29m\
        ZnNldHMiOls2NCw2N119ff3/////////BwAAAAAAAAAAAAAAAAD4P/yp8dJNYlC/AAAAAAAACEAAAAAgX6ACQgAAgD4APADBAAQBAAB8AIABAAE=
        """

    func testReadsFileWrittenByReferenceImplementation() throws {
        let bytes = [UInt8](Data(base64Encoded: Self.referenceFile)!)
        let file = try loadBytes(bytes, in: makeScratchDirectory(for: self))
        XCTAssertEqual(file.metadata, ["format": "np", "note": "ü\"\n"])
        XCTAssertEqual(file.order, ["long", "double", "single", "half", "flags"])
        XCTAssertEqual(file.sourceDTypes, ["long": "I64", "double": "F64", "single": "F32", "half": "F16", "flags": "BOOL"])
        XCTAssertEqual(file.tensors["long"]!.scalars, [-3, 7])
        XCTAssertEqual(file.tensors["double"]!.shape, [2, 2])
        XCTAssertEqual(file.tensors["double"]!.scalars, [1.5, Float(-1e-3), 3, 1e10])
        XCTAssertEqual(file.tensors["single"]!.shape, [])
        XCTAssertEqual(file.tensors["single"]!.item, 0.25)
        assertBitsEqual(file.tensors["half"]!.scalars, [1, -2.5, 0x1p-14, 0x1p-24, .infinity, -0.0])
        XCTAssertEqual(file.tensors["flags"]!.scalars, [1, 0, 1])
    }
}
