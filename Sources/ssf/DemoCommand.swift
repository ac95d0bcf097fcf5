// `ssf demo`: what SSF does, on any machine, with nothing to download. A small ViT is pretrained on a
// built-in procedural task (cached), adapted to a different built-in task with several methods, the SSF
// model is merged and checked, and the runs are compared in a table and a report page.
import ArgumentParser
import Dispatch
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFReport
import SSFTraining
import SSFTuning

/// Sizes of one demo: how much data and how many epochs each stage gets.
struct DemoPlan {
    var name: String
    var pretrainImages: Int
    var pretrainEpochs: Int
    var targetTrainImages: Int
    var targetEvalImages: Int
    var targetEpochs: Int
    var batchSize: Int

    static let standard = DemoPlan(name: "standard", pretrainImages: 16_000, pretrainEpochs: 3, targetTrainImages: 1_200,
                                   targetEvalImages: 1_200, targetEpochs: 10, batchSize: 64)
    static let quick = DemoPlan(name: "quick", pretrainImages: 2_560, pretrainEpochs: 2, targetTrainImages: 384,
                                targetEvalImages: 384, targetEpochs: 2, batchSize: 64)

    /// Peak learning rate of each method on the target task (AdamW, batch `batchSize`).
    static func learningRate(_ method: TuningMethod) -> Double {
        switch method.components {
        case [.full]: return 5e-4
        case [.linear]: return 1e-2
        default: return 5e-3
        }
    }
}

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Pretrain a small ViT on a built-in task, adapt it to another with linear, bias, ssf and full, merge SSF, and report.",
        discussion: """
        Needs no data and no downloads. The source task is eight shapes on gradient backgrounds; the target \
        task is six other shapes on striped backgrounds. The pretrained backbone is cached in $SSF_CACHE \
        (default ~/.cache/ssf)/demo, so later runs skip pretraining. Writes one run directory per method, \
        results.txt and report.html under --output.
        """)

    @Flag(help: "A smaller demo (about a minute) for smoke tests.") var quick = false
    @Option(help: "Directory for the runs, results.txt and report.html.") var output = "runs/demo"
    @Option(help: "Comma-separated methods to compare on the target task.") var methods = "linear,bias,ssf,full"
    @Flag(name: .customLong("no-cache"), help: "Pretrain again even when a cached backbone exists.") var noCache = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        let plan = quick ? DemoPlan.quick : DemoPlan.standard
        let chosen = try methods.split(separator: ",").map { name -> TuningMethod in
            guard let m = TuningMethod(rawValue: String(name)) else { throw ValidationError("unknown method '\(name)'") }
            return m
        }
        guard !chosen.isEmpty else { throw ValidationError("--methods names no method") }
        let outputDirectory = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        let started = DispatchTime.now().uptimeNanoseconds
        let spec = try ModelRegistry.spec(DemoBackbone.modelName)

        print("ssf demo (\(plan.name)): \(Threading.threads) thread(s), model \(DemoBackbone.modelName) "
              + "(ViT, 32×32 input, 4×4 patches, \(VisionTransformerConfig.demo.embedDim) wide, \(VisionTransformerConfig.demo.depth) blocks)")
        for task in ProceduralTask.allCases {
            try examples(of: task).write(to: outputDirectory.appendingPathComponent("\(task.rawValue)-examples.png"), options: .atomic)
        }
        let backbone = try DemoBackbone.obtain(plan: plan, spec: spec, runDirectory: outputDirectory.appendingPathComponent("pretrain"),
                                               noCache: noCache)
        print(backbone.origin)

        let target = ProceduralTask.target
        let data = TrainingData(train: ProceduralShapesDataset(task: target, count: plan.targetTrainImages, seed: 11),
                                eval: ProceduralShapesDataset(task: target, count: plan.targetEvalImages, seed: 12), evalSplit: "test")
        print("target task: \(target.shapes.count) new shapes (\(target.shapes.map(\.rawValue).joined(separator: ", "))) on striped backgrounds; "
              + "\(plan.targetTrainImages) training and \(plan.targetEvalImages) test images, \(plan.targetEpochs) epochs per method")

        var rows: [DemoRow] = []
        var runDirectories: [URL] = []
        var ssfModel: VisionTransformer?
        for method in chosen {
            let directory = outputDirectory.appendingPathComponent(method.rawValue.replacingOccurrences(of: "+", with: "_"))
            let (model, row) = try adapt(method: method, backbone: backbone.state, data: data, plan: plan, spec: spec, directory: directory)
            rows.append(row); runDirectories.append(directory)
            if method == .ssf { ssfModel = model }
        }

        print("")
        let table = DemoRow.table(rows, backboneParameters: backbone.parameterCount)
        print(table)
        var lines = [table]
        if let ssfModel {
            let check = try mergeCheck(ssfModel, data: data, spec: spec, plan: plan)
            print(check); lines.append(check)
        }
        if let linear = rows.first(where: { $0.method == "linear" }), let ssf = rows.first(where: { $0.method == "ssf" }) {
            let verdict = ssf.top1 > linear.top1
                ? String(format: "SSF beats linear probing by %.1f points of top-1 while training %@ of the backbone's parameters.",
                         ssf.top1 - linear.top1, percent(ssf.trainable, of: backbone.parameterCount))
                : String(format: "SSF did not beat linear probing here (%.1f vs %.1f)%@.", ssf.top1, linear.top1,
                         quick ? "; --quick trains too briefly to tell, run without it" : "")
            print(verdict); lines.append(verdict)
        }
        let results = outputDirectory.appendingPathComponent("results.txt")
        try Data((lines.joined(separator: "\n\n") + "\n").utf8).write(to: results, options: .atomic)
        let report = outputDirectory.appendingPathComponent("report.html")
        try RunReport.write(runDirectories: runDirectories,
                            title: "ssf demo: \(chosen.map(\.rawValue).joined(separator: ", ")) on the procedural target task", to: report)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        print(String(format: "\nwrote %@, %@ (open it in a browser) and the run directories under %@ (%.0f s in all)",
                     results.path, report.path, outputDirectory.path, elapsed))
    }

    /// A PNG of eight examples per class (one row per class).
    private func examples(of task: ProceduralTask) throws -> Data {
        let dataset = ProceduralShapesDataset(task: task, count: task.shapes.count * 8, seed: 99)
        let images = try (0..<dataset.count).map { i in try dataset.sample(at: (i % 8) * task.shapes.count + i / 8).image }
        return try RGBImage.grid(images, columns: 8).pngData()
    }

    /// Trains `method` on the target task from the pretrained backbone.
    private func adapt(method: TuningMethod, backbone: [String: Tensor], data: TrainingData, plan: DemoPlan, spec: ModelSpec,
                       directory: URL) throws -> (VisionTransformer, DemoRow) {
        var rng = RandomGenerator(seed: 7)
        let model = try DemoBackbone.build(numClasses: data.train.classNames.count, backbone: backbone, using: &rng)
        try method.apply(to: model, family: spec.family, using: &rng)
        var config = DemoBackbone.trainingConfig(plan: plan, epochs: plan.targetEpochs, method: method)
        config.data = "procedural:target"
        let trainer = try Trainer(config: config, model: model, modelName: spec.name, data: data, preprocess: spec.preprocess,
                                  directory: directory, writesDelta: method.components == [.ssf])
        print("\(method.rawValue): training \(trainer.trainableCount) parameters ...", terminator: "")
        fflush(stdout)
        guard try trainer.run() == .finished else { throw ValidationError("the \(method.rawValue) run stopped early") }
        let summary = try DemoRow.summary(directory)
        let row = DemoRow(method: method.rawValue, top1: summary.finalTop1 ?? 0, trainable: trainer.trainableCount,
                          seconds: summary.trainSeconds ?? 0, imagesPerSecond: summary.trainImagesPerSecond ?? 0)
        print(String(format: " top-1 %.1f%% in %.1f s", row.top1, row.seconds))
        return (model, row)
    }

    /// Folds the SSF vectors into the weights, checks the plain ViT reproduces the SSF model, and times both.
    private func mergeCheck(_ model: VisionTransformer, data: TrainingData, spec: ModelSpec, plan: DemoPlan) throws -> String {
        model.setTraining(false)
        // The library's merge check (exact load into the plain architecture, logits on a probe),
        // then the whole test set below.
        let verified = try MethodMerge.mergeAndVerify(LoadedModel(model: model, spec: spec, report: nil, notes: []), method: .ssf)
        let merge = verified.result
        var rng = RandomGenerator(seed: 0)
        var plainConfig = VisionTransformerConfig.demo
        plainConfig.numClasses = model.numClasses
        let plain = VisionTransformer(config: plainConfig, using: &rng)
        let load = plain.load(stateDict: verified.state)
        guard load.isExact, merge.unfolded.isEmpty else {
            throw ValidationError("the merged SSF state does not load exactly into the plain ViT:\n\(load)")
        }
        // Logits and accuracy of both on the whole test set.
        var config = TrainingConfig()
        config.batchSize = plan.batchSize; config.directResize = true; config.workers = 2
        let loader = TrainingData.evalLoader(data.eval, config: config, preprocess: spec.preprocess)
        var maxDiff: Float = 0, maxLogit: Float = 0, agree = 0, images = 0
        var tunedResult = EvaluationResult(classes: model.numClasses), mergedResult = tunedResult
        let batches = loader.epoch(0)
        while let batch = try batches.next() {
            guard !batch.labels.isEmpty else { continue }
            let tuned = model(batch.images), merged = plain(batch.images)
            tunedResult.add(logits: tuned, labels: batch.labels); mergedResult.add(logits: merged, labels: batch.labels)
            for (a, b) in zip(tuned.scalars, merged.scalars) { maxDiff = max(maxDiff, abs(a - b)); maxLogit = max(maxLogit, abs(a)) }
            let classes = model.numClasses
            for row in 0..<batch.labels.count {
                let t = Array(tuned.scalars[row * classes..<(row + 1) * classes]), m = Array(merged.scalars[row * classes..<(row + 1) * classes])
                if t.indices.max(by: { t[$0] < t[$1] }) == m.indices.max(by: { m[$0] < m[$1] }) { agree += 1 }
            }
            images += batch.labels.count
        }
        // Inference speed of the merged model, the same ViT before tuning, and the unmerged SSF model, timed in turns.
        let reference = try DemoBackbone.build(numClasses: model.numClasses, backbone: plain.stateDict(), using: &rng)
        let probe = Tensor.randomNormal([plan.batchSize, 3, 32, 32], using: &rng)
        let speeds = timeInTurns([("merged", plain), ("plain", reference), ("ssf", model)], input: probe)
        let ssfParameters = model.parameterCount, plainParameters = plain.parameterCount
        return """
        merge: folded \(merge.foldedSites) SSF sites into the weights; the merged model is a plain ViT \
        (\(plainParameters) parameters, the SSF model has \(ssfParameters)).
          test set (\(images) images): max |Δlogit| merged vs SSF = \(String(format: "%.2e", maxDiff)) (largest logit \(String(format: "%.1f", maxLogit))), \
        same prediction on \(agree)/\(images), top-1 \(String(format: "%.2f", mergedResult.top1))% merged vs \(String(format: "%.2f", tunedResult.top1))% SSF
          inference, batch \(plan.batchSize), median of \(speeds.rounds) timed turns: merged \(String(format: "%.0f", speeds.rates["merged"]!)) img/s, \
        plain ViT \(String(format: "%.0f", speeds.rates["plain"]!)) img/s (merged/plain \(String(format: "%.3f", speeds.rates["merged"]! / speeds.rates["plain"]!))), \
        unmerged SSF \(String(format: "%.0f", speeds.rates["ssf"]!)) img/s (\(String(format: "%.3f", speeds.rates["ssf"]! / speeds.rates["plain"]!)))
        """
    }

    /// Images/s of each model on `input`: rounds of a few forward passes per model in turn, the median per model.
    private func timeInTurns(_ models: [(String, ImageClassifier)], input: Tensor, rounds: Int = 9) -> (rates: [String: Double], rounds: Int) {
        let seconds = TurnTimer.medianSeconds(models.map { _, m in { _ = m(input) } }, rounds: rounds, callsPerTurn: 3)
        let rates = Dictionary(uniqueKeysWithValues: zip(models.map(\.0), seconds.map { Double(input.shape[0]) / $0 }))
        return (rates, rounds)
    }
}

