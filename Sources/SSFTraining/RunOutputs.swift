// What a training run writes, apart from the loop that produces it: the run directory's files.
// A data-parallel run gives its non-zero ranks `DiscardedOutputs`, so only rank 0 writes.
import Foundation
import SSFEngine
import SSFNN
import SSFReport
import SSFTuning

/// Where a run's files go. `Trainer` calls these at the points of the recipe; every file of the
/// run directory is written here and nowhere else.
public protocol RunOutputs: AnyObject {
    /// The run directory (named in messages even when nothing is written).
    var directory: URL { get }
    /// A fresh run: removes a previous run's checkpoints and writes `config.yaml` and an empty `metrics.jsonl`.
    func start(config: TrainingConfig) throws
    /// A resumed run: keeps the first `epochs` lines of `metrics.jsonl` and drops `summary.json`.
    func resume(keepingEpochs epochs: Int) throws
    func appendMetrics(_ metrics: EpochRecord) throws
    /// Writes the tensors as `name` (`last.safetensors`, `best.safetensors`, `resume.safetensors`).
    func saveTensors(_ tensors: [String: Tensor], metadata: [String: String], as name: String) throws
    func saveDelta(_ delta: DeltaFile) throws
    /// Writes `summary.json`, then removes `resume.safetensors`.
    func finish(summary: RunSummary) throws
    /// Whether the run directory holds `resume.safetensors`.
    var hasResumeCheckpoint: Bool { get }
    /// Whether the run directory holds `summary.json` (the run finished).
    var hasSummary: Bool { get }
    /// Writes the run's own `report.html`.
    func writeReport(title: String) throws
    /// The size of `task.delta.safetensors` when written.
    var deltaBytes: Int? { get }
    /// The resumable checkpoint.
    func loadResume() throws -> SafeTensorsFile
}

/// The run directory on disk.
public final class RunDirectory: RunOutputs {
    public let directory: URL
    public init(_ directory: URL) { self.directory = directory }

    public func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    public func start(config: TrainingConfig) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        removeAbandonedTemporaries()
        for name in ["resume.safetensors", "last.safetensors", "best.safetensors", "task.delta.safetensors", "summary.json"] {
            try? FileManager.default.removeItem(at: file(name))
        }
        // The stored config says what batch norm did, not "auto".
        try Data(try config.asStored.yaml().utf8).write(to: file("config.yaml"), options: .atomic)
        try Data().write(to: file("metrics.jsonl"))
    }

    public func resume(keepingEpochs epochs: Int) throws {
        removeAbandonedTemporaries()
        try? FileManager.default.removeItem(at: file("summary.json"))
        // Lines past the checkpoint's epoch (a half-written one included) are dropped: they are rewritten.
        let text = (try? String(contentsOf: file("metrics.jsonl"), encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().prefix(epochs)
        guard lines.count == epochs else {
            throw TrainingError("\(file("metrics.jsonl").path) holds \(lines.count) complete epoch lines, but resume.safetensors continues after epoch \(epochs)")
        }
        try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: file("metrics.jsonl"), options: .atomic)
    }

    /// The temporary files of checkpoint writes a killed process left (`.NAME.PID.N.tmp`).
    private func removeAbandonedTemporaries() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(".") && name.hasSuffix(".tmp") { try? FileManager.default.removeItem(at: file(name)) }
    }

    public var hasResumeCheckpoint: Bool { FileManager.default.fileExists(atPath: file("resume.safetensors").path) }
    public var hasSummary: Bool { FileManager.default.fileExists(atPath: file("summary.json").path) }

    public func appendMetrics(_ metrics: EpochRecord) throws {
        let handle = try FileHandle(forWritingTo: file("metrics.jsonl"))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: try metrics.jsonLine())
    }

    public func saveTensors(_ tensors: [String: Tensor], metadata: [String: String], as name: String) throws {
        try SafeTensors.save(tensors, metadata: metadata, to: file(name))
    }

    public func saveDelta(_ delta: DeltaFile) throws { try delta.save(to: file("task.delta.safetensors")) }

    public var deltaBytes: Int? {
        (try? FileManager.default.attributesOfItem(atPath: file("task.delta.safetensors").path))?[.size] as? Int
    }

    public func finish(summary: RunSummary) throws {
        // In this order, a kill between the two leaves a finished run, not one with nothing to resume.
        try summary.json().write(to: file("summary.json"), options: .atomic)
        try? FileManager.default.removeItem(at: file("resume.safetensors"))
    }

    public func writeReport(title: String) throws {
        try RunReport.write(runDirectories: [directory], title: title, to: file("report.html"))
    }

    public func loadResume() throws -> SafeTensorsFile { try SafeTensors.load(file("resume.safetensors")) }
}

/// Outputs that write nothing (a data-parallel rank other than 0). Resuming reads rank 0's directory.
public final class DiscardedOutputs: RunOutputs {
    public let directory: URL
    public init(readingFrom directory: URL) { self.directory = directory }
    public func start(config: TrainingConfig) throws {}
    public func resume(keepingEpochs epochs: Int) throws {}
    public func appendMetrics(_ metrics: EpochRecord) throws {}
    public func saveTensors(_ tensors: [String: Tensor], metadata: [String: String], as name: String) throws {}
    public func saveDelta(_ delta: DeltaFile) throws {}
    public func finish(summary: RunSummary) throws {}
    public func writeReport(title: String) throws {}
    public var deltaBytes: Int? { nil }
    public var hasResumeCheckpoint: Bool { FileManager.default.fileExists(atPath: directory.appendingPathComponent("resume.safetensors").path) }
    public var hasSummary: Bool { FileManager.default.fileExists(atPath: directory.appendingPathComponent("summary.json").path) }
    public func loadResume() throws -> SafeTensorsFile { try SafeTensors.load(directory.appendingPathComponent("resume.safetensors")) }
}
