// The flags of a training run's settings, shared by `ssf train` and `ssf sweep`: model, weights, data,
// method, preset, config file and one flag per recipe hyperparameter, turned into configuration keys
// (the evaluation split is train's own: a sweep chooses its splits).
import ArgumentParser
import Foundation
import SSFTraining

/// The settings flags; each given flag overrides the configuration key it names.
struct TrainingFlags: ParsableArguments {
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
    @Option(name: .customLong("bad-images"), help: "fail or skip unreadable images.") var badImages: String?
    @Option(help: "Training augmentation: full, flip (fixed resize and flips) or none (fixed resize: timm's --no-aug).") var augment: String?
    @Option(name: .customLong("cache-features"), help: "Linear probing on features computed once: auto (when the backbone is frozen and the training transform has no random geometry), on or off.")
    var cacheFeatures: String?
    @Flag(name: .customLong("fast-decode"), help: "Decode JPEG files at a reduced DCT scale when the input size leaves room (faster on large photos; pixels differ slightly from a full decode).")
    var fastDecode = false

    /// The flags that were given, as configuration keys.
    func overrides() -> [String: Any] {
        var o: [String: Any] = [:]
        func set(_ key: String, _ value: Any?) { if let value { o[key] = value } }
        set("model", model); set("weights", weights); set("data", data); set("method", methodOptions.name?.rawValue)
        set("epochs", epochs); set("cooldown_epochs", cooldownEpochs); set("warmup_epochs", warmupEpochs)
        set("batch_size", batchSize); set("lr", lr); set("warmup_lr", warmupLR); set("min_lr", minLR)
        set("weight_decay", weightDecay); set("opt", sgd ? "sgd" : opt); set("momentum", momentum); set("opt_eps", optEps); set("image_size", imageSize)
        set("seed", seed); set("workers", workers); set("smoothing", smoothing); set("mixup", mixup); set("cutmix", cutmix)
        set("reprob", reprob); set("grad_accum", gradAccum); set("clip_grad", clipGrad); set("train_limit", trainLimit)
        set("eval_limit", evalLimit); set("bad_images", badImages); set("augment", augment); set("cache_features", cacheFeatures)
        if fastDecode { o["fast_decode"] = true }
        set("bn", bn); set("head_init", headInit); set("drop_path", dropPath)
        if let aa { o["aa"] = aa == "none" ? NSNull() : aa }
        if let emaDecay { o["ema_decay"] = emaDecay == 0 ? NSNull() : emaDecay }
        return o.merging(methodOptions.overrides) { $1 }
    }

    /// Defaults ← preset ← config file ← flags (and a command's own `extra` keys), checked: a model and data
    /// are named and every value is in range.
    func resolvedConfig(extra: [String: Any] = [:]) throws -> TrainingConfig {
        let config: TrainingConfig
        do {
            config = try TrainingConfig.resolved(preset: preset, configFile: self.config, overrides: overrides().merging(extra) { $1 })
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
        try Self.check(config)
        return config
    }

    /// Throws a usage error unless the configuration names a model and data and its values are in range.
    static func check(_ config: TrainingConfig) throws {
        guard !config.model.isEmpty, !config.data.isEmpty else { throw ValidationError("--model and --data are required (as flags or in --config)") }
        do { try config.validate() } catch let error as ConfigError { throw ValidationError(error.description) }
    }
}

/// Prints what building a model reports, on stderr.
func printSetupMessage(_ message: RunSetupMessage) {
    switch message {
    case let .note(text): printError("note: \(text)")
    case let .warning(text): printError("warning: \(text)")
    }
}
