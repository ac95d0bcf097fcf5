// `ssf eval`: top-1/top-5 accuracy, loss and images/s of a model on a dataset split.
import ArgumentParser
import Foundation
import SSFDistributed
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on a dataset split: top-1, top-5, loss, images/s.",
        discussion: """
        --run RUN_DIR evaluates a training run (its model, base weights, method and best checkpoint) on \
        its data unless --data says otherwise. --checkpoint lays tensors over the loaded model: a run's \
        best.safetensors or last.safetensors, or a task.delta.safetensors. The head is sized for the dataset's classes.
        """)
    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("data"), help: "Dataset as FORMAT:PATH[:split] (with --run: default the run's).") var dataFlag: String?
    @Option(help: "Split to evaluate (default: val when present, else test).") var split: String?
    @Option(help: "Tensors to load over the weights (a run's best/last checkpoint or a delta file).") var checkpoint: String?
    @Option(name: .customLong("batch-size"), help: "Images per batch.") var batchSize = 64
    @Option(name: .customLong("image-size"), help: "Input resolution (default: the model's).") var imageSize: Int?
    @Flag(name: .customLong("direct-resize"), help: "VTAB preprocessing: a direct bicubic resize instead of resize + center crop.") var directResize = false
    @Option(help: "Evaluate on this many samples (an even stride through the split).") var limit: Int?
    @Option(help: "Loader worker threads.") var workers = 2
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        threadOptions.apply()
        // Under `mpirun -np N` each rank evaluates its shard and rank 0 prints the summed counts.
        guard let collective = try MPICollective.fromEnvironment() else { return try evaluate(collective: nil) }
        do { try evaluate(collective: collective) } catch { collective.abort("\(error)") }
        collective.finish()
    }

    private func evaluate(collective: MPICollective?) throws {
        guard let data = try dataFlag ?? modelOptions.runConfig()?.data else { throw ValidationError("--data is required (or --run RUN_DIR)") }
        var config = TrainingConfig()
        config.data = data; config.evalSplit = split; config.batchSize = batchSize; config.imageSize = imageSize
        config.directResize = directResize; config.workers = workers
        let spec = try DatasetSpec(parsing: data)
        let chosen = split ?? ((try? spec.open(split: "val")) != nil ? "val" : "test")
        var dataset = try spec.open(split: chosen)
        if let limit { dataset = SubsetDataset(dataset, limit: limit) }
        var options = modelOptions
        if options.numClasses == nil { options.numClasses = dataset.classNames.count }
        let loaded = try options.load()
        if let checkpoint {
            let file = try SafeTensors.load(URL(fileURLWithPath: checkpoint))
            var tensors = file.tensors
            if file.metadata["format"] == DeltaFile.formatTag {
                // A delta checks that it was made on these base weights.
                tensors = try DeltaFile(contentsOf: URL(fileURLWithPath: checkpoint)).ssfState(onBase: loaded.model.stateDict(), model: options.model)
            }
            let report = loaded.model.load(stateDict: tensors, ignoring: [])
            guard report.shapeMismatches.isEmpty, report.unexpected.isEmpty else {
                throw ValidationError("\(checkpoint) does not fit \(options.model) with --method \(options.method.rawValue): \(report.unexpected.prefix(4) + report.shapeMismatches.prefix(4).map(\.name))")
            }
        }
        var preprocess = loaded.spec.preprocess
        if let imageSize { preprocess.inputSize = imageSize }
        if let problem = loaded.model.inputSizeProblem(preprocess.inputSize) {
            throw ValidationError("--image-size \(preprocess.inputSize) does not fit \(options.model): \(problem)")
        }
        var loader = TrainingData.evalLoader(dataset, config: config, preprocess: preprocess)
        var result: EvaluationResult
        if let collective {
            loader.shard = Shard(rank: collective.rank, worldSize: collective.size)
            result = try SSFTraining.evaluate(loaded.model, loader: loader).summed(over: collective)
            guard collective.rank == 0 else { return }
        } else {
            result = try SSFTraining.evaluate(loaded.model, loader: loader)
        }
        if json {
            let line: JSONValue = [
                "model": JSONValue(options.model), "data": JSONValue(data), "split": JSONValue(chosen), "images": JSONValue(result.images),
                "top1": JSONValue(result.top1, decimals: 4), "top5": JSONValue(result.top5, decimals: 4),
                "loss": JSONValue(result.loss, decimals: 6), "images_per_s": JSONValue(result.imagesPerSecond, decimals: 3),
            ]
            print(line.serialized)
        } else {
            print(String(format: "%@ on %@ (%@, %d images): top-1 %.2f%%  top-5 %.2f%%  loss %.4f  %.1f images/s",
                         options.model, data, chosen, result.images, result.top1, result.top5, result.loss, result.imagesPerSecond))
        }
    }
}
