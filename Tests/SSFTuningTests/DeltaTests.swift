// Delta files: only SSF vectors and head, bound to their base by fingerprint; counts by tuning method.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
@testable import SSFTuning

final class DeltaTests: XCTestCase {
    private func tinyViT(_ rng: inout RandomGenerator, classes: Int = 5) -> VisionTransformer {
        VisionTransformer(config: .init(imgSize: 32, patchSize: 8, numClasses: classes, embedDim: 24, depth: 2, numHeads: 3), using: &rng)
    }

    func testRoundTripAndBaseCheck() throws {
        var rng = RandomGenerator(seed: 4)
        let base = tinyViT(&rng, classes: 1000)
        let tuned = tinyViT(&rng)
        tuned.load(stateDict: base.stateDict().filter { !$0.key.hasPrefix("head.") })
        TuningMethod.ssf.apply(to: tuned, using: &rng)
        let delta = DeltaFile(ssfState: tuned.stateDict(), baseModel: "vit_tiny_patch16_224", classNames: ["a", "b", "c", "d", "e"])
        XCTAssertTrue(delta.tensors.keys.allSatisfy { DeltaFile.isDeltaKey($0, headName: delta.headName) })
        XCTAssertEqual(delta.tensors.values.reduce(0) { $0 + $1.count }, tuned.trainableCount)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-delta-\(UInt32.random(in: 0...UInt32.max)).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try delta.save(to: url)
        let loaded = try DeltaFile(contentsOf: url)
        XCTAssertEqual(loaded.classNames, ["a", "b", "c", "d", "e"])
        XCTAssertEqual(loaded.baseFingerprint, delta.baseFingerprint)

        // Applying to the right base restores the tuned state exactly.
        let state = try loaded.ssfState(onBase: base.stateDict(), model: "vit_tiny_patch16_224")
        XCTAssertEqual(Set(state.keys), Set(tuned.stateDict().keys))
        for (k, v) in tuned.stateDict() { XCTAssertEqual(state[k]?.scalars, v.scalars, k) }

        // Another base or another architecture is refused with a message that says so.
        let other = tinyViT(&rng, classes: 1000)
        XCTAssertThrowsError(try loaded.ssfState(onBase: other.stateDict(), model: "vit_tiny_patch16_224")) { error in
            XCTAssertTrue("\(error)".contains("different vit_tiny_patch16_224 checkpoint"), "\(error)")
        }
        XCTAssertThrowsError(try loaded.ssfState(onBase: base.stateDict(), model: "swin_tiny_patch4_window7_224")) { error in
            XCTAssertTrue("\(error)".contains("adapts vit_tiny_patch16_224"), "\(error)")
        }
    }

    func testPlainCheckpointIsNotADelta() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-notdelta-\(UInt32.random(in: 0...UInt32.max)).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.save(["head.weight": .ones([2, 2])], to: url)
        XCTAssertThrowsError(try DeltaFile(contentsOf: url)) { error in
            XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains("not an SSF delta file"), "\(error)")
        }
    }

    func testSHA256KnownVectors() {
        var empty = SHA256()
        XCTAssertEqual(empty.finalizeHex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = SHA256()
        abc.update("abc")
        XCTAssertEqual(abc.finalizeHex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256()
        for _ in 0..<1000 { long.update("a") }
        XCTAssertEqual(long.finalizeHex(), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}

final class TrainingModeTests: XCTestCase {
    /// Every family's drop-path modules are reachable, so `setTraining` switches them all.
    func testSetTrainingReachesEveryDropPath() throws {
        for name in ["vit_tiny_patch16_224", "swin_tiny_patch4_window7_224", "convnext_tiny", "as_tiny_patch4_window7_224", "tf_efficientnet_lite0"] {
            let model = try ModelRegistry.create(name, numClasses: 2)
            let drops = model.namedModules().compactMap { $0.1 as? DropPath }
            XCTAssertFalse(drops.isEmpty, "\(name) lists no DropPath modules")
            model.setTraining(true)
            XCTAssertTrue(drops.allSatisfy(\.training), name)
        }
    }
}
