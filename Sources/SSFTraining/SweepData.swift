// The images of a sweep: what the trials train and validate on (a stratified holdout of the training
// split, the dataset's own validation split, or VTAB-1k's train800/val200), what the final run trains
// on (the trials' training and validation images together) and the test split it is measured on once.
import Foundation
import SSFData

/// Where a sweep's trials are validated.
public enum SweepValidation: Equatable, Sendable {
    /// VTAB-1k: train800 and val200; otherwise the dataset's `val` split when it has one, else a 20 % holdout.
    case automatic
    /// A seeded, stratified holdout of this fraction of the training split.
    case holdout(fraction: Double)
    /// The dataset's split of this name.
    case split(String)

    /// The holdout fraction when none is given.
    public static let defaultFraction = 0.2
}

/// Which splits a sweep used and how many images each had; recorded in `sweep.json`.
public struct SweepSplits: Codable, Equatable, Sendable {
    /// The split the trials train on (for a holdout: what is left of it).
    public var trialTrainSplit: String
    /// `holdout` (carved from the training split) or the dataset's split name (`val`, `val200`).
    public var validationSplit: String
    /// What the final run trains on: the training split (a holdout's source), `train800val200`, or `train+val`.
    public var finalTrainSplit: String
    /// The split the final run is measured on (nil when the sweep has no final run).
    public var testSplit: String?
    /// The holdout's fraction and seed (nil for a dataset split).
    public var holdoutFraction: Double?
    public var holdoutSeed: UInt64?
    public var trialTrainImages: Int
    public var validationImages: Int
    public var finalTrainImages: Int
    public var testImages: Int?

    enum CodingKeys: String, CodingKey {
        case trialTrainSplit = "trial_train_split", validationSplit = "validation_split", finalTrainSplit = "final_train_split"
        case testSplit = "test_split", holdoutFraction = "holdout_fraction", holdoutSeed = "holdout_seed"
        case trialTrainImages = "trial_train_images", validationImages = "validation_images", finalTrainImages = "final_train_images"
        case testImages = "test_images"
    }
}

/// The datasets of a sweep.
public struct SweepData {
    public let trialTrain: any ImageDataset
    public let validation: any ImageDataset
    public let finalTrain: any ImageDataset
    public let test: (any ImageDataset)?
    public let splits: SweepSplits

    /// The holdout's name as an evaluation split.
    public static let holdoutName = "holdout"

    /// Datasets already chosen; `splits` is filled in from them.
    public init(trialTrain: any ImageDataset, validation: any ImageDataset, finalTrain: any ImageDataset, test: (any ImageDataset)?,
                names: (trialTrain: String, validation: String, finalTrain: String, test: String?), holdout: (fraction: Double, seed: UInt64)? = nil) {
        self.trialTrain = trialTrain; self.validation = validation; self.finalTrain = finalTrain; self.test = test
        splits = SweepSplits(trialTrainSplit: names.trialTrain, validationSplit: names.validation, finalTrainSplit: names.finalTrain,
                             testSplit: test == nil ? nil : names.test, holdoutFraction: holdout?.fraction, holdoutSeed: holdout?.seed,
                             trialTrainImages: trialTrain.count, validationImages: validation.count, finalTrainImages: finalTrain.count,
                             testImages: test?.count)
    }

    /// A stratified holdout (`StratifiedSplit`) of `train`; the final run trains on all of `train`.
    public static func holdout(train: any ImageDataset, trainSplit: String, fraction: Double, seed: UInt64,
                               test: (any ImageDataset)?, testSplit: String = "test") throws -> SweepData {
        guard fraction > 0, fraction < 1 else { throw ConfigError("the validation fraction must be between 0 and 1, not \(fraction)") }
        let labels = try (0..<train.count).map { try train.label(at: $0) }
        let parts = StratifiedSplit.split(labels: labels, fraction: fraction, seed: seed)
        guard !parts.validation.isEmpty else {
            throw ConfigError("the \(trainSplit) split (\(train.count) images) has no class with two images: a holdout cannot be carved from it")
        }
        return SweepData(trialTrain: SubsetDataset(train, indices: parts.train), validation: SubsetDataset(train, indices: parts.validation),
                         finalTrain: train, test: test, names: (trainSplit, holdoutName, trainSplit, testSplit), holdout: (fraction, seed))
    }

    /// Opens the splits of `config.data`. VTAB-1k (unless a holdout is asked for): the trials train on
    /// train800 and validate on val200 (or the split named), the final run trains on train800val200.
    /// Otherwise the trials train on `config.train_split` and validate on the named split, the dataset's
    /// `val` when it has one, or a holdout of the training split seeded by `config.seed`. `train_limit`
    /// applies to the training split and `eval_limit` to the validation and test splits, as in `ssf train`.
    /// The test split is opened only when `withTest`.
    public static func open(config: TrainingConfig, validation: SweepValidation, withTest: Bool) throws -> SweepData {
        let spec = try DatasetSpec(parsing: config.data)
        if let split = spec.split {
            throw ConfigError("\(config.data): a sweep opens its own splits; name the dataset without ':\(split)'")
        }
        func limited(_ dataset: any ImageDataset, _ limit: Int?) -> any ImageDataset {
            limit.map { SubsetDataset(dataset, limit: $0) } ?? dataset
        }
        let test = withTest ? limited(try spec.open(split: "test"), config.evalLimit) : nil
        var named: String?, opened: (any ImageDataset)?
        switch validation {
        case let .holdout(fraction):
            return try holdout(train: limited(try spec.open(split: config.trainSplit), config.trainLimit), trainSplit: config.trainSplit,
                               fraction: fraction, seed: config.seed, test: test)
        case let .split(name):
            named = name
        case .automatic where spec.format != .vtab:
            guard let val = try? spec.open(split: "val") else {
                return try holdout(train: limited(try spec.open(split: config.trainSplit), config.trainLimit), trainSplit: config.trainSplit,
                                   fraction: SweepValidation.defaultFraction, seed: config.seed, test: test)
            }
            opened = val
        case .automatic:
            break
        }
        let vtab = spec.format == .vtab
        let trainName = vtab ? "train800" : config.trainSplit
        let validationName = named ?? (vtab ? "val200" : "val")
        guard validationName != trainName else { throw ConfigError("the validation split \(validationName) is the training split") }
        let train = limited(try spec.open(split: trainName), config.trainLimit)
        let held = limited(try opened ?? spec.open(split: validationName), config.evalLimit)
        if vtab, ["val", "val200"].contains(validationName), config.trainLimit == nil, config.evalLimit == nil {
            return SweepData(trialTrain: train, validation: held, finalTrain: try spec.open(split: "train800val200"), test: test,
                             names: (trainName, validationName, "train800val200", "test"))
        }
        let joined = "\(trainName)+\(validationName)"
        return SweepData(trialTrain: train, validation: held, finalTrain: try ConcatenatedDataset(train, held, names: (trainName, validationName)),
                         test: test, names: (trainName, validationName, joined, "test"))
    }

    /// The trials' data: evaluated on the validation images.
    public var trialData: TrainingData { TrainingData(train: trialTrain, eval: validation, evalSplit: splits.validationSplit) }

    /// The final run's data: evaluated on the test split (nil without one).
    public var finalData: TrainingData? {
        test.map { TrainingData(train: finalTrain, eval: $0, evalSplit: splits.testSplit ?? "test") }
    }
}
