// `ssf robustness` and `ssf eval --corruption` / `--class-subset` as processes on a small shapes
// folder with a randomly initialised demo ViT: the record's shape, determinism under --seed, the
// files --output writes, and the errors for bad corruption names, severities and class subsets.
import Foundation
import SSFTestSupport
import XCTest

final class RobustnessCommandTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-robustness-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    /// Runs `ssf` with `arguments`; its exit status, standard output and standard error.
    private func run(_ ssf: URL, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = ssf
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile(), errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    func testRobustnessRecordIsDeterministicAndWritesItsFiles() throws {
        guard let ssf = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        let data = try writeShapesImageFolder(at: scratch.appendingPathComponent("shapes"), train: 4, test: 16)
        let common = ["robustness", "--model", "demo_vit_patch4_32", "--num-classes", "2", "--data", "imagefolder:\(data.path)", "--split", "test",
                      "--corruptions", "gaussian_noise,contrast,fog", "--severities", "5,1", "--workers", "0", "--threads", "1", "--json"]
        let output = scratch.appendingPathComponent("report")
        let first = try run(ssf, common + ["--seed", "3", "--output", output.path])
        XCTAssertEqual(first.status, 0, first.err)
        let second = try run(ssf, common + ["--seed", "3"])
        XCTAssertEqual(second.status, 0, second.err)
        XCTAssertEqual(first.out, second.out, "the same seed gives the same record")

        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(first.out.utf8)) as? [String: Any])
        XCTAssertEqual(record["severities"] as? [Int], [1, 5])
        XCTAssertEqual(record["seed"] as? Int, 3)
        let corruptions = try XCTUnwrap(record["corruptions"] as? [String: [String: Any]])
        XCTAssertEqual(Set(corruptions.keys), ["gaussian_noise", "contrast", "fog"])
        let all = try corruptions.values.flatMap { try XCTUnwrap($0["top1"] as? [String: Double]).values }
        XCTAssertEqual(all.count, 6)
        let mca = try XCTUnwrap(record["mca"] as? Double), clean = try XCTUnwrap((record["clean"] as? [String: Any])?["top1"] as? Double)
        XCTAssertEqual(mca, all.reduce(0, +) / 6, accuracy: 1e-3)
        XCTAssertEqual(try XCTUnwrap(record["relative_drop"] as? Double), clean > 0 ? (clean - mca) / clean : 0, accuracy: 1e-5)
        // Progress goes to standard error, one line per evaluation.
        XCTAssertEqual(first.err.components(separatedBy: "\n").filter { $0.hasPrefix("[") }.count, 7, first.err)

        let written = try String(contentsOf: output.appendingPathComponent("robustness.json"), encoding: .utf8)
        XCTAssertEqual(written, first.out)
        let page = try String(contentsOf: output.appendingPathComponent("robustness.html"), encoding: .utf8)
        XCTAssert(page.contains("data-chart=\"top1_by_severity\""))

        // The table without --json names every corruption and the summary.
        let table = try run(ssf, Array(common.dropLast()) + ["--seed", "3"])
        XCTAssertEqual(table.status, 0, table.err)
        for name in ["gaussian_noise", "contrast", "fog", "mean over corruptions", "clean top-1", "mCA", "relative drop"] {
            XCTAssert(table.out.contains(name), "\(name) missing from:\n\(table.out)")
        }
    }

    func testEvalWithCorruptionAndClassSubset() throws {
        guard let ssf = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        let data = try writeShapesImageFolder(at: scratch.appendingPathComponent("shapes"), train: 4, test: 8)
        // The demo model's default head has 8 classes; the folder's 2 classes are its columns 6 and 2.
        let subset = scratch.appendingPathComponent("subset.txt")
        try "# folder order\n6, 2\n".write(to: subset, atomically: true, encoding: .utf8)
        let common = ["eval", "--model", "demo_vit_patch4_32", "--data", "imagefolder:\(data.path)", "--split", "test", "--workers", "0", "--threads", "1"]
        let corrupted = try run(ssf, common + ["--corruption", "impulse_noise:2", "--seed", "5", "--class-subset", subset.path, "--json"])
        XCTAssertEqual(corrupted.status, 0, corrupted.err)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(corrupted.out.utf8)) as? [String: Any])
        XCTAssertEqual(record["corruption"] as? String, "impulse_noise")
        XCTAssertEqual(record["severity"] as? Int, 2)
        XCTAssertEqual((record["class_subset"] as? [String: Any])?["classes"] as? Int, 2)
        XCTAssertEqual(try run(ssf, common + ["--corruption", "impulse_noise:2", "--seed", "5", "--class-subset", subset.path, "--json"]).out
                       .replacingOccurrences(of: #""images_per_s":[0-9.]+"#, with: "", options: .regularExpression),
                       corrupted.out.replacingOccurrences(of: #""images_per_s":[0-9.]+"#, with: "", options: .regularExpression))

        let badSeverity = try run(ssf, common + ["--corruption", "fog:6"])
        XCTAssertNotEqual(badSeverity.status, 0)
        XCTAssert(badSeverity.err.contains("--corruption: 'fog:6': severity '6' is not an integer from 1 to 5"), badSeverity.err)
        let badName = try run(ssf, ["robustness"] + common.dropFirst() + ["--corruptions", "gaussian_noise,snow"])
        XCTAssertNotEqual(badName.status, 0)
        XCTAssert(badName.err.contains("unknown corruption 'snow'; valid names: gaussian_noise, shot_noise"), badName.err)
        let badSeverities = try run(ssf, ["robustness"] + common.dropFirst() + ["--severities", "1,7"])
        XCTAssert(badSeverities.err.contains("--severities: '1,7' is not a comma-separated list of integers from 1 to 5"), badSeverities.err)

        try "6\n8\n".write(to: subset, atomically: true, encoding: .utf8)
        let outside = try run(ssf, common + ["--class-subset", subset.path])
        XCTAssertNotEqual(outside.status, 0)
        XCTAssert(outside.err.contains("\(subset.path): class index 8 is outside the model's head of 8 classes (0–7)"), outside.err)
        try "6 6\n".write(to: subset, atomically: true, encoding: .utf8)
        XCTAssert(try run(ssf, common + ["--class-subset", subset.path]).err.contains("class index 6 is listed twice"))
    }
}
