// A training run killed outright (SIGKILL: the OOM killer, a preempted machine) at several points,
// each time continued with `ssf train --resume`, ends exactly where the uninterrupted run does: the
// same per-epoch losses and top-1, and the same weights in last, best and the task delta.
// Runs the built `ssf` (scripts/test builds it first). `tools/hard_kill_resume.sh` is the long version.
import Foundation
import XCTest
import SSFEngine
import SSFNN
import SSFTestSupport

final class HardKillResumeTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// Starts `ssf` with `arguments`; kills it with SIGKILL after `seconds` unless it ends first.
    /// Returns its exit status (128 + the signal for one that ended by a signal), or nil when it was killed.
    private func run(_ ssf: URL, _ arguments: [String], killAfter seconds: Double?, log: URL) throws -> Int32? {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = ssf
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        if let seconds {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { usleep(5_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return nil
            }
        }
        process.waitUntilExit()
        // A process ended by a signal reads as 128 + the signal, as a shell reports it, so a crash
        // is not mistaken for an exit status of its own.
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// The per-epoch figures that must not depend on interruptions (timings excluded).
    private func epochs(_ run: URL) throws -> [[String: Double]] {
        let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return object.filter { !["images_per_s", "epoch_seconds"].contains($0.key) }.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }

    private func tensors(_ url: URL) throws -> [String: [Float]] {
        try SafeTensors.load(url).tensors.mapValues(\.scalars)
    }

    func testKilledAnywhereAndResumedMatchesTheUninterruptedRun() throws {
        guard let ssf = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        let data = try writeShapesImageFolder(at: scratch.appendingPathComponent("shapes"))
        let common = ["train", "--model", "demo_vit_patch4_32", "--data", "imagefolder:\(data.path)", "--method", "ssf", "--epochs", "4",
                      "--batch-size", "16", "--workers", "0", "--threads", "1", "--lr", "3e-3"]
        let reference = scratch.appendingPathComponent("reference")
        let started = Date()
        XCTAssertEqual(try run(ssf, common + ["--output", reference.path], killAfter: nil, log: scratch.appendingPathComponent("reference.log")), 0)
        let duration = Date().timeIntervalSince(started)

        // Kill points as fractions of the whole run's time: some fall in start-up, in a step, in
        // evaluation or in a checkpoint write; each attempt continues from what the last one left.
        let killed = scratch.appendingPathComponent("killed")
        var kills = 0, attempt = 0
        var finished = false
        for fraction in [0.25, 0.5, 0.15, 0.6, 0.35, 0.7, 0.45, 0.8] {
            let resuming = FileManager.default.fileExists(atPath: killed.appendingPathComponent("config.yaml").path)
            let arguments = resuming ? ["train", "--resume", killed.path, "--workers", "0", "--threads", "1"] : common + ["--output", killed.path]
            attempt += 1
            let status = try run(ssf, arguments, killAfter: fraction * duration, log: scratch.appendingPathComponent("attempt\(attempt).log"))
            if let status {
                let log = (try? String(contentsOf: scratch.appendingPathComponent("attempt\(attempt).log"), encoding: .utf8)) ?? ""
                XCTAssertEqual(status, 0, log)
                finished = true
                break
            }
            kills += 1
        }
        if !finished {
            attempt += 1
            let log = scratch.appendingPathComponent("attempt\(attempt).log")
            let status = try run(ssf, ["train", "--resume", killed.path, "--workers", "0", "--threads", "1"], killAfter: nil, log: log)
            XCTAssertEqual(status, 0, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
        }
        XCTAssertGreaterThanOrEqual(kills, 3, "the run finished before it could be killed often enough")
        // Continued from checkpoints, not only started over.
        let logs = (1...attempt).map { (try? String(contentsOf: scratch.appendingPathComponent("attempt\($0).log"), encoding: .utf8)) ?? "" }
        let resumed = logs.filter { $0.contains("resuming at epoch") }.count
        print("hard kill: \(kills) kills over \(attempt) attempts, \(resumed) continued from a checkpoint")
        XCTAssertGreaterThanOrEqual(resumed, 1, logs.joined(separator: "\n---\n"))
        XCTAssertEqual(try epochs(killed), try epochs(reference))
        for file in ["last.safetensors", "best.safetensors", "task.delta.safetensors"] {
            XCTAssertEqual(try tensors(killed.appendingPathComponent(file)), try tensors(reference.appendingPathComponent(file)), file)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed.appendingPathComponent("resume.safetensors").path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: killed.path).filter { $0.hasSuffix(".tmp") }
        XCTAssertEqual(leftovers, [])
    }

    /// `--resume` on a run killed before its first epoch ended starts it from the beginning; on a
    /// finished run it says there is nothing to resume.
    func testResumeWithoutACheckpointStartsOverAndAFinishedRunIsRefused() throws {
        guard let ssf = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        let data = try writeShapesImageFolder(at: scratch.appendingPathComponent("shapes"), train: 16, test: 8)
        let dir = scratch.appendingPathComponent("run")
        let common = ["train", "--model", "demo_vit_patch4_32", "--data", "imagefolder:\(data.path)", "--epochs", "1", "--batch-size", "4",
                      "--workers", "0", "--threads", "1", "--output", dir.path]
        XCTAssertEqual(try self.run(ssf, common, killAfter: nil, log: scratch.appendingPathComponent("a.log")), 0)
        // As a kill in the first epoch leaves it: config.yaml and an empty metrics.jsonl.
        for name in ["summary.json", "last.safetensors", "best.safetensors", "task.delta.safetensors", "report.html"] {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(name))
        }
        try Data().write(to: dir.appendingPathComponent("metrics.jsonl"))
        try Data("partial".utf8).write(to: dir.appendingPathComponent(".last.safetensors.1234.5678.tmp"))
        let log = scratch.appendingPathComponent("b.log")
        XCTAssertEqual(try self.run(ssf, ["train", "--resume", dir.path, "--workers", "0", "--threads", "1"], killAfter: nil, log: log), 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(text.contains("no resume checkpoint yet"), text)
        XCTAssertEqual(try epochs(dir).count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent(".last.safetensors.1234.5678.tmp").path))
        let again = scratch.appendingPathComponent("c.log")
        XCTAssertNotEqual(try self.run(ssf, ["train", "--resume", dir.path, "--workers", "0", "--threads", "1"], killAfter: nil, log: again), 0)
        XCTAssertTrue(try String(contentsOf: again, encoding: .utf8).contains("holds a finished run"))
    }
}
