// `ssf sweep`: tune hyperparameters (learning rate, weight decay, any configuration key) over a grid on
// a validation split, retrain the choice on all the training images and measure it once on test.
import ArgumentParser
import Foundation
import SSFTraining

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Choose hyperparameters over a grid on a validation split, then retrain the choice and test it once.",
        discussion: """
        The base settings resolve as in `ssf train` (defaults, --preset, --config FILE, then the flags). Each \
        --grid KEY=V1,V2,... varies one configuration key (numbers, true/false, null or text); the trials are \
        the grid's cartesian product, the first --grid varying slowest. Trials run one after another, each \
        from scratch, in SWEEP_DIR/trials/NNN-KEY=VALUE,... .

        Validation: VTAB-1k datasets train the trials on train800 and validate on val200; other datasets \
        validate on their val split when they have one, else on a stratified holdout of the training split \
        (--val-fraction, default 0.2 of each class, at least one image of a class with two or more, seeded \
        by --seed). --val-split NAME validates on the dataset's split NAME; --val-fraction F always carves a \
        holdout. The choice is the trial with the highest final-epoch validation top-1 (ties: the lower lr, \
        then the earlier trial); the test split plays no part in it.

        --halving (successive halving): with R = --halving-rungs (default 2) and eta = --eta (default 3), \
        rung r = 0..R-1 trains its trials from scratch with --epochs divided by eta^(R-1-r) and rounded up \
        (warmup and cooldown epochs divided and rounded down), so the last rung trains the full schedule. \
        Rung 0 trains every trial; the best ceil(n/eta) of a rung's n trials by validation top-1 go on to the \
        next rung. A rung left with one trial is not run: that trial is the choice. With halving, each \
        rung's run is trials/NNN-.../rung-R.

        Final run (unless --no-final): the chosen settings retrained from scratch on the trials' training and \
        validation images together (the whole training split for a holdout; train800val200 for VTAB; \
        train+val otherwise), evaluated once, after its last epoch, on the test split, in SWEEP_DIR/final.

        SWEEP_DIR gets sweep.json (the grid, every trial's settings, validation top-1 per rung, epochs, \
        training time and status, the choice, the final run's test top-1/top-5) and report.html. Ctrl-C \
        stops at a resumable point; run the same command with --resume to continue: finished runs are \
        kept, a stopped run continues from its resume.safetensors. A non-empty SWEEP_DIR needs --resume.
        """)

    @OptionGroup var flags: TrainingFlags
    @Option(name: .customLong("grid"), help: ArgumentHelp("A configuration key and its values, e.g. lr=1e-3,3e-3,1e-2 (repeat for more keys).", valueName: "key=v1,v2"))
    var grid: [String] = []
    @Option(name: .customLong("val-fraction"), help: "Validate on a stratified holdout of this fraction of the training split (default 0.2 when the dataset has no validation split).")
    var valFraction: Double?
    @Option(name: .customLong("val-split"), help: "Validate on the dataset's split of this name (default: val200 for VTAB, else val when present).")
    var valSplit: String?
    @Flag(help: "Successive halving over rungs of growing epochs (described above).") var halving = false
    @Option(name: .customLong("halving-rungs"), help: "Rungs of successive halving (default 2).") var halvingRungs: Int?
    @Option(help: "Successive halving's factor: a rung keeps the best 1/eta of its trials and has eta times the epochs of the one before (default 3).")
    var eta: Int?
    @Flag(name: .customLong("no-final"), help: "Stop after choosing: no final run on the test split.") var noFinal = false
    @Option(help: ArgumentHelp("The sweep directory.", valueName: "sweep-dir")) var output: String
    @Flag(help: "Continue the sweep in --output: finished runs are kept, stopped runs continue.") var resume = false
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if valFraction != nil, valSplit != nil { throw ValidationError("give --val-fraction or --val-split, not both") }
        if !halving, halvingRungs != nil || eta != nil { throw ValidationError("--halving-rungs and --eta need --halving") }
    }

    func run() throws {
        threadOptions.apply()
        let base = try flags.resolvedConfig()
        let validation: SweepValidation = valSplit.map { .split($0) } ?? valFraction.map { .holdout(fraction: $0) } ?? .automatic
        let plan = halving ? try SuccessiveHalving(eta: eta ?? 3, rungs: halvingRungs ?? 2) : nil
        _ = try Self.execute(base: base, grid: grid, validation: validation, halving: plan, runsFinal: !noFinal,
                             directory: URL(fileURLWithPath: output), resume: resume)
    }

    /// Runs one sweep with its progress on stdout, then prints the choice, the final run's test figures and
    /// where the record is (or how to resume). `ssf vtab` runs one per task.
    static func execute(base: TrainingConfig, grid: [String], validation: SweepValidation, halving plan: SuccessiveHalving?, runsFinal: Bool,
                        directory: URL, resume: Bool) throws -> (record: SweepRecord, outcome: SweepOutcome) {
        let sweep: Sweep
        do {
            let grid = try SweepGrid(parsing: grid)
            let data = try SweepData.open(config: base, validation: validation, withTest: runsFinal)
            var shown: Set<String> = []
            sweep = try Sweep(directory: directory, base: base, grid: grid, data: data, halving: plan, runsFinal: runsFinal) { config, classes in
                try RunSetup.model(config: config, method: try RunSetup.method(config), classes: classes) { message in
                    if shown.insert("\(message)").inserted { printSetupMessage(message) }
                }
            }
        } catch let error as ConfigError { throw ValidationError(error.description) }

        let interrupt = InterruptFlag()
        sweep.shouldStop = { interrupt.isSet }
        let s = sweep.data.splits
        let header = "sweep of \(sweep.trials.count) trial\(sweep.trials.count == 1 ? "" : "s") of \(base.model) (\(base.method)) on \(base.data): "
            + "trials train on \(s.trialTrainSplit) (\(s.trialTrainImages) images) and validate on \(s.validationSplit) (\(s.validationImages) images)"
            + (!runsFinal ? "" : "; the final run trains on \(s.finalTrainSplit) (\(s.finalTrainImages) images) and is tested on \(s.testSplit ?? "test") (\(s.testImages ?? 0) images)")
            + "; sweep directory \(sweep.directory.path)"
        let log = SweepLog(header: header)
        sweep.onEvent = log.show
        let outcome = try sweep.run(resume: resume)
        interrupt.cancel()
        let record = sweep.record
        if let chosen = record.chosen {
            print(String(format: "chosen: %@ (validation top-1 %.2f%%)", sweep.trials[chosen.trial].label, chosen.valTop1))
        }
        if let final = record.final, let top1 = final.testTop1 {
            print(String(format: "final run: test top-1 %.2f%%, top-5 %.2f%% (%@, %d images, %.0f s of training)",
                         top1, final.testTop5 ?? 0, s.testSplit ?? "test", final.testImages, final.trainSeconds ?? 0))
        }
        if outcome == .interrupted {
            print("stopped; run the same command with --resume to continue")
        } else {
            print("wrote \(sweep.recordURL.path) and \(sweep.reportURL.path)")
        }
        return (record, outcome)
    }
}

