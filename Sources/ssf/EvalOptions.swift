// The data and loader options `ssf eval` and `ssf robustness` share, and what they set up from
// them: the dataset split, the model with any checkpoint over it, the preprocessing and the class subset.
import ArgumentParser
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning

struct EvalDataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Dataset as FORMAT:PATH[:split] (with --run: default the run's).") var dataFlag: String?
    @Option(help: "Split to evaluate (default: val when present, else test).") var split: String?
    @Option(help: "Tensors to load over the weights (a run's best/last checkpoint or a delta file).") var checkpoint: String?
    @Option(name: .customLong("batch-size"), help: "Images per batch.") var batchSize = 64
    @Option(name: .customLong("image-size"), help: "Input resolution (default: the run's, else the model's).") var imageSize: Int?
    @Flag(name: .customLong("direct-resize"), help: "VTAB preprocessing: a direct bicubic resize instead of resize + center crop (default: the run's).") var directResize = false
    @Option(help: "Evaluate on this many samples (an even stride through the split).") var limit: Int?
    @Option(help: "Loader worker threads.") var workers = 2
    @Option(name: .customLong("class-subset"),
            help: "File of head class indices, one per dataset class in its class order (e.g. ImageNet-R's 200 of 1000): the model keeps its head and only those logits are scored.")
    var classSubset: String?
}

/// A model and dataset split ready to evaluate.
struct PreparedEvaluation {
    let loaded: LoadedModel
    let modelName: String
    let data: String
    let split: String
    let dataset: any ImageDataset
    let config: TrainingConfig
    let preprocess: PreprocessConfig
    let classSubset: ClassSubset?

    /// The evaluation loader, with `corruption` applied after the geometry when given.
    func loader(corruption: CorruptionSpec? = nil) -> DataLoader {
        TrainingData.evalLoader(dataset, config: config, preprocess: preprocess, corruption: corruption)
    }

    /// Evaluates once with `corruption` (nil: clean).
    func evaluate(corruption: CorruptionSpec? = nil, shard: Shard? = nil) throws -> EvaluationResult {
        var loader = loader(corruption: corruption)
        if let shard { loader.shard = shard }
        return try SSFTraining.evaluate(loaded.model, loader: loader, classSubset: classSubset)
    }

    /// Opens the split, loads the model (the head sized for the dataset's classes unless a class
    /// subset keeps the checkpoint's) and the checkpoint over it, and reads the class subset.
    static func prepare(model modelOptions: ModelOptions, data options: EvalDataOptions, seed: UInt64?) throws -> PreparedEvaluation {
        let run = try modelOptions.runConfig()
        guard let data = options.dataFlag ?? run?.data else { throw ValidationError("--data is required (or --run RUN_DIR)") }
        // A run is evaluated at the resolution and with the resize it trained with, unless the flags say otherwise.
        var config = TrainingConfig()
        config.data = data; config.evalSplit = options.split; config.batchSize = options.batchSize
        config.imageSize = options.imageSize ?? run?.imageSize
        config.directResize = options.directResize || (run?.directResize ?? false); config.workers = options.workers
        if let seed { config.seed = seed }
        let spec = try DatasetSpec(parsing: data)
        let chosen = options.split ?? ((try? spec.open(split: "val")) != nil ? "val" : "test")
        var dataset = try spec.open(split: chosen)
        if let limit = options.limit { dataset = SubsetDataset(dataset, limit: limit) }
        var modelOptions = modelOptions
        if modelOptions.numClasses == nil && options.classSubset == nil { modelOptions.numClasses = dataset.classNames.count }
        let loaded = try modelOptions.load()
        if let checkpoint = options.checkpoint {
            let file = try SafeTensors.load(URL(fileURLWithPath: checkpoint))
            var tensors = file.tensors
            if file.metadata["format"] == DeltaFile.formatTag {
                // A delta checks that it was made on these base weights.
                tensors = try DeltaFile(contentsOf: URL(fileURLWithPath: checkpoint)).ssfState(onBase: loaded.model.stateDict(), model: modelOptions.model)
            }
            let report = loaded.model.load(stateDict: tensors, ignoring: [])
            guard report.shapeMismatches.isEmpty, report.unexpected.isEmpty else {
                throw ValidationError("\(checkpoint) does not fit \(modelOptions.model) with --method \(modelOptions.method.rawValue): \(report.unexpected.prefix(4) + report.shapeMismatches.prefix(4).map(\.name))")
            }
        }
        var subset: ClassSubset?
        if let path = options.classSubset {
            do {
                subset = try ClassSubset(contentsOf: URL(fileURLWithPath: path), datasetClasses: dataset.classNames.count, headClasses: loaded.model.numClasses)
            } catch let error as EvaluationError {
                throw ValidationError("--class-subset \(error.description)")
            }
        }
        var preprocess = loaded.spec.preprocess
        if let imageSize = config.imageSize { preprocess.inputSize = imageSize }
        if let problem = loaded.model.inputSizeProblem(preprocess.inputSize) {
            throw ValidationError("--image-size \(preprocess.inputSize) does not fit \(modelOptions.model): \(problem)")
        }
        return PreparedEvaluation(loaded: loaded, modelName: modelOptions.model, data: data, split: chosen, dataset: dataset,
                                  config: config, preprocess: preprocess, classSubset: subset)
    }
}

extension CorruptionSpec {
    /// `NAME:SEVERITY` from a command-line flag; the error lists the names and the severities.
    init(flag: String, value: String) throws {
        do { try self.init(parsing: value) } catch let error as CorruptionError { throw ValidationError("\(flag): \(error.description)") }
    }
}
