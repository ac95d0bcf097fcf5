// `sweep.json`: the schema of a sweep's record (base settings, grid, splits, every trial's runs with
// their validation top-1, the choice and the final run's test figures), read and written atomically.
import Foundation

/// How far a sweep got.
public enum SweepStatus: String, Codable, Sendable {
    /// Runs are in progress (or the process died; `--resume` continues).
    case running
    /// Stopped on request or by an error; `--resume` continues.
    case interrupted
    /// Every planned run finished.
    case finished
}

/// How one training run of a sweep ended.
public enum SweepRunStatus: String, Codable, Sendable {
    case running, finished, interrupted, failed
}

/// Where a trial stands.
public enum SweepTrialStatus: String, Codable, Sendable {
    /// Not run yet, or waiting for its next rung.
    case pending
    /// A run of it is in progress.
    case running
    /// Stopped mid-run; its run directory holds resume.safetensors.
    case interrupted
    /// A run of it threw (a non-finite loss, say); it is not a candidate.
    case failed
    /// Finished a rung of successive halving but was not among the best of it.
    case pruned
    /// Finished the last rung it was planned for: a candidate for the choice.
    case finished
}

/// One training run of a trial (one per rung it reached).
public struct SweepRunRecord: Codable, Equatable, Sendable {
    /// 0 without successive halving.
    public var rung: Int
    /// Epochs of the run, cooldown included.
    public var epochs: Int
    /// The run directory, relative to the sweep directory.
    public var directory: String
    public var status: SweepRunStatus
    /// Final-epoch validation top-1 and top-5 in percent.
    public var valTop1: Double?
    public var valTop5: Double?
    public var trainSeconds: Double?
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case rung, epochs, directory, status, valTop1 = "val_top1", valTop5 = "val_top5", trainSeconds = "train_seconds", error
    }
}

/// One trial: its settings and its runs.
public struct SweepTrialRecord: Codable, Equatable, Sendable {
    public var index: Int
    /// The run directory's name under `trials/`.
    public var name: String
    public var settings: [String: SweepValue]
    public var status: SweepTrialStatus
    public var runs: [SweepRunRecord]

    /// The highest rung the trial finished.
    public var rungReached: Int? { runs.last { $0.status == .finished }?.rung }

    /// Validation top-1 of the highest rung it finished.
    public var valTop1: Double? { runs.last { $0.status == .finished }?.valTop1 }
}

/// The chosen configuration.
public struct SweepChoice: Codable, Equatable, Sendable {
    public var trial: Int
    public var name: String
    public var settings: [String: SweepValue]
    /// The validation top-1 it was chosen on, and that run's rung.
    public var valTop1: Double
    public var rung: Int

    enum CodingKeys: String, CodingKey { case trial, name, settings, valTop1 = "val_top1", rung }
}

/// The chosen configuration retrained on all the training images and measured once on the test split.
public struct SweepFinalRecord: Codable, Equatable, Sendable {
    /// `final`, relative to the sweep directory.
    public var directory: String
    public var status: SweepRunStatus
    public var epochs: Int
    public var trainImages: Int
    public var testImages: Int
    public var testTop1: Double?
    public var testTop5: Double?
    public var trainSeconds: Double?
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case directory, status, epochs, trainImages = "train_images", testImages = "test_images", testTop1 = "test_top1", testTop5 = "test_top5"
        case trainSeconds = "train_seconds", error
    }
}

/// Everything `sweep.json` holds.
public struct SweepRecord: Codable, Equatable, Sendable {
    /// The schema's name and version.
    public static let currentFormat = "ssf-sweep/1"
    public var format = SweepRecord.currentFormat
    public var status: SweepStatus
    /// The settings every trial starts from (defaults ← preset ← config file ← flags).
    public var base: TrainingConfig
    public var grid: [SweepAxis]
    /// nil: every trial runs once with the full schedule.
    public var halving: SuccessiveHalving?
    public var splits: SweepSplits
    public var trials: [SweepTrialRecord]
    public var chosen: SweepChoice?
    public var final: SweepFinalRecord?

    public init(status: SweepStatus, base: TrainingConfig, grid: [SweepAxis], halving: SuccessiveHalving?, splits: SweepSplits,
                trials: [SweepTrialRecord], chosen: SweepChoice? = nil, final: SweepFinalRecord? = nil) {
        self.status = status; self.base = base; self.grid = grid; self.halving = halving; self.splits = splits
        self.trials = trials; self.chosen = chosen; self.final = final
    }

    /// Reads `sweep.json`; the error names the file and the problem.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw SweepError("\(url.path): cannot be read (\(error.localizedDescription))") }
        do {
            self = try JSONDecoder().decode(SweepRecord.self, from: data)
        } catch {
            throw SweepError("\(url.path): not a sweep record (\(error))")
        }
        guard format == Self.currentFormat else { throw SweepError("\(url.path): format '\(format)', expected \(Self.currentFormat)") }
    }

    /// Writes atomically (temp file and rename), keys sorted.
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (try encoder.encode(self) + Data("\n".utf8)).write(to: url, options: .atomic)
    }
}

/// A sweep that cannot start or go on.
public struct SweepError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
