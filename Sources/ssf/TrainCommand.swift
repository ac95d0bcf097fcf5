// `ssf train`: fine-tune a registered model on a dataset with a tuning method and the reference recipe.
import ArgumentParser
import Dispatch
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning
#if canImport(Glibc)
import Glibc
#endif

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

    @Option(help: "Model name from `ssf models`.") var model: String?
    @Option(help: "Pretrained checkpoint (.safetensors, .pth, .npz).") var weights: String?
    @Option(help: "Dataset as FORMAT:PATH (e.g. imagefolder:/data/flowers, cifar100:/data/cifar-100-python, vtab:/data/vtab-1k/dtd).") var data: String?
    @OptionGroup var methodOptions: MethodOptions
    @Option(help: "Reference recipe: \(TrainingConfig.presetNames.joined(separator: ", ")).") var preset: String?
    @Option(help: "YAML file of configuration keys (flags override it; it overrides the preset).") var config: String?
    @Option(help: "Cosine epochs; the run lasts these plus --cooldown-epochs (0 unless a preset sets it).") var epochs: Int?
    @Option(name: .customLong("cooldown-epochs"), help: "Epochs at the minimum learning rate after the cosine (default 0; presets: 10).") var cooldownEpochs: Int?
    @Option(name: .customLong("warmup-epochs"), help: "Linear warmup epochs, part of --epochs and fewer than them (default 0; presets: 10).") var warmupEpochs: Int?
    @Option(name: .customLong("batch-size"), help: "Images per batch.") var batchSize: Int?
    @Option(help: "Peak learning rate.") var lr: Double?
    @Option(name: .customLong("warmup-lr"), help: "Learning rate the warmup starts from.") var warmupLR: Double?
    @Option(name: .customLong("min-lr"), help: "Floor of the cosine.") var minLR: Double?
    @Option(name: .customLong("weight-decay"), help: "Weight decay (never on 1-D parameters).") var weightDecay: Double?
    @Option(help: "Optimizer: adamw or sgd.") var opt: String?
    @Flag(help: "Same as --opt sgd (Nesterov momentum).") var sgd = false
    @Option(help: "SGD momentum.") var momentum: Double?
    @Option(name: .customLong("opt-eps"), help: "AdamW's epsilon (default 1e-8).") var optEps: Double?
    @Option(name: .customLong("image-size"), help: "Input resolution (default: the model's).") var imageSize: Int?
    @Option(help: "Random seed.") var seed: UInt64?
    @Option(help: "Loader worker threads.") var workers: Int?
    @Option(help: "Label smoothing.") var smoothing: Double?
    @Option(help: "Mixup alpha (0: off).") var mixup: Double?
    @Option(help: "CutMix alpha (0: off).") var cutmix: Double?
    @Option(help: "RandAugment config, e.g. rand-m9-mstd0.5-inc1 ('none': off).") var aa: String?
    @Option(help: "Random erasing probability.") var reprob: Double?
    @Option(name: .customLong("ema-decay"), help: "EMA decay of the trainable weights, e.g. 0.99992 (0: off).") var emaDecay: Double?
    @Option(name: .customLong("grad-accum"), help: "Batches per optimizer update.") var gradAccum: Int?
    @Option(name: .customLong("clip-grad"), help: "Clip the global gradient norm to this value.") var clipGrad: Double?
    @Option(help: "Batch norm while training: train (batch statistics, running statistics updated), frozen, or auto (train for full fine-tuning, frozen otherwise).") var bn: String?
    @Option(name: .customLong("head-init"), help: "Initialisation of a new head: zeros (default), trunc-normal or torch-default.") var headInit: String?
    @Option(name: .customLong("drop-path"), help: "Stochastic-depth rate of the last block, rising linearly from 0 (default: the model's).") var dropPath: Double?
    @Option(name: .customLong("train-limit"), help: "Train on this many samples (an even stride through the split).") var trainLimit: Int?
    @Option(name: .customLong("eval-limit"), help: "Evaluate on this many samples.") var evalLimit: Int?
    @Option(name: .customLong("eval-split"), help: "Split to select the best checkpoint on (default: val, else test).") var evalSplit: String?
    @Option(name: .customLong("bad-images"), help: "fail or skip unreadable images.") var badImages: String?
    @Option(name: .customLong("output"), help: "Run directory (default: runs/<model>-<method>-<time>).") var output: String?
    @Option(help: "Continue the interrupted run in this directory (its config.yaml is used; of the other flags only --workers and --threads apply).") var resume: String?
    @OptionGroup var threadOptions: ThreadOptions

    /// The flags that were given, as configuration keys.
    func flagOverrides() -> [String: Any] {
        var o: [String: Any] = [:]
        func set(_ key: String, _ value: Any?) { if let value { o[key] = value } }
        set("model", model); set("weights", weights); set("data", data); set("method", methodOptions.name?.rawValue)
        set("epochs", epochs); set("cooldown_epochs", cooldownEpochs); set("warmup_epochs", warmupEpochs)
        set("batch_size", batchSize); set("lr", lr); set("warmup_lr", warmupLR); set("min_lr", minLR)
        set("weight_decay", weightDecay); set("opt", sgd ? "sgd" : opt); set("momentum", momentum); set("opt_eps", optEps); set("image_size", imageSize)
        set("seed", seed); set("workers", workers); set("smoothing", smoothing); set("mixup", mixup); set("cutmix", cutmix)
        set("reprob", reprob); set("grad_accum", gradAccum); set("clip_grad", clipGrad); set("train_limit", trainLimit)
        set("eval_limit", evalLimit); set("eval_split", evalSplit); set("bad_images", badImages)
        set("bn", bn); set("head_init", headInit); set("drop_path", dropPath)
        if let aa { o["aa"] = aa == "none" ? NSNull() : aa }
        if let emaDecay { o["ema_decay"] = emaDecay == 0 ? NSNull() : emaDecay }
        return o
    }

    /// Preset ← config file ← flags (or the stored config of a resumed run).
    func resolvedConfig() throws -> TrainingConfig {
        if let resume {
            let path = URL(fileURLWithPath: resume).appendingPathComponent("config.yaml").path
            let stored = try TrainingConfig().merging(try TrainingConfig.overrides(yaml: String(contentsOfFile: path, encoding: .utf8), path: path))
            return try stored.merging(workers.map { ["workers": $0] } ?? [:])
        }
        var resolved = try preset.map(TrainingConfig.preset) ?? TrainingConfig()
        if let config {
            resolved = try resolved.merging(try TrainingConfig.overrides(yaml: String(contentsOfFile: config, encoding: .utf8), path: config))
        }
        return try resolved.merging(flagOverrides())
    }

    func run() throws {
        threadOptions.apply()
        let config: TrainingConfig
        do { config = try resolvedConfig() } catch let error as ConfigError { throw ValidationError(error.description) }
        guard !config.model.isEmpty, !config.data.isEmpty else { throw ValidationError("--model and --data are required (as flags or in --config)") }
        do { try config.validate() } catch let error as ConfigError { throw ValidationError(error.description) }
        guard let named = TuningMethod(rawValue: config.method) else { throw ValidationError("unknown method '\(config.method)'") }
        let method = TuningMethod(named.components, options: methodOptions.method(default: named).options)

        let data = try TrainingData(config: config)
        let loaded = try loadModel(config: config, method: method, classes: data.train.classNames.count)
        let directory = URL(fileURLWithPath: resume ?? output ?? defaultRunDirectory(config))
        var preprocess = loaded.spec.preprocess
        if let size = config.imageSize { preprocess.inputSize = size }
        let trainer = try Trainer(config: config, model: loaded.model, modelName: config.model, data: data, preprocess: preprocess,
                                  directory: directory, writesDelta: method.components == [.ssf])
        let interrupt = InterruptFlag()
        trainer.shouldStop = { interrupt.isSet }
        let display = ProgressDisplay(config: config)
        trainer.onEvent = display.show
        print("training \(config.model) (\(method.rawValue), \(trainer.trainableCount) trainable, batch norm \(trainer.batchNormMode.rawValue)) on \(data.train.count) images, selecting on \(data.evalSplit) (\(data.eval.count) images); \(trainer.updatesPerEpoch) updates/epoch; run directory \(directory.path)")
        print("schedule\(preset.map { " (preset \($0))" } ?? ""): \(config.scheduleDescription), \(config.opt) weight decay \(config.weightDecay), batch \(config.batchSize)")
        let outcome = try trainer.run(resume: resume != nil)
        interrupt.cancel()
        if outcome == .finished {
            let data = try Data(contentsOf: directory.appendingPathComponent("summary.json"))
            let summary = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            let number = { (key: String) in (summary[key] as? NSNumber)?.doubleValue ?? 0 }
            print(String(format: "best top-1 %.2f%% (epoch %d, selected on %@), final top-1 %.2f%%, %d trainable parameters, %.0f s of training",
                         number("best_top1"), Int(number("best_epoch")), summary["selected_on"] as? String ?? "?", number("final_top1"),
                         Int(number("trainable_params")), number("train_seconds")))
        }
    }

    private func defaultRunDirectory(_ config: TrainingConfig) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(config.model)-\(config.method)-\(formatter.string(from: Date()))"
    }

    /// Builds the model with the method's parameters and a head for `classes`, and loads the weights.
    private func loadModel(config: TrainingConfig, method: TuningMethod, classes: Int) throws -> LoadedModel {
        let family = try ModelRegistry.spec(config.model).family
        var problem: Error?
        let loaded = try Pretrained.load(model: config.model, weights: config.weights.map { URL(fileURLWithPath: $0) },
                                         numClasses: classes, seed: config.seed, headInit: config.headInitRule) { model in
            var rng = RandomGenerator(seed: config.seed &+ 1)
            do { try method.apply(to: model, family: family, using: &rng) } catch { problem = error }
        }
        if let problem { throw problem }
        for note in loaded.notes { printError("note: \(note)") }
        if let weights = config.weights {
            try loaded.requireComplete(path: weights, allowMissing: TuningMethod.isAdded)
        } else {
            printError("warning: no --weights: training from a random initialisation")
        }
        return loaded
    }
}

