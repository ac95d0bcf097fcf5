// `ssf analyze similarity`: how close each tuning method's features are to a reference run's (usually
// full fine-tuning), layer by layer, by minibatch CKA on the same images.
import ArgumentParser
import Foundation
import SSFAnalysis
import SSFData
import SSFFormats
import SSFModels
import SSFReport
import SSFTraining

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Analyses of trained runs.",
        subcommands: [SimilarityCommand.self])
}

struct SimilarityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similarity",
        abstract: "Layer-by-layer feature similarity (CKA) of runs against a reference run.",
        discussion: """
        Each run (a training run directory: its model, base weights, method and best.safetensors) and the \
        reference run see the same evaluation images in the same order, preprocessed as the reference was \
        evaluated (its image size and resize). At every block output (flattened per image) and at the \
        pre-logit features, minibatch CKA compares a run with the reference: per minibatch of --batch-size \
        images, Gram matrices in Float64 and the unbiased HSIC estimator; the estimates are averaged over \
        minibatches before the ratio. 1 means the representations agree up to a rotation and a scale.

        Prints a table (runs × layers); --json prints one JSON object instead; --output DIR writes \
        similarity.json and similarity.html (table, heat map and curves).
        """)

    @Option(parsing: .upToNextOption, help: "Run directories to compare.") var runs: [String] = []
    @Option(help: "The reference run directory (e.g. full fine-tuning).") var reference: String
    @Option(name: .customLong("model"), help: "Check that every run is this model.") var model: String?
    @Option(help: "Base weights for every run (default: each run's own).") var weights: String?
    @Option(name: .customLong("data"), help: "Dataset as FORMAT:PATH[:split] (default: the reference run's).") var dataFlag: String?
    @Option(help: "Split (default: the reference run's evaluation split).") var split: String?
    @Option(help: "Images to compare on (an even stride through the split; rounded down to whole minibatches).") var images = 512
    @Option(name: .customLong("batch-size"), help: "Images per CKA minibatch (at least 4).") var batchSize = 64
    @Option(help: "Kernel: linear or rbf.") var kernel = "linear"
    @Option(name: .customLong("rbf-sigma"), help: "RBF width as a fraction of the minibatch's median distance.") var rbfSigma = 0.8
    @Option(parsing: .upToNextOption, help: "Names for the runs in the table (default: each run's method).") var labels: [String] = []
    @Option(help: "Loader worker threads.") var workers = 2
    @Option(help: "Directory for similarity.json and similarity.html.") var output: String?
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run with --runs") }
        guard batchSize >= 4 else { throw ValidationError("--batch-size must be at least 4 (the unbiased estimator needs 4 images), got \(batchSize)") }
        guard images >= batchSize else { throw ValidationError("--images (\(images)) must be at least --batch-size (\(batchSize))") }
        guard kernel == "linear" || kernel == "rbf" else { throw ValidationError("--kernel must be linear or rbf, not \(kernel)") }
        guard rbfSigma > 0 else { throw ValidationError("--rbf-sigma must be positive") }
        guard labels.isEmpty || labels.count == runs.count else { throw ValidationError("--labels gives \(labels.count) names for \(runs.count) runs") }
    }

    private struct Run {
        let directory: String
        let label: String
        let config: TrainingConfig
        let top1: Double?
    }

    /// The run directory's configuration (the error says when it is not a run).
    private func describe(_ directory: String) throws -> TrainingConfig {
        try ModelOptions.parse(["--run", directory]).runConfig()!
    }

    func run() throws {
        threadOptions.apply()
        let ckaKernel: CKAKernel = kernel == "rbf" ? .rbf(sigmaFraction: rbfSigma) : .linear
        let referenceConfig = try describe(reference)
        var compared: [Run] = []
        var seen: [String: Int] = [:]
        for (index, directory) in runs.enumerated() {
            let config = try describe(directory)
            var label = labels.isEmpty ? config.method : labels[index]
            seen[label, default: 0] += 1
            if seen[label]! > 1 { label += " #\(seen[label]!)" }
            compared.append(Run(directory: directory, label: label, config: config, top1: try? RunSummary.read(inRunDirectory: URL(fileURLWithPath: directory))?.bestTop1))
        }
        for run in compared + [Run(directory: reference, label: "reference", config: referenceConfig, top1: nil)] {
            if let model, run.config.model != model { throw ValidationError("\(run.directory) trained \(run.config.model), not --model \(model)") }
            guard run.config.model == referenceConfig.model else {
                throw ValidationError("\(run.directory) trained \(run.config.model) and the reference \(referenceConfig.model): CKA compares one architecture's layers")
            }
            guard run.config.imageSize == referenceConfig.imageSize, run.config.directResize == referenceConfig.directResize else {
                throw ValidationError("\(run.directory) was evaluated at another image size or resize than the reference \(reference)")
            }
        }

        let data = dataFlag ?? referenceConfig.data
        guard !data.isEmpty else { throw ValidationError("--data is required (the reference run names no dataset)") }
        let spec = try DatasetSpec(parsing: data)
        let chosen = split ?? referenceConfig.evalSplit ?? ((try? spec.open(split: "val")) != nil ? "val" : "test")
        var dataset: any ImageDataset = try spec.open(split: chosen)
        let count = min(images, dataset.count) / batchSize * batchSize
        guard count >= batchSize else { throw ValidationError("\(data) (\(chosen)) has \(dataset.count) images, fewer than one minibatch of \(batchSize)") }
        dataset = SubsetDataset(dataset, limit: count)

        func grams(_ directory: String, label: String) throws -> (LayerGrams, String) {
            var arguments = ["--run", directory]
            if let weights { arguments += ["--weights", weights] }
            let loaded = try ModelOptions.parse(arguments).load()
            var config = referenceConfig
            config.batchSize = batchSize; config.workers = workers
            let loader = TrainingData.evalLoader(dataset, config: config, preprocess: loaded.spec.preprocess)
            let start = Date()
            let result = try LayerGrams(model: loaded.model, loader: loader, kernel: ckaKernel) { done in
                // About four progress lines per model.
                let every = max(batchSize, (count / 4) / batchSize * batchSize)
                if !json, done % every == 0 || done == count { printError(String(format: "  %@: %d/%d images", label, done, count)) }
            }
            return (result, String(format: "%.1f s", Date().timeIntervalSince(start)))
        }

        let (referenceGrams, referenceTime) = try grams(reference, label: "reference")
        if !json { printError("reference \(reference): \(referenceGrams.layerCount) layers in \(referenceTime)") }
        var results: [[Double?]] = []
        for run in compared {
            let (runGrams, time) = try grams(run.directory, label: run.label)
            do { results.append(try runGrams.cka(with: referenceGrams)) } catch let error as SimilarityError {
                throw ValidationError("\(run.directory) against \(reference): \(error.description)")
            }
            if !json { printError("\(run.label) (\(run.directory)): \(time)") }
        }

        let layers = referenceGrams.layerNames
        let referenceTop1 = try? RunSummary.read(inRunDirectory: URL(fileURLWithPath: reference))?.bestTop1
        let referenceLabel = referenceConfig.method
        let dataText = "\(data) (\(chosen)): \(count) images"
        func number(_ v: Double?) -> JSONValue { v.map { JSONValue($0, decimals: 6) } ?? .null }
        let record: JSONValue = [
            "model": JSONValue(referenceConfig.model), "data": JSONValue(data), "split": JSONValue(chosen), "images": JSONValue(count),
            "batch_size": JSONValue(batchSize), "kernel": JSONValue(ckaKernel.description),
            "reference": ["run": JSONValue(reference), "method": JSONValue(referenceLabel), "top1": number(referenceTop1)],
            "layers": .array(layers.map { JSONValue($0) }),
            "runs": .array(zip(compared, results).map { run, values in
                ["label": JSONValue(run.label), "run": JSONValue(run.directory), "method": JSONValue(run.config.method), "top1": number(run.top1),
                 "cka": .array(values.map(number))]
            }),
        ]
        if let output {
            let directory = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data((record.serialized + "\n").utf8).write(to: directory.appendingPathComponent("similarity.json"), options: .atomic)
            let content = SimilarityPageContent(
                title: "Feature similarity to \(referenceLabel)", model: referenceConfig.model, reference: referenceLabel, referenceTop1: referenceTop1,
                data: dataText, batchSize: batchSize, kernel: ckaKernel.description, layers: layers,
                methods: zip(compared, results).map { SimilarityPageContent.Method(label: $0.label, values: $1, top1: $0.top1) })
            try SimilarityReport.write(content, to: directory.appendingPathComponent("similarity.html"))
            let figures = SimilarityReport.figures(content)
            try Data(figures.heatmap.utf8).write(to: directory.appendingPathComponent("similarity-heatmap.svg"), options: .atomic)
            try Data(figures.layers.utf8).write(to: directory.appendingPathComponent("similarity-layers.svg"), options: .atomic)
            if !json { printError("wrote similarity.json, similarity.html, similarity-heatmap.svg and similarity-layers.svg in \(directory.path)") }
        }
        if json { print(record.serialized); return }
        print("CKA (\(ckaKernel.description)) with \(referenceLabel) (\(reference)) on \(dataText), \(referenceConfig.model)")
        let width = max(10, compared.map(\.label.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print(pad("layer", 12) + compared.map { " " + pad($0.label, width) }.joined())
        for (l, name) in layers.enumerated() {
            print(pad(name, 12) + results.map { " " + pad($0[l].map { String(format: "%.4f", $0) } ?? "—", width) }.joined())
        }
        let means = results.map { values -> String in
            let defined = values.compactMap { $0 }
            return defined.isEmpty ? "—" : String(format: "%.4f", defined.reduce(0, +) / Double(defined.count))
        }
        print(pad("mean", 12) + means.map { " " + pad($0, width) }.joined())
        print(pad("top-1", 12) + compared.map { " " + pad($0.top1.map { String(format: "%.2f", $0) } ?? "—", width) }.joined())
    }
}