/// The demo's pretrained ViT: loaded from the cache or pretrained on the source task.
enum DemoBackbone {
    static let modelName = "demo_vit_patch4_32"

    /// `$SSF_CACHE/demo` or `~/.cache/ssf/demo`.
    static var cacheDirectory: URL {
        let root = ProcessInfo.processInfo.environment["SSF_CACHE"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ssf")
        return root.appendingPathComponent("demo")
    }

    /// A ViT with `numClasses` outputs and the backbone's weights (every tensor but the head).
    static func build(numClasses: Int, backbone: [String: Tensor], using rng: inout RandomGenerator) throws -> VisionTransformer {
        var config = VisionTransformerConfig.demo
        config.numClasses = numClasses
        let model = VisionTransformer(config: config, using: &rng)
        let report = model.load(stateDict: backbone.filter { !VisionTransformer.isHeadParameter($0.key) })
        guard report.unexpected.isEmpty, report.shapeMismatches.isEmpty, report.missing.allSatisfy(VisionTransformer.isHeadParameter) else {
            throw ValidationError("the demo backbone does not fit \(modelName):\n\(report)")
        }
        return model
    }

    static func trainingConfig(plan: DemoPlan, epochs: Int, method: TuningMethod) -> TrainingConfig {
        var config = TrainingConfig()
        config.model = modelName; config.method = method.rawValue
        config.epochs = epochs; config.cooldownEpochs = 0; config.warmupEpochs = 1
        config.batchSize = plan.batchSize; config.lr = DemoPlan.learningRate(method); config.warmupLR = 1e-6; config.minLR = 1e-6
        config.weightDecay = method.components == [.full] ? 0.05 : 1e-4
        config.directResize = true; config.smoothing = 0.1; config.workers = 2; config.seed = 42
        return config
    }

    /// Parameters of the model without its head.
    static func backboneParameterCount(_ model: VisionTransformer) -> Int {
        model.namedParameters().filter { !$0.1.isBuffer && !model.isHeadParameter($0.0) }.reduce(0) { $0 + $1.1.count }
    }

    struct Obtained {
        var state: [String: Tensor]
        var origin: String
        var parameterCount: Int
    }

    /// The cached backbone of `plan`, or a freshly pretrained one (then cached).
    static func obtain(plan: DemoPlan, spec: ModelSpec, runDirectory: URL, noCache: Bool) throws -> Obtained {
        // The name records everything pretraining depends on, so a changed plan never reuses another's backbone.
        let file = cacheDirectory.appendingPathComponent("\(modelName)-\(plan.name)-\(plan.pretrainImages)x\(plan.pretrainEpochs)-v\(ProceduralShapesDataset.version).safetensors")
        if !noCache, FileManager.default.fileExists(atPath: file.path) {
            do {
                let loaded = try SafeTensors.load(file)
                var rng = RandomGenerator(seed: 0)
                let model = try build(numClasses: 8, backbone: loaded.tensors, using: &rng)
                let accuracy = loaded.metadata["source_top1"] ?? "?"
                return Obtained(state: loaded.tensors, origin: "pretrained backbone from the cache: \(file.path) (source-task top-1 \(accuracy)%; --no-cache pretrains again)",
                                parameterCount: backboneParameterCount(model))
            } catch {
                printError("note: the cached demo backbone \(file.path) is unusable (\(error)); pretraining again")
            }
        }
        let source = ProceduralTask.source
        let data = TrainingData(train: ProceduralShapesDataset(task: source, count: plan.pretrainImages, seed: 1),
                                eval: ProceduralShapesDataset(task: source, count: max(plan.pretrainImages / 10, 256), seed: 2), evalSplit: "test")
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: .demo, using: &rng)
        var config = trainingConfig(plan: plan, epochs: plan.pretrainEpochs, method: .full)
        config.lr = 1e-3; config.data = "procedural:source"
        let trainer = try Trainer(config: config, model: model, modelName: modelName, data: data, preprocess: spec.preprocess,
                                  directory: runDirectory, writesDelta: false)
        print("pretraining on the source task: \(source.shapes.count) shapes (\(source.shapes.map(\.rawValue).joined(separator: ", "))), "
              + "\(plan.pretrainImages) images, \(plan.pretrainEpochs) epochs (once; the backbone is cached for later runs)")
        fflush(stdout)
        trainer.onEvent = PretrainingProgress(epochs: config.totalEpochs).show
        guard try trainer.run() == .finished else { throw ValidationError("pretraining stopped early") }
        let summary = try DemoRow.summary(runDirectory)
        let top1 = summary.finalTop1 ?? 0, seconds = summary.trainSeconds ?? 0
        print(String(format: "  pretrained: source-task top-1 %.1f%% in %.0f s", top1, seconds))
        let state = model.stateDict()
        try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        try SafeTensors.save(state, metadata: ["format": "ssf-demo-backbone/1", "model": modelName, "plan": plan.name,
                                               "source_top1": String(format: "%.2f", top1)], to: file)
        return Obtained(state: state, origin: "pretrained backbone cached in \(file.path)",
                        parameterCount: backboneParameterCount(model))
    }
}

