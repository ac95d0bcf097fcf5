// `ssf train`: fine-tune a registered model on a dataset with a tuning method and the reference recipe.
import ArgumentParser
import Foundation
import SSFDistributed
import SSFReport
import SSFTraining
import SSFTuning

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a model on a dataset (default method: ssf) and write a run directory.",
        discussion: """
        Settings resolve as: defaults, then --preset (the SSF reference's recipe: \(TrainingConfig.presetNames.joined(separator: ", "))), \
        then --config FILE.yaml (keys as in the run's config.yaml), then the flags. The run directory gets \
        config.yaml (resolved), metrics.jsonl (one line per epoch), last.safetensors and best.safetensors \
        (the trainable tensors; the EMA's when --ema-decay is set), task.delta.safetensors (ssf), \
        summary.json and report.html (curves and per-class accuracy; `ssf report` compares runs). The best checkpoint is selected on the val split, or on test when the dataset has none \
        (summary.json says which in selected_on). Ctrl-C saves resume.safetensors; --resume RUN_DIR continues.
        """)

    @OptionGroup var flags: TrainingFlags
    @Option(name: .customLong("eval-split"), help: "Split to select the best checkpoint on (default: val, else test).") var evalSplit: String?
    @Option(name: .customLong("output"), help: "Run directory (default: runs/<model>-<method>-<time>).") var output: String?
    @Option(help: "Continue the interrupted run in this directory (its config.yaml is used; of the other flags only --workers and --threads apply).") var resume: String?
    @OptionGroup var threadOptions: ThreadOptions

    /// The flags' settings, or the stored config of a resumed run (of the flags only --workers then applies).
    func resolvedConfig() throws -> TrainingConfig {
        guard let resume else { return try flags.resolvedConfig(extra: evalSplit.map { ["eval_split": $0] } ?? [:]) }
        let config: TrainingConfig
        do {
            config = try TrainingConfig.stored(inRunDirectory: URL(fileURLWithPath: resume)).merging(flags.workers.map { ["workers": $0] } ?? [:])
        } catch let error as ConfigError { throw ValidationError(error.description) }
        try TrainingFlags.check(config)
        return config
    }

    func run() throws {
        threadOptions.apply()
        // Under `mpirun -np N` (N > 1) every rank runs this; rank 0 alone prints and writes.
        guard let collective = try MPICollective.fromEnvironment() else { return try train(collective: nil) }
        do { try train(collective: collective) } catch { collective.abort("\(error)") }
        collective.finish()
    }

    private func train(collective: MPICollective?) throws {
        let leader = (collective?.rank ?? 0) == 0
        let config = try resolvedConfig()
        let method: TuningMethod
        do { method = try RunSetup.method(config) } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
        try collective?.requireSame(try config.yaml(), what: "configuration")

        let data = try TrainingData(config: config)
        try collective?.requireSame("\(data.train.count) \(data.eval.count) \(data.train.classNames) \(data.evalSplit)", what: "dataset")
        let loaded = try RunSetup.model(config: config, method: method, classes: data.train.classNames.count,
                                        report: leader ? printSetupMessage : { _ in })
        var path = resume ?? output ?? defaultRunDirectory(config)
        if let collective { path = try collective.broadcast(path) }
        let directory = URL(fileURLWithPath: path)
        let outputs: RunOutputs = leader ? RunDirectory(directory) : DiscardedOutputs(readingFrom: directory)
        let trainer = try Trainer(config: config, model: loaded.model, modelName: config.model, data: data, preprocess: loaded.preprocess,
                                  outputs: outputs, writesDelta: loaded.writesDelta, collective: collective)
        let interrupt = InterruptFlag()
        trainer.shouldStop = { interrupt.isSet }
        let display = ProgressDisplay(config: config)
        if leader { trainer.onEvent = display.show }
        let ranks = collective.map { ", \($0.size) ranks of \(config.batchSize / $0.size) images per batch" } ?? ""
        if leader {
            print("training \(config.model) (\(method.rawValue), \(trainer.trainableCount) trainable, batch norm \(trainer.batchNormMode.rawValue)) on \(data.train.count) images, selecting on \(data.evalSplit) (\(data.eval.count) images); \(trainer.updatesPerEpoch) updates/epoch\(ranks); run directory \(directory.path)")
            print("schedule\(flags.preset.map { " (preset \($0))" } ?? ""): \(config.scheduleDescription), \(config.opt) weight decay \(config.weightDecay), batch \(config.batchSize)")
        }
        let outcome = try trainer.run(resume: resume != nil)
        interrupt.cancel()
        if outcome == .finished, leader {
            let summary = try RunSummary.read(inRunDirectory: directory) ?? RunSummary()
            print(String(format: "best top-1 %.2f%% (epoch %d, selected on %@), final top-1 %.2f%%, %d trainable parameters, %.0f s of training",
                         summary.bestTop1 ?? 0, summary.bestEpoch ?? 0, summary.selectedOn ?? "?", summary.finalTop1 ?? 0,
                         summary.trainableParams ?? 0, summary.trainSeconds ?? 0))
        }
    }

    private func defaultRunDirectory(_ config: TrainingConfig) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(config.model)-\(config.method)-\(formatter.string(from: Date()))"
    }
}
