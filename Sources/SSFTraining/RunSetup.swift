// What a training run is built from besides its data: the tuning method a configuration names, and
// the registered model with the method's parameters, a head for the task and the pretrained weights.
// `ssf train` and `ssf sweep` both build their models here.
import Foundation
import SSFEngine
import SSFModels
import SSFTuning

/// A model ready for a `Trainer`: built, tuned for a method and loaded.
public struct RunModel {
    public let model: ImageClassifier
    /// The method whose parameters the model carries and trains.
    public let method: TuningMethod
    /// The model's preprocessing with the configuration's `image_size` applied.
    public let preprocess: PreprocessConfig

    public init(model: ImageClassifier, method: TuningMethod, preprocess: PreprocessConfig) {
        self.model = model; self.method = method; self.preprocess = preprocess
    }

    /// Whether the run writes `task.delta.safetensors`: the method trains SSF vectors and the head only.
    public var writesDelta: Bool { method.components == [.ssf] }
}

/// What building a model has to tell the user.
public enum RunSetupMessage: Equatable {
    /// What happened while loading (head re-initialised, keys converted, …).
    case note(String)
    /// Something to know before a long run (no weights: a random initialisation).
    case warning(String)
}

/// Builds the method and the model of a run from its configuration.
public enum RunSetup {
    /// The method `config.method` names (`ssf`, `ssf+lora`, …) with the hyperparameters it stores.
    public static func method(_ config: TrainingConfig) throws -> TuningMethod {
        let options = config.tuningOptions
        guard let named = TuningMethod(rawValue: config.method) else {
            throw ConfigError("unknown method '\(config.method)' (choose from \(TuningMethod.allCases.map(\.rawValue).joined(separator: ", ")), or components joined by +)")
        }
        return TuningMethod(named.components, options: options)
    }

    /// Builds `config.model` with `method`'s parameters and a head for `classes`, and loads `config.weights`.
    ///
    /// The head is seeded with `config.seed` and the method's parameters with `config.seed + 1`. A checkpoint
    /// must provide every tensor of the model except those the method adds. `report` hears the loading notes
    /// before that check, so they are there when it fails.
    public static func model(config: TrainingConfig, method: TuningMethod, classes: Int,
                             report: (RunSetupMessage) -> Void = { _ in }) throws -> RunModel {
        let loaded = try method.load(model: config.model, weights: config.weights.map { URL(fileURLWithPath: $0) },
                                     numClasses: classes, seed: config.seed, headInit: config.headInitRule) { report(.note($0)) }
        if config.weights == nil { report(.warning("no --weights: training from a random initialisation")) }
        var preprocess = loaded.spec.preprocess
        if let size = config.imageSize { preprocess.inputSize = size }
        if let problem = loaded.model.inputSizeProblem(preprocess.inputSize) {
            throw ConfigError("image_size \(preprocess.inputSize) does not fit \(config.model): \(problem)")
        }
        return RunModel(model: loaded.model, method: method, preprocess: preprocess)
    }
}