/// Set by the first SIGINT (the run then saves a resumable checkpoint); a second SIGINT exits at once.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned lock] in
            lock.lock(); defer { lock.unlock() }
            if self.set { exit(130) }
            self.set = true
            printError("\ninterrupt: stopping after this update and saving a resumable checkpoint (Ctrl-C again to quit at once)")
        }
        source.resume()
    }

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return set }

    func cancel() { source.cancel(); signal(SIGINT, SIG_DFL) }
}

/// A one-line progress bar on a terminal, plain log lines otherwise.
final class ProgressDisplay {
    let totalEpochs: Int
    let config: TrainingConfig
    let isTerminal = isatty(STDOUT_FILENO) != 0
    private var lastLogged = -1

    init(config: TrainingConfig) { self.config = config; totalEpochs = config.totalEpochs }

    /// "epoch 3/13" with the part of the schedule it is in.
    private func epochLabel(_ epoch: Int) -> String {
        let phase = epoch < config.warmupEpochs ? " warmup" : epoch >= config.epochs ? " cooldown" : ""
        return "epoch \(epoch + 1)/\(totalEpochs)\(phase)"
    }

    func show(_ event: TrainingEvent) {
        switch event {
        case let .batch(epoch, batch, batches, loss, rate, eta):
            let stats = String(format: "loss %.4f  %.1f img/s  ETA %@", loss, rate, duration(eta))
            if isTerminal {
                let width = 24, filled = width * batch / max(batches, 1)
                let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                print("\r\(epochLabel(epoch)) [\(bar)] \(batch)/\(batches)  \(stats)\u{1B}[K", terminator: "")
                fflush(stdout)
            } else if batch == batches || batch * 10 / batches != lastLogged {
                lastLogged = batch * 10 / batches
                print("\(epochLabel(epoch)) batch \(batch)/\(batches)  \(stats)")
            }
        case let .epoch(m):
            if isTerminal { print("\r\u{1B}[K", terminator: "") }
            print(String(format: "epoch %d/%d  train_loss %.4f  eval_loss %.4f  top1 %.2f  top5 %.2f  lr %.3g  %.1f img/s  %.1f s",
                         m.epoch + 1, totalEpochs, m.trainLoss, m.evalLoss, m.top1, m.top5, m.lr, m.imagesPerS, m.epochSeconds))
            lastLogged = -1
        case let .message(text):
            if isTerminal { print("\r\u{1B}[K", terminator: "") }
            print(text)
        }
        fflush(stdout)
    }

    private func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
