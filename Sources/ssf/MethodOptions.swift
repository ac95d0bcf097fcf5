// `--method` and the hyperparameters of the methods that add parameters, shared by the commands.
import ArgumentParser
import SSFModels
import SSFTuning

extension TuningMethod: ExpressibleByArgument {}

/// The tuning method and its options (`--adapter-dim`, `--prompts`, `--lora-rank`, …).
struct MethodOptions: ParsableArguments {
    @Option(name: .customLong("method"),
            help: "Tuning method: \(TuningMethod.allCases.map(\.rawValue).joined(separator: ", ")), or components joined by + (e.g. ssf+lora).")
    var name: TuningMethod?
    @Option(name: .customLong("adapter-dim"), help: "Adapter bottleneck width.") var adapterDim = 8
    @Option(help: "VPT prompt tokens (per block for vpt-deep).") var prompts = 10
    @Option(name: .customLong("prompt-dropout"), help: "Dropout on the VPT prompts while training.") var promptDropout: Float = 0
    @Option(name: .customLong("lora-rank"), help: "LoRA rank r.") var loraRank = 8
    @Option(name: .customLong("lora-alpha"), help: "LoRA alpha (default: the rank); updates are scaled by alpha/rank.") var loraAlpha: Float?
    @Option(name: .customLong("lora-targets"), help: "Comma-separated LoRA targets from qkv, proj, fc1, fc2.") var loraTargets = "qkv,proj"

    func validate() throws {
        guard adapterDim > 0, prompts > 0, loraRank > 0 else { throw ValidationError("--adapter-dim, --prompts and --lora-rank must be positive") }
        guard promptDropout >= 0 && promptDropout < 1 else { throw ValidationError("--prompt-dropout must be in [0, 1)") }
    }

    /// The hyperparameters these flags give the methods that add parameters.
    var options: TuningOptions {
        var options = TuningOptions()
        options.adapterDim = adapterDim
        options.prompts = prompts
        options.promptDropout = promptDropout
        options.loraRank = loraRank
        options.loraAlpha = loraAlpha
        options.loraTargets = loraTargets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        return options
    }

    /// The method named by `--method` (or `fallback`) with these options.
    func method(default fallback: TuningMethod) -> TuningMethod {
        TuningMethod((name ?? fallback).components, options: options)
    }
}
