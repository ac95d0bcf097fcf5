// `ssf bench model`: images/s and peak memory of inference and training steps of a registered model.
import ArgumentParser
import Foundation
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning
#if canImport(Glibc)
import Glibc
#endif

struct BenchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Images/s and peak memory of a model's inference or training step.",
        discussion: """
        Modes: infer (the plain architecture), merged (the plain architecture running a merged SSF
        checkpoint), ssf, linear, bias, full (a training step of that method: forward, backward,
        AdamW update), train (a training step of --method, e.g. lora or ssf+lora). Batch norm
        trains as `ssf train` trains it by default: with batch statistics for full fine-tuning,
        frozen (running statistics) for the other methods.
        `--mode infer --method ssf` times unmerged SSF inference. Weights are
        random (speed does not depend on them); the figure is the median of the timed steps.
        For merged and unmerged SSF inference the plain model runs too, step by step in
        alternation, and `ratio_to_plain` compares the two medians of the same run.

        --profile then runs --steps more steps with the op profile on and prints, per op kind
        (forward, and each recorded op's backward), milliseconds per step, the share of the step,
        calls per step, GFLOP/s of the GEMMs and direct convolutions inside it (multiply and add
        counted apart) and GB/s of the tensors it allocated; the rest of the step (the optimiser,
        framework overhead) is "unattributed". Profiled steps run a little slower than plain ones.
        """)
    enum Mode: String, ExpressibleByArgument, CaseIterable { case infer, merged, ssf, linear, bias, full, train }

    @Option(help: "Model name from `ssf models`.") var model: String
    @Option(help: "infer, merged, ssf, linear, bias, full or train.") var mode: Mode = .infer
    /// The method of --mode infer (ssf = unmerged SSF inference) and --mode train.
    @OptionGroup var methodOptions: MethodOptions
    private var method: TuningMethod { methodOptions.method(default: .full) }
    @Option(help: "Images per step.") var batch = 8
    @Option(name: .customLong("image-size"), help: "Input size (default: the model's).") var imageSize: Int?
    @Option(help: "Timed steps after two warm-up steps.") var steps = 5
    @Option(name: .customLong("num-classes"), help: "Classes of the head.") var numClasses = 100
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Also profile the step per op kind (time, GFLOP/s, GB/s).") var profile = false
    @Flag(help: ArgumentHelp("Alternate each timed step with one sgemm at each ViT-B/16 projection shape (`ssf bench ops`' sgemm_all) and report the model's FLOP rate as a fraction of that rate.",
                             discussion: "The model's FLOPs count the forward for inference, the forward and the input gradients for SSF training, and also the weight gradients for full fine-tuning; other modes report the sgemm rate only. A second reference takes its turn too: the model's own top-level GEMMs, recorded in one extra step and replayed as raw BLAS with the model's weights as operands (activations and gradients from shared scratch buffers), and the model's rate as a fraction of theirs. Peak RSS and peak tensor memory are then the process's less the references' buffers."))
    var roof = false

    func run() throws {
        threadOptions.apply()
        let spec = try ModelRegistry.spec(model)
        let size = imageSize ?? spec.preprocess.inputSize
        var rng = RandomGenerator(seed: 0)
        let net = try ModelRegistry.create(model, numClasses: numClasses)
        switch mode {
        case .infer, .train:
            try method.apply(to: net, family: spec.family, using: &rng)
        case .merged:
            TuningMethod.ssf.apply(to: net, using: &rng)
            let tuned = LoadedModel(model: net, spec: spec, report: nil, notes: [])
            let verified = try MethodMerge.mergeAndVerify(tuned, method: .ssf)
            let merged = try Pretrained.loadState(verified.state, model: model, numClasses: numClasses)
            try merged.requireComplete(path: "(merged)")
            try benchmark(merged.model, size: size, training: nil, plain: try ModelRegistry.create(model, numClasses: numClasses))
            return
        case .ssf: TuningMethod.ssf.apply(to: net, using: &rng)
        case .linear: TuningMethod.linear.apply(to: net, using: &rng)
        case .bias: TuningMethod.bias.apply(to: net, using: &rng)
        case .full: TuningMethod.full.apply(to: net, using: &rng)
        }
        let plain = mode == .infer && method.components != [.full] ? try ModelRegistry.create(model, numClasses: numClasses) : nil
        let training = mode == .infer ? nil : mode == .train ? method : TuningMethod(rawValue: mode.rawValue)
        try benchmark(net, size: size, training: training, plain: plain)
    }

    private func benchmark(_ net: ImageClassifier, size: Int, training: TuningMethod?, plain: ImageClassifier? = nil) throws {
        var rng = RandomGenerator(seed: 1)
        let images = Tensor.randomNormal([batch, 3, size, size], using: &rng)
        let labels = (0..<batch).map { $0 % max(net.numClasses, 1) }
        let optimizer = training.map { _ in AdamW(net.trainableParameters.map(\.1), learningRate: 1e-3) }
        net.setTraining(training != nil)
        // As `ssf train` does by default (bn: auto): batch statistics for full fine-tuning only.
        if let training { net.setBatchNormMode(training.components.contains(.full) ? .train : .frozen) }
        StorageStats.resetPeak()
        let step: () -> Void = {
            if let optimizer {
                let tape = Tape()
                let loss = tape.recording { crossEntropy(net(images), labels: labels) }
                optimizer.update(tape.backward(from: loss))
            } else {
                _ = net(images)
            }
        }
        // With a plain model to compare, the two run in alternation (plain first in each round);
        // with --roof the sgemm reference takes its turn after the step.
        // and then the model's own GEMMs replayed as raw BLAS (recorded in one extra step).
        var sgemm = roof ? SgemmRoof(using: &rng) : nil
        let replay = roof ? GemmReplay(GemmRecorder.record(step), parameters: net.namedParameters().map(\.1)) : nil
        let roofTurn: [() -> Void] = roof ? [{ sgemm!.runAll() }, { replay!.run() }] : []
        let medians = TurnTimer.medianSeconds((plain.map { p in [{ _ = p(images) }] } ?? []) + [step] + roofTurn, rounds: steps, warmup: 2)
        let median = medians[plain == nil ? 0 : 1]
        let roofRate = sgemm.map { $0.flops / medians[medians.count - 2] / 1e9 }
        let replayRate = replay.map { $0.flops / medians.last! / 1e9 }
        let passes: Double? = switch mode {
        case .infer, .merged: 1
        case .ssf: 2
        case .full: 3
        default: nil
        }
        let modelFlops: Double? = roof ? passes.map { passes in
            2 * Double(FlopCounter.countMultiplyAdds { _ = net(Tensor.zeros([1, 3, size, size])) }) * passes * Double(batch)
        } : nil
        let modelRate = modelFlops.map { $0 / median / 1e9 }
        // The --roof references' buffers stay resident (and live) through every step: the model's own
        // peaks are the process's less them (the process's RSS is reported too).
        let referenceMiB = Double((sgemm?.bytes ?? 0) + (replay?.bytes ?? 0)) / 1_048_576
        let processPeakMiB = StorageStats.peakResidentMiB(), peakMiB = processPeakMiB - referenceMiB
        let peakTensorMiB = Double(StorageStats.peakLiveBytes) / 1_048_576 - referenceMiB
        let plainMedian = plain == nil ? nil : medians[0]
        let imagesPerSecond = Double(batch) / median
        let plainRate = plainMedian.map { Double(batch) / $0 }
        let roofText = roofRate.map { roof in
            "; sgemm \(String(format: "%.1f", roof)) GFLOP/s in alternation" + (modelRate.map { String(format: ", model %.1f GFLOP/s = %.3f of it", $0, $0 / roof) } ?? "")
        } ?? ""
        let replayText = replay.map { replay in
            let share = modelFlops.map { String(format: ", %.0f%% of the model's FLOPs", 100 * replay.flops / $0) } ?? ""
            return "; its own \(replay.calls.count) top-level GEMMs as raw BLAS\(share): \(String(format: "%.1f", replayRate!)) GFLOP/s in alternation"
                + (modelRate.map { String(format: ", model = %.3f of it", $0 / replayRate!) } ?? "")
        } ?? ""
        let comparisonText = plainRate.map { String(format: "; plain model %.2f img/s in alternation, ratio %.3f", $0, imagesPerSecond / $0) } ?? ""
        let label = mode == .infer && method.components != [.full] ? "infer-\(method.rawValue)"
            : mode == .train ? "train-\(method.rawValue)" : mode.rawValue
        var profileReport: OpProfileReport?
        var mappedPerStep = 0.0
        if profile {
            // The ops run on this thread, so the profile sees every one of them.
            let mappedBefore = StorageStats.freshlyMappedBytes
            profileReport = OpProfile.measure { for _ in 0..<steps { step() } }.1
            mappedPerStep = Double(StorageStats.freshlyMappedBytes - mappedBefore) / Double(max(steps, 1)) / 1_048_576
        }
        if json {
            var fields = [
                JSONMember("model", JSONValue(model)), JSONMember("mode", JSONValue(label)), JSONMember("batch", JSONValue(batch)),
                JSONMember("threads", JSONValue(Threading.threads)), JSONMember("image_size", JSONValue(size)),
                JSONMember("img_per_s", JSONValue(imagesPerSecond, decimals: 3)), JSONMember("step_s", JSONValue(median, decimals: 4)),
                JSONMember("peak_rss_mib", JSONValue(peakMiB, decimals: 1)),
                JSONMember("peak_tensor_mib", JSONValue(peakTensorMiB, decimals: 1)),
                JSONMember("trainable", JSONValue(net.trainableCount)),
            ]
            if let plainRate {
                fields.append(JSONMember("plain_img_per_s", JSONValue(plainRate, decimals: 3)))
                fields.append(JSONMember("ratio_to_plain", JSONValue(imagesPerSecond / plainRate, decimals: 4)))
            }
            if let roofRate {
                fields.append(JSONMember("roof_gflops", JSONValue(roofRate, decimals: 2)))
                if let modelRate {
                    fields.append(JSONMember("model_gflops", JSONValue(modelRate, decimals: 2)))
                    fields.append(JSONMember("fraction_of_roof", JSONValue(modelRate / roofRate, decimals: 3)))
                }
            }
            if roof {
                fields.append(JSONMember("process_peak_rss_mib", JSONValue(processPeakMiB, decimals: 1)))
                fields.append(JSONMember("roof_buffers_mib", JSONValue(referenceMiB, decimals: 1)))
            }
            if let replay, let replayRate {
                fields.append(JSONMember("own_gemms", JSONValue(replay.calls.count)))
                fields.append(JSONMember("own_gemm_operands_from_parameters", JSONValue(replay.parameterOperands)))
                fields.append(JSONMember("own_gemm_gflops", JSONValue(replayRate, decimals: 2)))
                if let modelFlops, let modelRate {
                    fields.append(JSONMember("own_gemm_flop_share", JSONValue(replay.flops / modelFlops, decimals: 3)))
                    fields.append(JSONMember("fraction_of_own_gemms", JSONValue(modelRate / replayRate, decimals: 3)))
                }
            }
            if let report = profileReport {
                let perStep = 1 / Double(steps)
                fields.append(JSONMember("profile", .array(report.entries.map { e in
                    .orderedObject([
                        JSONMember("op", JSONValue(e.name)), JSONMember("ms_per_step", JSONValue(e.seconds * perStep * 1000, decimals: 3)),
                        JSONMember("calls_per_step", JSONValue(Double(e.calls) * perStep, decimals: 1)),
                        JSONMember("gflop_per_s", e.flops > 0 ? JSONValue(e.flops / e.seconds / 1e9, decimals: 2) : .null),
                        JSONMember("alloc_gb_per_s", JSONValue(e.bytesAllocated / e.seconds / 1e9, decimals: 2)),
                    ])
                })))
                fields.append(JSONMember("profile_step_s", JSONValue(report.totalSeconds * perStep, decimals: 4)))
                fields.append(JSONMember("profile_unattributed_ms", JSONValue(report.unattributedSeconds * perStep * 1000, decimals: 3)))
                fields.append(JSONMember("fresh_mapped_mib_per_step", JSONValue(mappedPerStep, decimals: 1)))
            }
            print(JSONValue.orderedObject(fields).serialized)
        } else {
            print("\(model) \(label): batch \(batch), \(size)×\(size), \(Threading.threads) thread(s): \(String(format: "%.2f", imagesPerSecond)) img/s (step \(String(format: "%.3f", median)) s), peak RSS \(String(format: "%.0f", peakMiB)) MiB\(roof ? String(format: " (the process's %.0f less the references' %.0f)", processPeakMiB, referenceMiB) : ""), peak tensor memory \(String(format: "%.0f", peakTensorMiB)) MiB\(comparisonText)\(roofText)\(replayText)")
            if let report = profileReport {
                print(Self.profileTable(report, steps: steps))
                print(String(format: "fresh tensor memory mapped: %.1f MiB per step (buffers the cache did not serve: pages faulted in)", mappedPerStep))
            }
        }
    }

    /// The profile as a text table, per step.
    static func profileTable(_ report: OpProfileReport, steps: Int) -> String {
        let perStep = 1 / Double(steps), total = report.totalSeconds
        func row(_ name: String, _ seconds: Double, _ calls: String, _ gflops: String, _ gbps: String) -> String {
            name.padding(toLength: 26, withPad: " ", startingAt: 0)
                + String(format: "%9.2f %6.1f%% ", seconds * perStep * 1000, 100 * seconds / max(total, 1e-12))
                + " " + calls.leftPadded(8) + " " + gflops.leftPadded(9) + " " + gbps.leftPadded(8)
        }
        var lines = ["op (per step)".padding(toLength: 26, withPad: " ", startingAt: 0) + "       ms   share    calls   GFLOP/s  GB/s out"]
        for e in report.entries {
            lines.append(row(e.name, e.seconds, String(format: "%.0f", Double(e.calls) * perStep),
                             e.flops > 0 ? String(format: "%.1f", e.flops / e.seconds / 1e9) : "—",
                             String(format: "%.2f", e.bytesAllocated / e.seconds / 1e9)))
        }
        lines.append(row("unattributed", report.unattributedSeconds, "", "", ""))
        lines.append(row("step", total, "", "", ""))
        return lines.joined(separator: "\n")
    }
}