/// One method's line of the demo table.
struct DemoRow {
    var method: String
    var top1: Double
    var trainable: Int
    var seconds: Double
    var imagesPerSecond: Double

    /// The finished run's summary.json, read by the report's reader.
    static func summary(_ directory: URL) throws -> RunSummary {
        guard let summary = try RunRecord(directory: directory).summary else {
            throw ValidationError("\(directory.path): the run wrote no summary.json")
        }
        return summary
    }

    static func table(_ rows: [DemoRow], backboneParameters: Int) -> String {
        var lines = ["method     final top-1   trainable   of backbone   train time   train img/s",
                     "---------  -----------  ----------  ------------  -----------  ------------"]
        for r in rows {
            lines.append(r.method.padding(toLength: 9, withPad: " ", startingAt: 0)
                         + String(format: "  %11.1f  %10d  %12@  %10.1fs  %12.0f", r.top1, r.trainable,
                                  percent(r.trainable, of: backboneParameters) as NSString, r.seconds, r.imagesPerSecond))
        }
        return lines.joined(separator: "\n")
    }
}

private func percent(_ part: Int, of whole: Int) -> String {
    String(format: "%.2f%%", 100 * Double(part) / Double(max(whole, 1)))
}

/// Pretraining's progress: a line at every tenth of the whole schedule with the images/s and the time left.
final class PretrainingProgress {
    let epochs: Int
    private let start = Date()
    private var shown = 0

    init(epochs: Int) { self.epochs = epochs }

    func show(_ event: TrainingEvent) {
        guard case let .batch(epoch, batch, batches, loss, rate, _) = event else { return }
        let done = Double(epoch * batches + batch), total = Double(epochs * batches)
        let tenth = Int(10 * done / total)
        guard tenth > shown, tenth < 10 else { return }
        shown = tenth
        let elapsed = Date().timeIntervalSince(start)
        let left = Int((elapsed / done * (total - done)).rounded())
        print(String(format: "  %3d%%  epoch %d/%d, batch %d/%d  loss %.3f  %.0f img/s  about %d min %02d s left",
                     tenth * 10, epoch + 1, epochs, batch, batches, loss, rate, left / 60, left % 60))
        fflush(stdout)
    }
}
