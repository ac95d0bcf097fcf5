// The sweep runner: every trial of a grid trained in turn by the `Trainer` and validated (optionally as
// successive-halving rungs), the best by validation top-1 chosen, retrained on all the training images and
// measured once on the test split; `sweep.json` after every run, `report.html` at the end; resumable.
import Foundation
import SSFModels
import SSFReport

/// What a sweep reports while it runs.
public enum SweepEvent {
    /// The sweep directory is ready and the first run is about to be trained or read back.
    case started(resuming: Bool)
    /// A run starts (or continues from its resume.safetensors).
    case runStarting(SweepRunInfo)
    /// A run had finished before (`resume`); it is not trained again.
    case runSkipped(SweepRunInfo, top1: Double?)
    /// A run finished: its final-epoch top-1/top-5 on its evaluation split (validation, or test for the final run).
    case runFinished(SweepRunInfo, top1: Double?, top5: Double?, seconds: Double?)
    /// A run threw; the sweep goes on without it.
    case runFailed(SweepRunInfo, error: String)
    /// Successive halving keeps these trials for the next rung.
    case rungFinished(rung: Int, survivors: [Int])
    /// The trainer's own progress.
    case training(TrainingEvent)
    /// A note for the log.
    case message(String)
}

/// One run of a sweep, as progress lines describe it.
public struct SweepRunInfo: Sendable {
    /// The trial's index, nil for the final run.
    public let trial: Int?
    public let trialCount: Int
    /// `lr=0.001 weight_decay=0.05`.
    public let label: String
    /// The rung (nil for the final run) and the number of rungs.
    public let rung: Int?
    public let rungCount: Int
    /// Epochs, cooldown included.
    public let epochs: Int
    public let directory: URL
    public let trainImages: Int
    public let evalImages: Int
    public let evalSplit: String
    /// It continues from resume.safetensors.
    public let resuming: Bool
}

/// How a sweep's `run` ended.
public enum SweepOutcome: Equatable, Sendable {
    case finished
    /// Stopped on request; `run(resume: true)` continues.
    case interrupted
}

/// Runs a grid of trials and the final run, writing `sweep.json`, `trials/`, `final/` and `report.html`
/// under `directory`.
public final class Sweep {
    public let directory: URL
    public let base: TrainingConfig
    public let grid: SweepGrid
    public let data: SweepData
    public let halving: SuccessiveHalving?
    /// Retrain the choice on all the training images and measure it on the test split.
    public let runsFinal: Bool
    /// Builds a run's model from its configuration and the class count.
    let makeModel: (TrainingConfig, Int) throws -> RunModel
    public let trials: [SweepTrial]
    /// Each trial's configuration with the full schedule.
    public let configurations: [TrainingConfig]
    /// The record as it stands (written to sweep.json after every run).
    public private(set) var record: SweepRecord

    /// Checked before each run and, by the trainer, after each update; true stops at a resumable point.
    public var shouldStop: () -> Bool = { false }
    public var onEvent: (SweepEvent) -> Void = { _ in }

    public init(directory: URL, base: TrainingConfig, grid: SweepGrid, data: SweepData, halving: SuccessiveHalving? = nil,
                runsFinal: Bool = true, makeModel: @escaping (TrainingConfig, Int) throws -> RunModel) throws {
        guard !runsFinal || data.test != nil else { throw SweepError("the sweep has no test split to measure the final run on") }
        self.directory = directory; self.base = base; self.grid = grid; self.data = data; self.halving = halving
        self.runsFinal = runsFinal; self.makeModel = makeModel
        trials = grid.trials
        configurations = try grid.configurations(base: base)
        record = SweepRecord(status: .running, base: base, grid: grid.axes, halving: halving, splits: data.splits,
                             trials: trials.map { trial in
                                 SweepTrialRecord(index: trial.index, name: trial.name,
                                                  settings: Dictionary(uniqueKeysWithValues: trial.settings.map { ($0.key, $0.value) }),
                                                  status: .pending, runs: [])
                             })
    }

    public var recordURL: URL { directory.appendingPathComponent("sweep.json") }
    public var reportURL: URL { directory.appendingPathComponent("report.html") }
    private var rungCount: Int { halving?.rungs ?? 1 }

    /// The run directory of a trial's rung, relative to the sweep directory: `trials/NNN-settings`, with
    /// `/rung-R` under it when halving.
    public func runDirectory(trial: Int, rung: Int) -> String {
        "trials/\(trials[trial].name)" + (halving == nil ? "" : "/rung-\(rung)")
    }

    /// A trial's configuration at a rung, with the splits it really trains and validates on.
    public func configuration(trial: Int, rung: Int) -> TrainingConfig {
        var c = halving?.config(configurations[trial], rung: rung) ?? configurations[trial]
        c.trainSplit = data.splits.trialTrainSplit
        c.evalSplit = data.splits.validationSplit
        return c
    }

    /// The final run's configuration: the chosen trial's full schedule on the final training images,
    /// evaluated once, after the last epoch, on the test split.
    public func finalConfiguration(trial: Int) -> TrainingConfig {
        var c = configurations[trial]
        c.trainSplit = data.splits.finalTrainSplit
        c.evalSplit = data.splits.testSplit
        c.evalEveryEpoch = false
        return c
    }

