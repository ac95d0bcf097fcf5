// The sweep page's content from a sweep's record: the table's values per trial and rung, the words on
// how the trials were validated and chosen, and the final run's figures.
import Foundation
import SSFReport

extension SweepPageContent {
    /// The page of the sweep in `directory` as `record` describes it.
    public init(record: SweepRecord, directory: URL) {
        let keys = record.grid.map(\.key)
        let rungs = record.halving?.rungs ?? 1
        let fm = FileManager.default
        let trials = record.trials.map { trial -> Trial in
            var top1 = [Double?](repeating: nil, count: rungs), epochs = [Int?](repeating: nil, count: rungs)
            for run in trial.runs where run.rung < rungs {
                epochs[run.rung] = run.epochs
                if run.status == .finished { top1[run.rung] = run.valTop1 }
            }
            let seconds = trial.runs.compactMap(\.trainSeconds)
            let drawn = trial.runs.last { fm.fileExists(atPath: directory.appendingPathComponent($0.directory).appendingPathComponent("metrics.jsonl").path) }
            return Trial(name: trial.name, values: keys.map { trial.settings[$0]?.description ?? "—" }, valTop1ByRung: top1, epochsByRung: epochs,
                         trainSeconds: seconds.isEmpty ? nil : seconds.reduce(0, +), status: trial.status.rawValue,
                         error: trial.runs.last?.error, chosen: record.chosen?.trial == trial.index,
                         runDirectory: drawn.map { directory.appendingPathComponent($0.directory) })
        }
        let s = record.splits
        let validation: String
        if let fraction = s.holdoutFraction {
            validation = "Trials train on \(s.trialTrainImages) images of \(s.trialTrainSplit) and are validated on a stratified "
                + "\(Self.percent(fraction)) holdout of it (\(s.validationImages) images, seed \(s.holdoutSeed.map(String.init) ?? "?"))"
        } else {
            validation = "Trials train on \(s.trialTrainSplit) (\(s.trialTrainImages) images) and are validated on \(s.validationSplit) (\(s.validationImages) images)"
        }
        var method: String
        if let halving = record.halving {
            method = "Successive halving with η = \(halving.eta) over \(halving.rungs) rungs: rung r trains its trials from scratch with the "
                + "schedule's epochs divided by \(halving.eta)^(\(halving.rungs - 1)−r), and the best ⌈n/\(halving.eta)⌉ go on to the next rung."
        } else {
            method = "Every trial trains the full schedule."
        }
        method += " The choice is the highest validation top-1, ties going to the lower learning rate, then the earlier trial."
        let final = record.final.map { f in
            Final(status: f.status.rawValue, epochs: f.epochs, trainSplit: s.finalTrainSplit, trainImages: f.trainImages, testSplit: s.testSplit ?? "test",
                  testImages: f.testImages, testTop1: f.testTop1, testTop5: f.testTop5, trainSeconds: f.trainSeconds,
                  directory: directory.appendingPathComponent(f.directory))
        }
        self.init(title: "ssf sweep: \(record.base.model) · \(record.base.method) · \(record.base.data)", status: record.status.rawValue,
                  keys: keys, rungs: rungs, validation: validation, method: method, trials: trials, final: final)
    }

    /// 0.2 → "20 %", 0.125 → "12.5 %".
    private static func percent(_ fraction: Double) -> String {
        let value = fraction * 100
        return (value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)) + " %"
    }
}
