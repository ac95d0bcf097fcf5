// `mpirun -np 2 ssf train` against one process: the same global batch, seed and data give the same
// per-epoch losses and top-1. Runs the built `ssf` binary (scripts/test builds it first) under
// Open MPI's `mpirun`; skips, saying what to install or build, where either is missing.
import Foundation
import XCTest
import SSFData
import SSFEngine
import SSFTestSupport

final class DataParallelTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// The `ssf` binary next to the test bundle (`.build/debug/ssf`).
    private func ssfBinary() throws -> URL {
        guard let found = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        return found
    }

    private func mpirun() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("no mpirun: install Open MPI with `sudo apt-get install -y libopenmpi-dev openmpi-bin` (scripts/deps.sh does it as root)")
    }

    /// An image folder of two procedural shape classes, 32×32 PNGs.
    private func makeDataset() throws -> URL { try writeShapesImageFolder(at: scratch.appendingPathComponent("shapes")) }

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_plm_rsh_agent"] = ""  // loopback only
        env["OMPI_MCA_btl"] = "self,vader,tcp"
        env["OMPI_MCA_btl_tcp_if_include"] = "lo"
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private func metrics(_ directory: URL) throws -> [[String: Double]] {
        let text = try String(contentsOf: directory.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Double]) }
    }

    func testTwoRanksMatchOneProcessForSSFAndFull() throws {
        let ssf = try ssfBinary().path, launcher = try mpirun()
        let data = try makeDataset()
        for method in ["ssf", "full"] {
            let common = ["train", "--model", "demo_vit_patch4_32", "--data", "imagefolder:\(data.path)", "--method", method,
                          "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--workers", "0", "--threads", "1"]
            let single = scratch.appendingPathComponent("\(method)-1"), parallel = scratch.appendingPathComponent("\(method)-2")
            let one = try run(ssf, common + ["--output", single.path])
            XCTAssertEqual(one.status, 0, one.output)
            let two = try run(launcher, ["--allow-run-as-root", "--oversubscribe", "-np", "2", ssf] + common + ["--output", parallel.path])
            XCTAssertEqual(two.status, 0, two.output)
            let (a, b) = (try metrics(single), try metrics(parallel))
            XCTAssertEqual(a.count, 2, method)
            XCTAssertEqual(b.count, a.count, method)
            for (x, y) in zip(a, b) {
                for key in ["train_loss", "eval_loss"] {
                    let (u, v) = (try XCTUnwrap(x[key]), try XCTUnwrap(y[key]))
                    // Two ranks sum their halves' gradients in another order than one process; full
                    // fine-tuning carries that through every weight for two epochs (2e-4 apart on
                    // OpenBLAS's AVX2 kernels), SSF through its few parameters.
                    let bound = method == "full" ? 1e-3 : 1e-4
                    XCTAssertLessThanOrEqual(abs(u - v) / abs(u), bound, "\(method) \(key): one process \(u), two ranks \(v)")
                }
                XCTAssertEqual(x["top1"], y["top1"], "\(method) top-1")
            }
            // Evaluation sharded over two ranks and summed: the counts and the loss of one process.
            let evalOne = try run(ssf, ["eval", "--run", single.path, "--workers", "0", "--json"])
            let evalTwo = try run(launcher, ["--allow-run-as-root", "--oversubscribe", "-np", "2", ssf, "eval", "--run", single.path, "--workers", "0", "--json"])
            XCTAssertEqual(evalTwo.status, 0, evalTwo.output)
            func figures(_ text: String) throws -> [String: Any] {
                let line = try XCTUnwrap(text.split(separator: "\n").last { $0.hasPrefix("{") })
                return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            }
            let (e1, e2) = (try figures(evalOne.output), try figures(evalTwo.output))
            XCTAssertEqual(e1["images"] as? Int, 32)
            XCTAssertEqual(e2["images"] as? Int, e1["images"] as? Int, method)
            XCTAssertEqual(e2["top1"] as? Double, e1["top1"] as? Double, method)
            XCTAssertEqual(try XCTUnwrap(e2["loss"] as? Double), try XCTUnwrap(e1["loss"] as? Double), accuracy: 1e-5, method)
            // Rank 0 alone wrote the run directory, once.
            XCTAssertTrue(FileManager.default.fileExists(atPath: parallel.appendingPathComponent("summary.json").path))
            XCTAssertTrue(FileManager.default.fileExists(atPath: parallel.appendingPathComponent("best.safetensors").path))
        }
    }

    /// SIGTERM to `mpirun` stops both ranks at the same update with one resume checkpoint; resuming
    /// under `mpirun` ends where an uninterrupted single process ends.
    func testStopAndResumeUnderMPIMatchesOneProcess() throws {
        let ssf = try ssfBinary().path, launcher = try mpirun()
        let data = try makeDataset()
        let common = ["train", "--model", "demo_vit_patch4_32", "--data", "imagefolder:\(data.path)", "--method", "ssf",
                      "--epochs", "8", "--batch-size", "4", "--lr", "3e-3", "--workers", "0", "--threads", "1"]
        let single = scratch.appendingPathComponent("whole"), stopped = scratch.appendingPathComponent("stopped")
        let one = try run(ssf, common + ["--output", single.path])
        XCTAssertEqual(one.status, 0, one.output)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher)
        process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", ssf] + common + ["--output", stopped.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Stop once two epochs are on record (six remain: the run cannot finish before the signal lands).
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, process.isRunning,
              ((try? String(contentsOf: stopped.appendingPathComponent("metrics.jsonl"), encoding: .utf8))?.split(separator: "\n").count ?? 0) < 2 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        process.waitUntilExit()
        let resumeFile = stopped.appendingPathComponent("resume.safetensors")
        XCTAssertTrue(FileManager.default.fileExists(atPath: resumeFile.path), "no resume checkpoint after SIGTERM")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stopped.appendingPathComponent("summary.json").path))

        let resumed = try run(launcher, ["--allow-run-as-root", "--oversubscribe", "-np", "2", ssf, "train", "--resume", stopped.path,
                                         "--workers", "0", "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let (a, b) = (try metrics(single), try metrics(stopped))
        XCTAssertEqual(b.count, 8)
        for (x, y) in zip(a, b) {
            let (u, v) = (try XCTUnwrap(x["train_loss"]), try XCTUnwrap(y["train_loss"]))
            XCTAssertLessThanOrEqual(abs(u - v) / abs(u), 1e-4, "epoch \(Int(x["epoch"] ?? -1)): one process \(u), stopped and resumed on two ranks \(v)")
            XCTAssertEqual(x["top1"], y["top1"])
        }
    }

    func testBatchThatRanksCannotSplitIsRefused() throws {
        let ssf = try ssfBinary().path, launcher = try mpirun()
        let data = try makeDataset()
        let result = try run(launcher, ["--allow-run-as-root", "--oversubscribe", "-np", "2", ssf, "train", "--model", "demo_vit_patch4_32",
                                        "--data", "imagefolder:\(data.path)", "--epochs", "1", "--batch-size", "7", "--workers", "0",
                                        "--output", scratch.appendingPathComponent("odd").path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("must be divisible by the 2 ranks"), result.output)
        XCTAssertTrue(result.output.contains("rank 0 of 2:"), result.output)
    }

    /// Ranks started with different settings (MPMD: another learning rate on rank 1) refuse to train.
    func testRanksWithDifferentSettingsAreRefused() throws {
        let ssf = try ssfBinary().path, launcher = try mpirun()
        let data = try makeDataset()
        func rank(_ lr: String) -> [String] {
            ["-np", "1", ssf, "train", "--model", "demo_vit_patch4_32", "--data", "imagefolder:\(data.path)", "--epochs", "1",
             "--batch-size", "8", "--lr", lr, "--workers", "0", "--output", scratch.appendingPathComponent("mixed").path]
        }
        let result = try run(launcher, ["--allow-run-as-root", "--oversubscribe"] + rank("1e-3") + [":"] + rank("2e-3"))
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("have another configuration than rank 0"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("mixed/metrics.jsonl").path))
    }
}
