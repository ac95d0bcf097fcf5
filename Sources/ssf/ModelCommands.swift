// `ssf models`, `ssf inspect`, `ssf forward`, `ssf predict`: the model zoo from the command line.
import ArgumentParser
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning

/// Options naming a model and its weights: a registered model with a checkpoint, or a training run.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"), help: "Model name from `ssf models` (timm naming); with --run, the run's.") var modelFlag: String?
    @Option(help: "Checkpoint: .safetensors, PyTorch .pth/.pth.tar/.bin, or Google .npz; with --run, the run's base weights.") var weights: String?
    @Option(help: "A training run directory: its model, base weights, method and method options (config.yaml) with its best.safetensors laid over them.") var run: String?
    @Option(name: .customLong("num-classes"), help: "Classes of the head (default: the checkpoint's, else the model's).") var numClasses: Int?
    /// The method's parameters (SSF sites, adapters, prompts, LoRA) are added before the weights
    /// load, so the weights may hold them.
    @OptionGroup var methodOptions: MethodOptions

    func validate() throws {
        guard modelFlag != nil || run != nil else { throw ValidationError("give --model (and --weights), or --run RUN_DIR") }
    }

    /// The run's stored configuration (nil without --run).
    func runConfig() throws -> TrainingConfig? {
        guard let run else { return nil }
        do { return try TrainingConfig.stored(inRunDirectory: URL(fileURLWithPath: run)) } catch let error as ConfigError {
            throw ValidationError("\(run): not a training run directory (\(error.description))")
        }
    }

    /// The model: --model, else the run's.
    var model: String { modelFlag ?? (try? runConfig())?.model ?? "" }

    /// The tuning method: --method and the method flags over the run's (or the defaults).
    func method(default fallback: TuningMethod) -> TuningMethod {
        guard let config = try? runConfig(), let stored = TuningMethod(rawValue: config.method) else { return methodOptions.method(default: fallback) }
        return TuningMethod((methodOptions.name ?? stored).components, options: methodOptions.options(over: config.tuningOptions))
    }

    /// The tuning method (default: full, or the run's).
    var method: TuningMethod { method(default: .full) }

    /// Builds the model (with the method's parameters), loads the weights (with --run: the run's
    /// base weights, then its best checkpoint over them) and prints what did not match to standard error.
    func load(seed: UInt64 = 0, default fallback: TuningMethod = .full, requireAdded: Bool = false) throws -> LoadedModel {
        let method = self.method(default: fallback)
        guard let config = try runConfig() else {
            let loaded = try method.load(model: model, weights: weights.map { URL(fileURLWithPath: $0) }, numClasses: numClasses,
                                         seed: seed, requireAdded: requireAdded) { printError("note: \($0)") }
            if let report = loaded.report, !report.unexpected.isEmpty {
                printError("warning: \(weights ?? ""): \(report.unexpected.count) tensor(s) the model does not use: \(report.unexpected.prefix(8).joined(separator: ", "))")
            }
            return loaded
        }
        let best = URL(fileURLWithPath: run!).appendingPathComponent("best.safetensors")
        guard FileManager.default.fileExists(atPath: best.path) else {
            throw ValidationError("\(run!): no best.safetensors yet (no epoch has been evaluated)")
        }
        let trained = try SafeTensors.load(best).tensors
        let spec = try ModelRegistry.spec(config.model)
        let classes = numClasses ?? trained.filter { spec.isHeadParameter($0.key) && $0.key.hasSuffix(".weight") && $0.value.rank == 2 }
            .sorted { $0.key < $1.key }.last?.value.shape[0]
        let base = weights ?? config.weights
        let loaded = try method.load(model: config.model, weights: base.map { URL(fileURLWithPath: $0) }, numClasses: classes,
                                     seed: config.seed) { printError("note: \($0)") }
        let report = loaded.model.load(stateDict: trained)
        guard report.unexpected.isEmpty, report.shapeMismatches.isEmpty else {
            let misfits = report.unexpected + report.shapeMismatches.map { "\($0.name) (shape \($0.checkpoint), the model's \($0.model))" }
            throw ValidationError("\(best.path): \(misfits.count) trained tensor(s) do not fit \(config.model) with \(method.rawValue) (e.g. \(misfits.prefix(4).joined(separator: ", "))); the run trained \(config.method)")
        }
        printError("note: \(run!): \(config.model) \(method.rawValue) from \(base ?? "a random initialisation") with the run's \(report.loaded) trained tensors")
        return loaded
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "List the architectures in the registry.")
    @Flag(help: "One JSON object per line.") var json = false

    func run() {
        for s in ModelRegistry.all {
            let p = s.preprocess
            if json {
                let line: JSONValue = [
                    "name": JSONValue(s.name), "family": JSONValue(s.family), "num_classes": JSONValue(s.defaultNumClasses),
                    "input_size": JSONValue(p.inputSize), "crop_fraction": JSONValue(p.cropFraction),
                    "interpolation": JSONValue(p.interpolation.rawValue),
                    "mean": .array(p.mean.map { JSONValue($0) }), "std": .array(p.std.map { JSONValue($0) }),
                ]
                print(line.serialized)
            } else {
                print("\(s.name.padding(toLength: 38, withPad: " ", startingAt: 0)) \(s.family.padding(toLength: 14, withPad: " ", startingAt: 0)) classes \(String(s.defaultNumClasses).padding(toLength: 6, withPad: " ", startingAt: 0)) input \(p.inputSize)  crop \(p.cropFraction)  \(p.interpolation.rawValue)")
            }
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Parameters by module, totals and multiply-adds per image.")
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        threadOptions.apply()
        let loaded = try modelOptions.load()
        let model = loaded.model
        var byModule: [(String, Int)] = []
        for (name, p) in model.namedParameters() where !p.isBuffer {
            let parts = name.split(separator: ".")
            let key = parts.count > 2 && Int(parts[1]) != nil ? "\(parts[0]).\(parts[1])" : String(parts[0])
            if let i = byModule.firstIndex(where: { $0.0 == key }) { byModule[i].1 += p.count } else { byModule.append((key, p.count)) }
        }
        let size = loaded.spec.preprocess.inputSize
        let image = Tensor.zeros([1, 3, size, size])
        let macs = FlopCounter.countMultiplyAdds { _ = model(image) }
        let total = model.parameterCount
        let summary = TrainableSummary(model)
        if json {
            let line: JSONValue = [
                "model": JSONValue(modelOptions.model), "method": JSONValue(modelOptions.method.rawValue),
                "num_classes": JSONValue(model.numClasses), "params": JSONValue(total),
                "trainable": JSONValue(summary.total), "trainable_ssf": JSONValue(summary.ssf), "trainable_head": JSONValue(summary.head),
                "trainable_added": JSONValue(summary.added), "trainable_other": JSONValue(summary.other),
                "backbone_params": JSONValue(summary.backbone),
                "trainable_percent_of_backbone": JSONValue(summary.percentOfBackbone, decimals: 4),
                "gmacs": JSONValue(Double(macs) / 1e9, decimals: 4), "input_size": JSONValue(size),
                "modules": .orderedObject(byModule.map { JSONMember($0.0, JSONValue($0.1)) }),
            ]
            print(line.serialized)
        } else {
            print("\(modelOptions.model): \(model.numClasses) classes, input \(size)×\(size)")
            for (name, count) in byModule { print("  \(name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(count).leftPadded(12))") }
            print("  total parameters        \(String(total).leftPadded(12))  (\(String(format: "%.2f", Double(total) / 1e6))M)")
            print("  trainable (\(modelOptions.method.rawValue))".padding(toLength: 26, withPad: " ", startingAt: 0) + "\(String(summary.total).leftPadded(12))  (\(String(format: "%.3f", summary.percentOfBackbone))% of the backbone's \(summary.backbone))")
            print("    SSF vectors           \(String(summary.ssf).leftPadded(12))")
            print("    head                  \(String(summary.head).leftPadded(12))")
            print("    adapters/prompts/LoRA \(String(summary.added).leftPadded(12))")
            print("    other                 \(String(summary.other).leftPadded(12))")
            print("  GMACs per image          \(String(format: "%11.3f", Double(macs) / 1e9))  (multiply-adds of linear, conv and attention ops)")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forward", abstract: "Run a model on a tensor file: reads `input` [N,3,H,W], writes `logits`.")
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "safetensors file holding the tensor `input` (N×3×H×W, Float32).") var input: String
    @Option(help: "safetensors file to write with the tensor `logits`.") var output: String

    func run() throws {
        threadOptions.apply()
        let file = try SafeTensors.load(URL(fileURLWithPath: input))
        guard let images = file.tensors["input"] else {
            throw ValidationError("\(input): no tensor named `input` (found: \(file.order.joined(separator: ", ")))")
        }
        guard images.rank == 4, images.shape[1] == 3 else {
            throw ValidationError("\(input): `input` must be N×3×H×W, got \(images.shape)")
        }
        let model = try modelOptions.load().model
        let logits = model(images)
        try SafeTensors.save(["logits": logits], metadata: ["model": modelOptions.model], to: URL(fileURLWithPath: output))
        printError("wrote logits \(logits.shape) to \(output)")
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "predict", abstract: "Classify images and print the top classes.")
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "How many classes to print per image.") var top = 5
    @Option(help: "A task's delta file (from ssf train or ssf delta extract) laid over the base weights; its class names are printed.") var delta: String?
    @Argument(help: "JPEG or PNG files.") var images: [String]

    func run() throws {
        threadOptions.apply()
        var options = modelOptions
        var names: [String]?
        var deltaFile: DeltaFile?
        if let delta {
            let file = try DeltaFile(contentsOf: URL(fileURLWithPath: delta))
            options.methodOptions.name = .ssf
            deltaFile = file
            names = file.classNames
        }
        let loaded = try options.load(default: .full)
        if let deltaFile {
            let state = try deltaFile.ssfState(onBase: loaded.model.stateDict(), model: options.model)
            if options.numClasses == nil, let classes = deltaFile.tensors.first(where: { loaded.spec.isHeadParameter($0.key) && $0.key.hasSuffix(".weight") && $0.value.rank == 2 })?.value.shape[0],
               classes != loaded.model.numClasses {
                var rng = RandomGenerator(seed: 0)
                loaded.model.resetHead(numClasses: classes, using: &rng)
            }
            let report = loaded.model.load(stateDict: state)
            guard report.unexpected.isEmpty, report.shapeMismatches.isEmpty else {
                throw ValidationError("\(delta!) does not fit \(options.model) with ssf:\n\(report)")
            }
        }
        names = names ?? storedClassNames(options)
        let p = loaded.spec.preprocess
        let transform = EvalTransform(imageSize: p.inputSize, cropFraction: p.cropFraction,
                                      filter: p.interpolation == .bicubic ? .bicubic : .bilinear, mean: p.mean, std: p.std)
        if names?.count != loaded.model.numClasses { names = loaded.model.numClasses == imageNetClassNames.count ? imageNetClassNames : nil }
        for path in images {
            let image = try RGBImage(contentsOf: URL(fileURLWithPath: path))
            let x = transform(image).reshaped([1, 3, p.inputSize, p.inputSize])
            let probs = softmax(loaded.model(x)).scalars
            print(path)
            for (rank, (index, prob)) in probs.enumerated().sorted(by: { $0.element > $1.element }).prefix(top).map({ ($0.offset, $0.element) }).enumerated() {
                let label = names.map { $0[index].split(separator: ",").first.map(String.init) ?? $0[index] } ?? "class \(index)"
                print("  \(rank + 1). \(String(format: "%6.2f", prob * 100))%  \(label) (\(index))")
            }
        }
    }

    /// Class names a checkpoint carries (`class_names` in a merged file's metadata), or a run's task delta.
    private func storedClassNames(_ options: ModelOptions) -> [String]? {
        if let run = options.run {
            return (try? DeltaFile(contentsOf: URL(fileURLWithPath: run).appendingPathComponent("task.delta.safetensors")))?.classNames
        }
        guard let weights = options.weights, weights.hasSuffix(".safetensors"),
              let text = (try? SafeTensors.load(URL(fileURLWithPath: weights)))?.metadata["class_names"],
              let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String] else { return nil }
        return parsed
    }
}
