// `ssf merge` and `ssf delta extract|apply`: fold tuned models (SSF, LoRA, bias, linear, full) into plain
// checkpoints and keep per-task SSF deltas.
import ArgumentParser
import Foundation
import SSFEngine
import SSFModels
import SSFNN
import SSFTuning

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a tuned model into the frozen weights: a plain checkpoint with the original architecture.",
        discussion: """
        ssf folds its scale/shift vectors into the preceding ops; lora folds W + (alpha/rank)·B·A;
        bias, linear and full only changed existing tensors. adapter and vpt-* cannot fold (they add
        a nonlinear branch or tokens). --run RUN_DIR takes the model, method and its options from the
        run; otherwise --weights is the tuned state and the --lora-* options must be the trained ones.
        """)
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Merged checkpoint to write (.safetensors).") var output: String
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        let method = modelOptions.method(default: .ssf)
        if let reason = MethodMerge.unfoldableReason(method, family: try ModelRegistry.spec(modelOptions.model).family) {
            throw MergeError(problem: "cannot merge \(method.rawValue): \(reason)")
        }
        // --weights holds the tuned state (base weights + the method's tensors + head), or --run names the run.
        let loaded = try modelOptions.load(default: .ssf, requireAdded: true)
        let verified = try MethodMerge.mergeAndVerify(loaded, method: method)
        printError(verified.summary)
        var metadata = ["model": modelOptions.model, "merged_from": method.rawValue]
        // A run's class names travel with the merged file (`ssf predict` prints them).
        if let run = modelOptions.run,
           let names = (try? DeltaFile(contentsOf: URL(fileURLWithPath: run).appendingPathComponent("task.delta.safetensors")))?.classNames {
            metadata["class_names"] = JSONValue.array(names.map { JSONValue($0) }).serialized
        }
        try SafeTensors.save(verified.state, metadata: metadata, to: URL(fileURLWithPath: output))
        printError("wrote \(output) (\(verified.state.count) tensors)")
    }
}

struct DeltaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delta", abstract: "Per-task delta files holding only the SSF vectors and the head.",
        subcommands: [DeltaExtractCommand.self, DeltaApplyCommand.self])
}

struct DeltaExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "extract", abstract: "Write the SSF vectors and head of an SSF model state as a delta file.")
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Text file with one class name per line, stored in the delta.") var classes: String?
    @Option(help: "Delta file to write (.safetensors).") var output: String

    func run() throws {
        guard modelOptions.method(default: .ssf).components == [.ssf] else {
            throw ValidationError("a delta holds SSF vectors and a head: the model must be tuned with ssf, not \(modelOptions.method(default: .ssf).rawValue)")
        }
        let loaded = try modelOptions.load(default: .ssf, requireAdded: true)
        let model = modelOptions.model
        let names = try classes.map { path -> [String] in
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        }
        if let names, names.count != loaded.model.numClasses {
            throw ValidationError("\(classes!): \(names.count) class names for a \(loaded.model.numClasses)-class head")
        }
        let delta = DeltaFile(ssfState: loaded.model.stateDict(), baseModel: model, headName: type(of: loaded.model).headName, classNames: names)
        try delta.save(to: URL(fileURLWithPath: output))
        let count = delta.tensors.values.reduce(0) { $0 + $1.count }
        printError("wrote \(output): \(delta.tensors.count) tensors, \(count) parameters, base \(delta.baseFingerprint.prefix(16))…")
    }
}

struct DeltaApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "apply", abstract: "Apply a delta to its base checkpoint and write the merged plain checkpoint.")
    @Option(help: "Model name from `ssf models`.") var model: String
    @Option(help: "The base checkpoint the delta was trained on.") var base: String
    @Option(help: "Delta file from `ssf delta extract`.") var delta: String
    @Option(help: "Merged checkpoint to write (.safetensors).") var output: String
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        let file = try DeltaFile(contentsOf: URL(fileURLWithPath: delta))
        let baseModel = try Pretrained.load(model: model, weights: URL(fileURLWithPath: base))
        let state = try file.ssfState(onBase: baseModel.model.stateDict(), model: model)
        let tuned = try TuningMethod.ssf.load(model: model, state: state, path: delta, requireAdded: true)
        let verified = try MethodMerge.mergeAndVerify(tuned, method: .ssf)
        printError(verified.summary)
        let out = verified.state
        var metadata = ["model": model, "merged_from": "ssf-delta"]
        if let names = file.classNames { metadata["class_names"] = JSONValue.array(names.map { JSONValue($0) }).serialized }
        try SafeTensors.save(out, metadata: metadata, to: URL(fileURLWithPath: output))
        printError("wrote \(output) (\(out.count) tensors)")
    }
}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Rewrite a checkpoint in another layout (Google ViT .npz, timm 0.6 Swin, efficientnet_pytorch, facebook or SSF-reference ConvNeXt) with timm's names.",
        discussion: """
        Detects the layout from the tensor names, prints what it renamed and left out, and checks
        the result loads exactly into the model (the model's SSF sites included when the
        checkpoint has them). Tensors no layout knows are an error naming them.
        """)
    @Option(help: "Model name from `ssf models`.") var model: String
    @Argument(help: "Checkpoint to read (.safetensors, .pth/.pt/.bin, .npz).") var input: String
    @Argument(help: "Checkpoint to write (.safetensors).") var output: String
    @Flag(help: "List every renamed tensor.") var verbose = false

    func run() throws {
        let spec = try ModelRegistry.spec(model)
        let source = try Checkpoint.read(URL(fileURLWithPath: input))
        let converted: ConvertedCheckpoint
        do { converted = try spec.convertCheckpoint(source) } catch { throw ValidationError("\(input): \(error)") }
        print("\(input): \(converted.summary)")
        if verbose { for (from, to) in converted.renamed { print("  \(from) -> \(to)") } }
        for (name, reason) in converted.dropped { print("  left out \(name): \(reason)") }
        // The result must be a checkpoint of this model: every tensor has its place.
        let method: TuningMethod = converted.tensors.keys.contains(where: TuningMethod.isSSF) ? .ssf : .full
        let loaded = try method.load(model: model, state: converted.tensors, path: input, requireAdded: method == .ssf)
        if let report = loaded.report, !report.unexpected.isEmpty {
            throw ValidationError("\(input): \(report.unexpected.count) converted tensor(s) have no place in \(model): \(report.unexpected.prefix(8).joined(separator: ", "))")
        }
        try SafeTensors.save(converted.tensors, metadata: ["model": model, "converted_from": converted.layouts.joined(separator: "+")],
                             to: URL(fileURLWithPath: output))
        print("wrote \(output) (\(converted.tensors.count) tensors, loads exactly into \(model)\(method == .ssf ? " with SSF" : ""))")
    }
}
