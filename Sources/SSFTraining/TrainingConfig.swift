// The training recipe: every hyperparameter of a run, the reference's presets, and the merge of
// preset ← YAML config file ← command-line flags.
import Foundation
import SSFModels
import SSFNN
import SSFTuning
import Yams

/// Everything a training run is configured by; saved resolved as the run's `config.yaml`.
public struct TrainingConfig: Codable, Equatable, Sendable {
    public var model = ""
    public var weights: String?
    public var data = ""
    public var method = "ssf"
    /// Cosine epochs; the run lasts `epochs + cooldownEpochs` (timm's convention). Outside a preset
    /// there is no cooldown and no warmup unless asked for, so `--epochs N` runs N epochs.
    public var epochs = 100
    public var cooldownEpochs = 0
    /// Linear warmup epochs (part of `epochs`; must be fewer than them).
    public var warmupEpochs = 0
    public var batchSize = 128
    public var lr = 1e-3
    public var warmupLR = 1e-7
    public var minLR = 1e-8
    public var weightDecay = 0.05
    /// `adamw` or `sgd`.
    public var opt = "adamw"
    /// AdamW's ε (timm's `--opt-eps`).
    public var optEps = 1e-8
    /// SGD momentum (Nesterov unless `nesterov` is false).
    public var momentum = 0.9
    public var nesterov = true
    /// Input resolution (default: the model's).
    public var imageSize: Int?
    public var seed: UInt64 = 42
    public var workers = 2
    /// Label smoothing.
    public var smoothing = 0.1
    /// Mixup and CutMix alphas (0 turns each off), the probability a batch is mixed and of CutMix.
    public var mixup = 0.0
    public var cutmix = 0.0
    public var mixupProb = 1.0
    public var mixupSwitchProb = 0.5
    /// RandAugment config string (`rand-m9-mstd0.5-inc1`), nil for none.
    public var aa: String?
    /// Random erasing probability.
    public var reprob = 0.0
    /// Random-resized-crop scale range and horizontal flip probability.
    public var scaleMin = 0.08
    public var hflip = 0.5
    /// VTAB's preprocessing: a direct bicubic resize, no augmentation.
    public var directResize = false
    /// Training augmentation: `full` (random-resized crop, flip, RandAugment and erasing as configured),
    /// `flip` (a fixed resize — timm's no-aug geometry, or the direct resize — and a flip with `hflip`),
    /// `none` (the fixed resize alone: timm's `--no-aug`).
    public var augment = "full"
    /// Linear probing on features computed once: `auto` (whenever the backbone is frozen and the
    /// training transform has no random geometry), `on` (an error says why not), `off`.
    public var cacheFeatures = "auto"
    /// Decode JPEG files at a reduced DCT scale (1/2, 1/4, 1/8) when the transform's target leaves
    /// room: faster on large photos, but the pixels differ slightly from timm's full decode and resize.
    public var fastDecode = false
    /// EMA decay of the trainable weights (nil: no EMA); with EMA the averaged weights are evaluated.
    public var emaDecay: Double?
    /// Batches whose gradients are summed per update.
    public var gradAccum = 1
    /// Global gradient-norm clip (nil: none).
    public var clipGrad: Double?
    public var trainSplit = "train"
    /// Split for best-checkpoint selection (nil: `val` when present, else `test`).
    public var evalSplit: String?
    /// Evaluate after every epoch; false evaluates after the last epoch only (a final run measured once on its test split).
    public var evalEveryEpoch = true
    public var badImages = "fail"
    /// Limits on samples used per split (nil: all), for quick runs on a subset.
    public var trainLimit: Int?
    public var evalLimit: Int?
    /// Batch norm while training: `train` (batch statistics, running statistics updated), `frozen`,
    /// or `auto` (train for full fine-tuning, frozen for the parameter-efficient methods).
    public var bn = "auto"
    /// Initialisation of a new head (`zeros`, `trunc-normal`, `torch-default`).
    public var headInit = HeadInit.fineTuningDefault.rawValue
    /// Stochastic-depth rate of the deepest block (nil: the model's default), rising linearly from 0.
    public var dropPath: Double?
    /// The hyperparameters of the methods that add parameters (stored so that resuming, evaluating
    /// and merging a run need no repeated flags): adapter width, VPT prompts and their dropout,
    /// LoRA rank, alpha (nil: the rank) and comma-separated targets.
    public var adapterDim = TuningOptions().adapterDim
    public var prompts = TuningOptions().prompts
    public var promptDropout = Double(TuningOptions().promptDropout)
    public var loraRank = TuningOptions().loraRank
    public var loraAlpha: Double?
    public var loraTargets = TuningOptions().loraTargets.joined(separator: ",")

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, weights, data, method, epochs, cooldownEpochs = "cooldown_epochs", warmupEpochs = "warmup_epochs"
        case batchSize = "batch_size", lr, warmupLR = "warmup_lr", minLR = "min_lr", weightDecay = "weight_decay"
        case opt, optEps = "opt_eps", momentum, nesterov, imageSize = "image_size", seed, workers, smoothing, mixup, cutmix
        case mixupProb = "mixup_prob", mixupSwitchProb = "mixup_switch_prob", aa, reprob, scaleMin = "scale_min", hflip
        case directResize = "direct_resize", augment, cacheFeatures = "cache_features", fastDecode = "fast_decode", emaDecay = "ema_decay", gradAccum = "grad_accum", clipGrad = "clip_grad"
        case trainSplit = "train_split", evalSplit = "eval_split", evalEveryEpoch = "eval_every_epoch", badImages = "bad_images"
        case trainLimit = "train_limit", evalLimit = "eval_limit"
        case bn, headInit = "head_init", dropPath = "drop_path"
        case adapterDim = "adapter_dim", prompts, promptDropout = "prompt_dropout", loraRank = "lora_rank"
        case loraAlpha = "lora_alpha", loraTargets = "lora_targets"
    }

    /// The method hyperparameters this configuration stores.
    public var tuningOptions: TuningOptions {
        var o = TuningOptions()
        o.adapterDim = adapterDim; o.prompts = prompts; o.promptDropout = Float(promptDropout)
        o.loraRank = loraRank; o.loraAlpha = loraAlpha.map(Float.init)
        o.loraTargets = loraTargets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        return o
    }

    public init() {}

    /// The configuration keys (as in YAML files).
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// Preset names.
    public static let presetNames = ["cifar100", "imagenet", "vtab", "fgvc-cub", "fgvc-nabirds", "fgvc-flowers", "fgvc-cars", "fgvc-dogs"]

    /// The reference's recipe for a benchmark (SSF-SPEC): AdamW, 100 cosine epochs with 10 warmup
    /// epochs from 1e-7 to a 1e-8 floor, then 10 cooldown epochs, seed 42. `imagenet` uses the
    /// CIFAR-100 recipe.
    public static func preset(_ name: String) throws -> TrainingConfig {
        var c = TrainingConfig()
        c.epochs = 100; c.cooldownEpochs = 10; c.warmupEpochs = 10
        switch name {
        case "cifar100", "imagenet":
            c.batchSize = 128; c.lr = 1e-3; c.weightDecay = 0.05; c.emaDecay = 0.99992
            c.mixup = 0.8; c.cutmix = 1.0; c.smoothing = 0.1; c.aa = "rand-m9-mstd0.5-inc1"; c.reprob = 0.25
        case "vtab":
            c.batchSize = 64; c.lr = 1e-3; c.weightDecay = 5e-5; c.directResize = true; c.smoothing = 0
            c.trainSplit = "train800val200"; c.evalSplit = "test"
        case let fgvc where fgvc.hasPrefix("fgvc-"):
            let rates = ["fgvc-cub": 1e-2, "fgvc-nabirds": 2e-4, "fgvc-flowers": 1e-2, "fgvc-cars": 2e-2, "fgvc-dogs": 2.5e-4]
            guard let rate = rates[fgvc] else { fallthrough }
            c.batchSize = 64; c.lr = rate; c.weightDecay = 0.05; c.smoothing = 0
        default:
            throw ConfigError("unknown preset '\(name)' (choose from \(presetNames.joined(separator: ", ")))")
        }
        return c
    }

    /// This configuration with `overrides` (configuration keys to JSON-compatible values) laid over it.
    public func merging(_ overrides: [String: Any]) throws -> TrainingConfig {
        let known = Set(Self.keys)
        if let unknown = overrides.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigError("unknown configuration key '\(unknown)' (known: \(Self.keys.joined(separator: ", ")))")
        }
        var dictionary = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] ?? [:]
        for (key, value) in overrides { dictionary[key] = value is NSNull ? nil : value }
        do {
            return try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: dictionary))
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            guard let key = context.codingPath.first?.stringValue else { throw ConfigError("invalid configuration value: \(context.debugDescription)") }
            let given = overrides[key].map { $0 is NSNull ? "null" : "\($0)" } ?? "the default"
            throw ConfigError("invalid value for '\(key)': \(given) (expected \(Self.expected(type)))")
        } catch let DecodingError.keyNotFound(key, _) {
            throw ConfigError("'\(key.stringValue)' cannot be null: it needs a value")
        } catch {
            throw ConfigError("invalid configuration value: \(error)")
        }
    }

    /// How an error names the type a key needs.
    private static func expected(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "a value of type \(type)"
        }
    }

    /// The line of the first mapping key in `node` that is not a scalar, if any.
    private static func nonScalarKey(in node: Node) -> Int? {
        switch node {
        case .scalar: return nil
        case .sequence(let items): return items.lazy.compactMap(nonScalarKey(in:)).first
        case .mapping(let pairs):
            for (key, value) in pairs {
                guard case .scalar = key else { return key.mark.map { $0.line } ?? 0 }
                if let line = nonScalarKey(in: value) { return line }
            }
            return nil
        }
    }

    /// The overrides a YAML file holds (a mapping of configuration keys).
    public static func overrides(yaml text: String, path: String) throws -> [String: Any] {
        let loaded: Any?
        do {
            // Composed first: a mapping key that is not a scalar (`? [a]: 1`) is refused here, since
            // building the value from such a node would stop the process.
            guard let node = try Yams.compose(yaml: text) else { return [:] }
            if let problem = Self.nonScalarKey(in: node) { throw ConfigError("\(path): line \(problem): a configuration key must be a plain word") }
            loaded = try Yams.load(yaml: text)
        } catch let error as ConfigError { throw error } catch { throw ConfigError("\(path): not valid YAML (\(error))") }
        guard let loaded else { return [:] }
        guard let mapping = loaded as? [String: Any] else { throw ConfigError("\(path): expected a mapping of configuration keys") }
        return mapping
    }

    /// Defaults, then the preset, then the YAML file at `configFile`, then `overrides` (the flags given).
    public static func resolved(preset: String?, configFile: String?, overrides: [String: Any]) throws -> TrainingConfig {
        var resolved = try preset.map(Self.preset) ?? TrainingConfig()
        if let configFile { resolved = try resolved.merging(try Self.overrides(yamlFile: configFile)) }
        return try resolved.merging(overrides)
    }

    /// The configuration a run directory's `config.yaml` holds.
    public static func stored(inRunDirectory directory: URL) throws -> TrainingConfig {
        try TrainingConfig().merging(try overrides(yamlFile: directory.appendingPathComponent("config.yaml").path))
    }

    /// The overrides the YAML file at `path` holds; a file that cannot be read is an error naming it.
    public static func overrides(yamlFile path: String) throws -> [String: Any] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError("\(path): cannot be read (\(error.localizedDescription))")
        }
        return try overrides(yaml: text, path: path)
    }

    /// The configuration as YAML.
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }

    /// Throws when a value is out of range.
    public func validate() throws {
        guard epochs > 0, batchSize > 0, gradAccum > 0, workers >= 0, cooldownEpochs >= 0, warmupEpochs >= 0 else {
            throw ConfigError("epochs, batch_size and grad_accum must be positive; workers, warmup and cooldown epochs not negative")
        }
        guard ["adamw", "sgd"].contains(opt) else { throw ConfigError("opt must be adamw or sgd, not '\(opt)'") }
        guard lr > 0, minLR >= 0, warmupLR >= 0, weightDecay >= 0, optEps > 0 else { throw ConfigError("learning rates and weight decay must not be negative") }
        if let emaDecay, !(emaDecay > 0 && emaDecay < 1) { throw ConfigError("ema_decay must be in (0, 1)") }
        if let clipGrad, !(clipGrad > 0) { throw ConfigError("clip_grad must be positive") }
        guard ["fail", "skip"].contains(badImages) else { throw ConfigError("bad_images must be fail or skip") }
        guard warmupEpochs == 0 || warmupEpochs < epochs else {
            throw ConfigError("warmup_epochs (\(warmupEpochs)) must be fewer than epochs (\(epochs)): the warmup would outlast the cosine; pass --warmup-epochs with a smaller value")
        }
        guard adapterDim > 0, prompts > 0, loraRank > 0 else { throw ConfigError("adapter_dim, prompts and lora_rank must be positive") }
        guard promptDropout >= 0 && promptDropout < 1 else { throw ConfigError("prompt_dropout must be in [0, 1)") }
        guard ["full", "flip", "none"].contains(augment) else { throw ConfigError("augment must be full, flip or none, not '\(augment)'") }
        guard ["auto", "on", "off"].contains(cacheFeatures) else { throw ConfigError("cache_features must be auto, on or off, not '\(cacheFeatures)'") }
        if augment != "full", mixup > 0 || cutmix > 0 || aa != nil || reprob > 0 {
            throw ConfigError("augment \(augment) leaves out random augmentation, but mixup, cutmix, aa or reprob asks for it")
        }
        guard ["auto", "train", "frozen"].contains(bn) else { throw ConfigError("bn must be auto, train or frozen, not '\(bn)'") }
        guard HeadInit(rawValue: headInit) != nil else {
            throw ConfigError("head_init must be one of \(HeadInit.allCases.map(\.rawValue).joined(separator: ", ")), not '\(headInit)'")
        }
        if let dropPath, !(dropPath >= 0 && dropPath < 1) { throw ConfigError("drop_path must be in [0, 1)") }
        guard smoothing >= 0 && smoothing < 1 else { throw ConfigError("smoothing must be in [0, 1), not \(smoothing)") }
        guard mixup >= 0, cutmix >= 0 else { throw ConfigError("mixup and cutmix alphas must not be negative") }
        for (name, p) in [("mixup_prob", mixupProb), ("mixup_switch_prob", mixupSwitchProb), ("reprob", reprob), ("hflip", hflip)] where !(p >= 0 && p <= 1) {
            throw ConfigError("\(name) is a probability: it must be in [0, 1], not \(p)")
        }
        guard scaleMin > 0 && scaleMin <= 1 else { throw ConfigError("scale_min must be in (0, 1], not \(scaleMin)") }
        guard momentum >= 0 && momentum < 1 else { throw ConfigError("momentum must be in [0, 1), not \(momentum)") }
        if let imageSize, imageSize <= 0 { throw ConfigError("image_size must be positive, not \(imageSize)") }
        for (name, limit) in [("train_limit", trainLimit), ("eval_limit", evalLimit)] { if let limit, limit <= 0 { throw ConfigError("\(name) must be positive, not \(limit)") } }
        if let loraAlpha, !(loraAlpha > 0) { throw ConfigError("lora_alpha must be positive") }
    }

    /// What batch norm does while this run trains (`auto` resolved by the method).
    public var batchNormMode: BatchNormMode {
        switch bn {
        case "train": return .train
        case "frozen": return .frozen
        default: return method.split(separator: "+").contains("full") ? .train : .frozen
        }
    }

    /// This configuration as a run directory stores it: `bn` says what batch norm did, not `auto`.
    public var asStored: TrainingConfig {
        var c = self
        c.bn = batchNormMode.rawValue
        return c
    }

    /// The new-head rule.
    public var headInitRule: HeadInit { HeadInit(rawValue: headInit) ?? .fineTuningDefault }

    /// The schedule in words, e.g. "13 epochs: 10 cosine (warmup 1 from 1e-07) + 3 cooldown".
    public var scheduleDescription: String {
        var parts = "\(epochs) cosine"
        if warmupEpochs > 0 { parts += " (warmup \(warmupEpochs) from \(warmupLR))" }
        if cooldownEpochs > 0 { parts += " + \(cooldownEpochs) cooldown at \(minLR)" }
        return "\(totalEpochs) epoch\(totalEpochs == 1 ? "" : "s"): \(parts), peak lr \(lr)"
    }

    /// Total epochs of the run, cooldown included.
    public var totalEpochs: Int { epochs + cooldownEpochs }
}

/// A configuration that cannot be used.
public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
