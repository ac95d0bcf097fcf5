// Modules and state dicts: timm-style names, loading with a report, and the formats that
// `import SSFNN` brings along.
import Foundation
import XCTest
import SSFEngine
import SSFNN

final class StateDictTests: XCTestCase {
    private final class Block: Module {
        let norm = LayerNorm(4)
        let fc: Linear
        init(using rng: inout RandomGenerator) { fc = Linear(4, 3, using: &rng) }
        var children: [(String, Module)] { [("norm", norm), ("fc", fc)] }
    }

    func testLoadReportsMissingUnexpectedAndMismatchedTensors() {
        var rng = RandomGenerator(seed: 3)
        let block = Block(using: &rng)
        XCTAssertEqual(block.stateDict().keys.sorted(), ["fc.bias", "fc.weight", "norm.bias", "norm.weight"])
        var state = block.stateDict()
        state["fc.bias"] = nil
        state["norm.weight"] = Tensor(shape: [1, 4], [1, 2, 3, 4])
        state["norm.bias"] = Tensor(shape: [5], [0, 0, 0, 0, 0])
        state["head.weight"] = Tensor(scalar: 1)
        let report = Block(using: &rng).load(stateDict: state)
        XCTAssertFalse(report.isExact)
        XCTAssertEqual(report.loaded, 2)
        XCTAssertEqual(report.missing, ["fc.bias"])
        XCTAssertEqual(report.unexpected, ["head.weight"])
        XCTAssertEqual(report.shapeMismatches.map(\.name), ["norm.bias"])
    }

    /// The checkpoint formats are reachable through `import SSFNN` alone (re-exported from SSFFormats).
    func testStateDictRoundTripsThroughSafeTensorsWithOneImport() throws {
        var rng = RandomGenerator(seed: 5)
        let block = Block(using: &rng)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-nn-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.save(block.stateDict(), to: url)
        XCTAssertEqual(try Checkpoint.format(of: url), .safetensors)
        let copy = Block(using: &rng)
        let report = copy.load(stateDict: try Checkpoint.read(url))
        XCTAssertTrue(report.isExact, "\(report)")
        XCTAssertEqual(SHA256.fingerprint(copy.stateDict()), SHA256.fingerprint(block.stateDict()))
    }
}