/// A sweep's progress: one line as each run starts and ends, the trainer's progress in between.
final class SweepLog {
    private let header: String
    private var display = ProgressDisplay(totalEpochs: 1)

    /// `header` is printed once the sweep has started.
    init(header: String) { self.header = header }

    func show(_ event: SweepEvent) {
        switch event {
        case let .started(resuming):
            print((resuming ? "resuming the " : "") + header)
        case let .runStarting(info):
            display = ProgressDisplay(totalEpochs: info.epochs)
            print("\(Self.name(info)): \(info.resuming ? "continuing" : "training") \(info.epochs) epoch\(info.epochs == 1 ? "" : "s") on \(info.trainImages) images, "
                  + "evaluating on \(info.evalSplit) (\(info.evalImages) images) in \(info.directory.path)")
        case let .runSkipped(info, top1):
            print("\(Self.name(info)): finished before" + (top1.map { String(format: ", %@ top-1 %.2f%%", info.evalSplit, $0) } ?? ""))
        case let .runFinished(info, top1, top5, seconds):
            print("\(Self.name(info)): " + String(format: "%@ top-1 %.2f%%, top-5 %.2f%% in %.1f s", info.evalSplit, top1 ?? 0, top5 ?? 0, seconds ?? 0))
        case let .runFailed(info, error):
            print("\(Self.name(info)): failed: \(error)")
        case let .rungFinished(rung, survivors):
            print("rung \(rung): \(survivors.count) trial\(survivors.count == 1 ? "" : "s") go on (\(survivors.map { String(format: "%03d", $0) }.joined(separator: ", ")))")
        case let .training(event):
            display.show(event)
        case let .message(text):
            print(text)
        }
        fflush(stdout)
    }

    /// "trial 2/6 [rung 1/2] lr=0.003 weight_decay=0.05", or "final lr=0.003 …".
    private static func name(_ info: SweepRunInfo) -> String {
        guard let trial = info.trial else { return "final \(info.label)" }
        let rung = info.rungCount > 1 ? " [rung \((info.rung ?? 0) + 1)/\(info.rungCount)]" : ""
        return "trial \(trial + 1)/\(info.trialCount)\(rung) \(info.label)"
    }
}