    /// Runs what is left. Without `resume` the directory must be empty or absent; with it, finished runs
    /// are read back, stopped ones continue from resume.safetensors, and the rest run.
    public func run(resume: Bool) throws -> SweepOutcome {
        try prepare(resume: resume)
        onEvent(.started(resuming: resume))
        do {
            let outcome = try runAll(resume: resume)
            record.status = outcome == .finished ? .finished : .interrupted
        } catch {
            record.status = .interrupted
            try? save()
            writeReport()
            throw error
        }
        try save()
        writeReport()
        return record.status == .finished ? .finished : .interrupted
    }

    private func runAll(resume: Bool) throws -> SweepOutcome {
        var alive = Array(trials.indices)
        var scores: [SweepScore] = []
        for rung in 0..<rungCount {
            if rung > 0, alive.count == 1 { break }
            scores = []
            for trial in alive {
                if shouldStop() { return .interrupted }
                let result = try runTrial(trial, rung: rung, resume: resume)
                guard result.status != .interrupted else { return .interrupted }
                scores.append(SweepScore(trial: trial, lr: configurations[trial].lr, top1: result.status == .finished ? result.top1 : nil))
            }
            if let halving, rung < rungCount - 1 {
                let survivors = SweepSelection.survivors(scores, count: halving.survivorCount(alive.count))
                for trial in alive where !survivors.contains(trial) && record.trials[trial].status != .failed {
                    record.trials[trial].status = .pruned
                }
                alive = survivors
                try save()
                onEvent(.rungFinished(rung: rung, survivors: survivors))
            }
            guard !alive.isEmpty else { break }
        }
        for trial in alive where record.trials[trial].status != .failed { record.trials[trial].status = .finished }
        guard let chosen = SweepSelection.best(scores.filter { alive.contains($0.trial) }) else {
            let failed = record.trials.compactMap { $0.runs.last?.error }.first
            throw SweepError("no trial finished" + (failed.map { "; the first failure: \($0)" } ?? ""))
        }
        let chosenRun = record.trials[chosen].runs.last!
        record.chosen = SweepChoice(trial: chosen, name: trials[chosen].name, settings: record.trials[chosen].settings,
                                    valTop1: chosenRun.valTop1 ?? 0, rung: chosenRun.rung)
        try save()
        guard runsFinal else { return .finished }
        return try runFinal(trial: chosen, resume: resume) ? .finished : .interrupted
    }

    /// Trains (or reads back) one rung of a trial and records it.
    private func runTrial(_ trial: Int, rung: Int, resume: Bool) throws -> RunResult {
        let config = configuration(trial: trial, rung: rung)
        let relative = runDirectory(trial: trial, rung: rung)
        var run = SweepRunRecord(rung: rung, epochs: config.totalEpochs, directory: relative, status: .running)
        let info = SweepRunInfo(trial: trial, trialCount: trials.count, label: trials[trial].label, rung: rung, rungCount: rungCount,
                                epochs: config.totalEpochs, directory: directory.appendingPathComponent(relative),
                                trainImages: data.trialTrain.count, evalImages: data.validation.count, evalSplit: data.splits.validationSplit,
                                resuming: resume && isResumable(directory.appendingPathComponent(relative)))
        let result = try train(config: config, data: data.trialData, info: info, resume: resume)
        run.status = result.status; run.valTop1 = result.top1; run.valTop5 = result.top5; run.trainSeconds = result.seconds; run.error = result.error
        record.trials[trial].runs.append(run)
        switch result.status {
        case .finished: record.trials[trial].status = .pending
        case .failed: record.trials[trial].status = .failed
        case .interrupted, .running: record.trials[trial].status = .interrupted
        }
        try save()
        return result
    }

    /// Trains the final run; false when stopped.
    private func runFinal(trial: Int, resume: Bool) throws -> Bool {
        guard let finalData = data.finalData else { throw SweepError("the sweep has no test split to measure the final run on") }
        let config = finalConfiguration(trial: trial)
        let url = directory.appendingPathComponent("final")
        let info = SweepRunInfo(trial: nil, trialCount: trials.count, label: trials[trial].label, rung: nil, rungCount: rungCount,
                                epochs: config.totalEpochs, directory: url, trainImages: finalData.train.count, evalImages: finalData.eval.count,
                                evalSplit: finalData.evalSplit, resuming: resume && isResumable(url))
        var final = SweepFinalRecord(directory: "final", status: .running, epochs: config.totalEpochs, trainImages: finalData.train.count,
                                     testImages: finalData.eval.count)
        record.final = final
        try save()
        let result = try train(config: config, data: finalData, info: info, resume: resume)
        final.status = result.status; final.testTop1 = result.top1; final.testTop5 = result.top5
        final.trainSeconds = result.seconds; final.error = result.error
        record.final = final
        if result.status == .failed { throw SweepError("the final run failed: \(result.error ?? "?")") }
        return result.status == .finished
    }

