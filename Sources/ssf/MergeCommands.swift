// `ssf merge` and `ssf delta extract|apply`: fold tuned models (SSF, LoRA, bias, linear, full) into plain
// checkpoints and keep per-task SSF deltas.
import ArgumentParser
import Foundation
import SSFEngine
import SSFModels
import SSFNN
import SSFTuning

/// Folds a model state tuned with `method` and checks the plain model reproduces the tuned model's logits.
private func mergeAndVerify(_ loaded: LoadedModel, method: TuningMethod, numClasses: Int) throws -> MergeResult {
    let state = loaded.model.stateDict()
    let result = try MethodMerge.merge(state, family: loaded.spec.family, method: method)
    let plain = try ModelRegistry.create(loaded.spec.name, numClasses: numClasses)
    let report = plain.load(stateDict: result.merged)
    guard report.isExact else {
        throw MergeError(problem: "the merged checkpoint does not load exactly into \(loaded.spec.name):\n\(report)")
    }
    if result.unfolded.isEmpty {
        var rng = RandomGenerator(seed: 0)
        let size = loaded.spec.preprocess.inputSize
        let probe = Tensor.randomNormal([1, 3, size, size], using: &rng)
        let diff = zip(plain(probe).scalars, loaded.model(probe).scalars).map { abs($0 - $1) }.max() ?? 0
        printError("folded \(result.foldedSites) \(method.rawValue) sites; merged vs tuned logits on a random image: max |Δ| = \(diff)")
    } else {
        printError("folded \(result.foldedSites) \(method.rawValue) sites; kept \(result.unfolded.keys.sorted().joined(separator: ", ")) (no op precedes that site; it scales the pooled features)")
    }
    return result
}

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a tuned model into the frozen weights: a plain checkpoint with the original architecture.",
        discussion: """
        ssf folds its scale/shift vectors into the preceding ops; lora folds W + (alpha/rank)·B·A
        (give the --lora-* options it was trained with); bias, linear and full only changed
        existing tensors. adapter and vpt-* cannot fold (they add a nonlinear branch or tokens).
        """)
    @Option(help: "Model name from `ssf models`.") var model: String
    @Option(help: "Tuned model state: base weights + the method's tensors (e.g. ssf_scale_K/ssf_shift_K) + head (.safetensors or .pth).") var weights: String
    @OptionGroup var methodOptions: MethodOptions
    @Option(name: .customLong("num-classes"), help: "Classes of the head (default: the checkpoint's).") var numClasses: Int?
    @Option(help: "Merged checkpoint to write (.safetensors).") var output: String
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        let method = methodOptions.method(default: .ssf)
        let family = try ModelRegistry.spec(model).family
        if let reason = MethodMerge.unfoldableReason(method, family: family) {
            throw MergeError(problem: "cannot merge \(method.rawValue): \(reason)")
        }
        var problem: Error?
        let loaded = try Pretrained.load(model: model, weights: URL(fileURLWithPath: weights), numClasses: numClasses) { m in
            var rng = RandomGenerator(seed: 1)
            do { try method.apply(to: m, family: family, using: &rng) } catch { problem = error }
        }
        if let problem { throw problem }
        if let report = loaded.report, !report.missing.filter(TuningMethod.isAdded).isEmpty {
            let missing = report.missing.filter(TuningMethod.isAdded)
            throw ValidationError("\(weights): holds none of \(missing.count) of \(model)'s \(method.rawValue) parameters (e.g. \(missing[0])); was it trained with --method \(method.rawValue)?")
        }
        // Shapes must match too: a LoRA checkpoint of another rank would otherwise merge as zero updates.
        try loaded.requireComplete(path: weights)
        let result = try mergeAndVerify(loaded, method: method, numClasses: loaded.model.numClasses)
        var out = result.merged
        for (k, v) in result.unfolded { out[k] = v }
        try SafeTensors.save(out, metadata: ["model": model, "merged_from": method.rawValue], to: URL(fileURLWithPath: output))
        printError("wrote \(output) (\(out.count) tensors)")
    }
}

struct DeltaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delta", abstract: "Per-task delta files holding only the SSF vectors and the head.",
        subcommands: [DeltaExtractCommand.self, DeltaApplyCommand.self])
}

struct DeltaExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "extract", abstract: "Write the SSF vectors and head of an SSF model state as a delta file.")
    @Option(help: "Model name from `ssf models`.") var model: String
    @Option(help: "SSF model state (base weights + SSF vectors + head).") var weights: String
    @Option(name: .customLong("num-classes"), help: "Classes of the head (default: the checkpoint's).") var numClasses: Int?
    @Option(help: "Text file with one class name per line, stored in the delta.") var classes: String?
    @Option(help: "Delta file to write (.safetensors).") var output: String

    func run() throws {
        let loaded = try Pretrained.load(model: model, weights: URL(fileURLWithPath: weights), numClasses: numClasses) { m in
            var rng = RandomGenerator(seed: 1)
            TuningMethod.ssf.apply(to: m, using: &rng)
        }
        if let report = loaded.report, !report.isExact {
            printError("warning: \(weights) does not match \(model) with SSF exactly:\n\(report)")
        }
        let names = try classes.map { path -> [String] in
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        }
        if let names, names.count != loaded.model.numClasses {
            throw ValidationError("\(classes!): \(names.count) class names for a \(loaded.model.numClasses)-class head")
        }
        let delta = DeltaFile(ssfState: loaded.model.stateDict(), baseModel: model, classNames: names)
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
        let tuned = try Pretrained.loadState(state, model: model) { m in
            var rng = RandomGenerator(seed: 1)
            TuningMethod.ssf.apply(to: m, using: &rng)
        }
        let result = try mergeAndVerify(tuned, method: .ssf, numClasses: tuned.model.numClasses)
        var out = result.merged
        for (k, v) in result.unfolded { out[k] = v }
        var metadata = ["model": model, "merged_from": "ssf-delta"]
        if let names = file.classNames { metadata["class_names"] = String(decoding: try JSONSerialization.data(withJSONObject: names), as: UTF8.self) }
        try SafeTensors.save(out, metadata: metadata, to: URL(fileURLWithPath: output))
        printError("wrote \(output) (\(out.count) tensors)")
    }
}
