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
    @Option(name: .customLong("adapter-dim"), help: "Adapter bottleneck width (default 8).") var adapterDim: Int?
    @Option(help: "VPT prompt tokens, per block for vpt-deep (default 10).") var prompts: Int?
    @Option(name: .customLong("prompt-dropout"), help: "Dropout on the VPT prompts while training (default 0).") var promptDropout: Float?
    @Option(name: .customLong("lora-rank"), help: "LoRA rank r (default 8).") var loraRank: Int?
    @Option(name: .customLong("lora-alpha"), help: "LoRA alpha (default: the rank); updates are scaled by alpha/rank.") var loraAlpha: Float?
    @Option(name: .customLong("lora-targets"), help: "Comma-separated LoRA targets from qkv, proj, fc1, fc2 (default qkv,proj).") var loraTargets: String?

    func validate() throws {
        guard (adapterDim ?? 1) > 0, (prompts ?? 1) > 0, (loraRank ?? 1) > 0 else { throw ValidationError("--adapter-dim, --prompts and --lora-rank must be positive") }
        guard (promptDropout ?? 0) >= 0 && (promptDropout ?? 0) < 1 else { throw ValidationError("--prompt-dropout must be in [0, 1)") }
    }

    /// The flags given, as training-configuration keys.
    var overrides: [String: Any] {
        var o: [String: Any] = [:]
        if let adapterDim { o["adapter_dim"] = adapterDim }
        if let prompts { o["prompts"] = prompts }
        if let promptDropout { o["prompt_dropout"] = Double(promptDropout) }
        if let loraRank { o["lora_rank"] = loraRank }
        if let loraAlpha { o["lora_alpha"] = Double(loraAlpha) }
        if let loraTargets { o["lora_targets"] = loraTargets }
        return o
    }

    /// The hyperparameters these flags give the methods that add parameters, over `stored` (a
    /// run's configuration, or the defaults).
    func options(over stored: TuningOptions = TuningOptions()) -> TuningOptions {
        var options = stored
        if let adapterDim { options.adapterDim = adapterDim }
        if let prompts { options.prompts = prompts }
        if let promptDropout { options.promptDropout = promptDropout }
        if let loraRank { options.loraRank = loraRank }
        if let loraAlpha { options.loraAlpha = loraAlpha }
        if let loraTargets { options.loraTargets = loraTargets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        return options
    }

    /// The method named by `--method` (or `fallback`) with these options.
    func method(default fallback: TuningMethod) -> TuningMethod {
        TuningMethod((name ?? fallback).components, options: options())
    }
}