    private func isResumable(_ url: URL) -> Bool {
        FileManager.default.fileExists(atPath: url.appendingPathComponent("resume.safetensors").path)
    }

    /// How one training run ended, with its final-epoch figures.
    private struct RunResult {
        var status: SweepRunStatus
        var top1: Double?, top5: Double?, seconds: Double?
        var error: String?
    }

    /// One training run: read back when finished before, continued when stopped, else trained afresh.
    private func train(config: TrainingConfig, data: TrainingData, info: SweepRunInfo, resume: Bool) throws -> RunResult {
        let url = info.directory
        let fm = FileManager.default
        if resume, fm.fileExists(atPath: url.appendingPathComponent("config.yaml").path) {
            try Self.requireSameSettings(config, storedIn: url)
            if fm.fileExists(atPath: url.appendingPathComponent("summary.json").path) {
                let summary = try RunRecord(directory: url).summary
                onEvent(.runSkipped(info, top1: summary?.finalTop1))
                return RunResult(status: .finished, top1: summary?.finalTop1, top5: summary?.finalTop5, seconds: summary?.trainSeconds)
            }
        }
        onEvent(.runStarting(info))
        let outcome: TrainingOutcome
        do {
            let built = try makeModel(config, data.train.classNames.count)
            let trainer = try Trainer(config: config, model: built.model, modelName: config.model, data: data, preprocess: built.preprocess,
                                      directory: url, writesDelta: built.writesDelta)
            trainer.shouldStop = shouldStop
            trainer.onEvent = { [onEvent] in onEvent(.training($0)) }
            outcome = try trainer.run(resume: info.resuming)
        } catch let error as TrainingError {
            onEvent(.runFailed(info, error: error.description))
            return RunResult(status: .failed, error: error.description)
        }
        guard outcome == .finished else { return RunResult(status: .interrupted) }
        let summary = try RunRecord(directory: url).summary
        onEvent(.runFinished(info, top1: summary?.finalTop1, top5: summary?.finalTop5, seconds: summary?.trainSeconds))
        return RunResult(status: .finished, top1: summary?.finalTop1, top5: summary?.finalTop5, seconds: summary?.trainSeconds)
    }

    // MARK: The sweep directory

    /// Refuses a used directory without `resume`; with it, checks that a stored sweep.json describes this sweep.
    private func prepare(resume: Bool) throws {
        let fm = FileManager.default
        let used = ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix(".") }
        if !used.isEmpty {
            guard resume else {
                throw SweepError("\(directory.path) is not empty (it holds \(used.sorted().prefix(3).joined(separator: ", "))\(used.count > 3 ? ", …" : "")); "
                                 + "pass --resume to continue the sweep in it, or choose another --output")
            }
            if fm.fileExists(atPath: recordURL.path) {
                let stored = try SweepRecord(contentsOf: recordURL)
                var problems = Self.differences(stored.base, base).map { "base setting \($0)" }
                if stored.grid != grid.axes { problems.append("the grid (\(Self.gridText(stored.grid)) there, \(Self.gridText(grid.axes)) now)") }
                if stored.halving != halving { problems.append("successive halving") }
                if stored.splits != data.splits { problems.append("the splits") }
                if !problems.isEmpty {
                    throw SweepError("\(recordURL.path): the sweep there differs in \(problems.joined(separator: "; ")); "
                                     + "resume it with the same settings, or choose another --output")
                }
            }
        }
        try fm.createDirectory(at: directory.appendingPathComponent("trials"), withIntermediateDirectories: true)
        try save()
    }

    /// A run directory left by an earlier sweep must have been made with the same settings (loader workers aside).
    static func requireSameSettings(_ config: TrainingConfig, storedIn url: URL) throws {
        let stored = try TrainingConfig.stored(inRunDirectory: url)
        let keys = differences(stored.asStored, config.asStored)
        guard keys.isEmpty else {
            throw SweepError("\(url.appendingPathComponent("config.yaml").path): this run was made with other settings (\(keys.joined(separator: ", "))); "
                             + "resume with the same settings, or choose another --output")
        }
    }

    /// The configuration keys whose values differ, `workers` aside.
    static func differences(_ a: TrainingConfig, _ b: TrainingConfig) -> [String] {
        func values(_ c: TrainingConfig) -> [String: String] {
            let object = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(c))) as? [String: Any] ?? [:]
            return object.mapValues { "\($0)" }
        }
        let x = values(a), y = values(b)
        return Set(x.keys).union(y.keys).subtracting(["workers"]).sorted().compactMap { key in
            x[key] == y[key] ? nil : "\(key): \(x[key] ?? "unset") there, \(y[key] ?? "unset") now"
        }
    }

    private static func gridText(_ axes: [SweepAxis]) -> String {
        axes.map { "\($0.key)=\($0.values.map(\.description).joined(separator: ","))" }.joined(separator: " ")
    }

    private func save() throws { try record.write(to: recordURL) }

    /// The sweep's page; the sweep stands without it.
    private func writeReport() {
        do {
            try SweepReport.write(SweepPageContent(record: record, directory: directory), to: reportURL)
        } catch {
            onEvent(.message("could not write \(reportURL.path): \(error)"))
        }
    }
}
