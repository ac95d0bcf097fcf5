// The datasets, transforms and loaders of a training run, built from its configuration.
import Foundation
import SSFData
import SSFEngine
import SSFModels

/// Some samples of a dataset, in the order of `indices`.
public struct SubsetDataset: ImageDataset {
    public let base: any ImageDataset
    public let indices: [Int]

    /// The first `limit` samples taken at an even stride (so sorted class folders stay balanced).
    public init(_ base: any ImageDataset, limit: Int) {
        let n = min(limit, base.count)
        self.init(base, indices: (0..<n).map { $0 * base.count / n })
    }

    /// The samples at `indices` (each in `0..<base.count`).
    public init(_ base: any ImageDataset, indices: [Int]) {
        precondition(indices.allSatisfy { $0 >= 0 && $0 < base.count }, "SubsetDataset: an index is out of range")
        self.base = base; self.indices = indices
    }

    public var count: Int { indices.count }
    public var classNames: [String] { base.classNames }
    public func sample(at index: Int) throws -> (image: RGBImage, label: Int) { try base.sample(at: indices[index]) }
    public func sample(at index: Int, minimumSide: Int) throws -> (image: RGBImage, label: Int) {
        try base.sample(at: indices[index], minimumSide: minimumSide)
    }
    public func identity(at index: Int) -> String { base.identity(at: indices[index]) }
    public func label(at index: Int) throws -> Int { try base.label(at: indices[index]) }
}

/// Two datasets of the same classes one after the other (a training split and its validation split).
public struct ConcatenatedDataset: ImageDataset {
    public let first: any ImageDataset
    public let second: any ImageDataset

    /// Throws unless both have the same class names in the same order.
    public init(_ first: any ImageDataset, _ second: any ImageDataset, names: (String, String)) throws {
        guard first.classNames == second.classNames else {
            throw ConfigError("\(names.0) and \(names.1) have different classes (\(first.classNames.count) and \(second.classNames.count)); they cannot be joined")
        }
        self.first = first; self.second = second
    }

    public var count: Int { first.count + second.count }
    public var classNames: [String] { first.classNames }
    public func sample(at index: Int) throws -> (image: RGBImage, label: Int) {
        index < first.count ? try first.sample(at: index) : try second.sample(at: index - first.count)
    }
    public func sample(at index: Int, minimumSide: Int) throws -> (image: RGBImage, label: Int) {
        index < first.count ? try first.sample(at: index, minimumSide: minimumSide) : try second.sample(at: index - first.count, minimumSide: minimumSide)
    }
    public func identity(at index: Int) -> String {
        index < first.count ? first.identity(at: index) : second.identity(at: index - first.count)
    }
    public func label(at index: Int) throws -> Int {
        index < first.count ? try first.label(at: index) : try second.label(at: index - first.count)
    }
}

/// The training and evaluation data of a run.
public struct TrainingData {
    public let train: any ImageDataset
    public let eval: any ImageDataset
    /// The split the best checkpoint is selected on (`val`, or `test` when the dataset has no validation split).
    public let evalSplit: String

    public init(train: any ImageDataset, eval: any ImageDataset, evalSplit: String) {
        self.train = train; self.eval = eval; self.evalSplit = evalSplit
    }

    /// Opens the configured dataset's training split and its evaluation split (`val` when it has one, else `test`).
    public init(config: TrainingConfig) throws {
        let spec = try DatasetSpec(parsing: config.data)
        var train = try spec.open(split: config.trainSplit)
        var eval: any ImageDataset, split: String
        if let requested = config.evalSplit {
            eval = try spec.open(split: requested); split = requested
        } else if let val = try? spec.open(split: "val") {
            eval = val; split = "val"
        } else {
            eval = try spec.open(split: "test"); split = "test"
        }
        if let limit = config.trainLimit { train = SubsetDataset(train, limit: limit) }
        if let limit = config.evalLimit { eval = SubsetDataset(eval, limit: limit) }
        self.init(train: train, eval: eval, evalSplit: split)
    }

    /// The shuffled, augmented training loader (the last partial batch dropped, as timm does).
    public func trainLoader(config: TrainingConfig, preprocess: PreprocessConfig) throws -> DataLoader {
        let size = config.imageSize ?? preprocess.inputSize
        let filter: ResampleFilter = preprocess.interpolation == .bicubic ? .bicubic : .bilinear
        let transform: any SampleTransform
        if config.augment != "full" {
            transform = FixedGeometryTransform(size: size, filter: config.directResize ? .bicubic : filter, directResize: config.directResize,
                                               flipProbability: config.augment == "flip" ? config.hflip : 0, mean: preprocess.mean, std: preprocess.std)
        } else if config.directResize {
            transform = DirectResizeTransform(size: size, filter: .bicubic, mean: preprocess.mean, std: preprocess.std)
        } else {
            let fill = preprocess.mean.map { UInt8(($0 * 255).rounded()) }
            transform = TrainTransform(
                crop: RandomResizedCrop(size: size, scale: config.scaleMin...1, filter: filter), flipProbability: config.hflip,
                randAugment: try config.aa.map { try RandAugment(config: $0, fill: fill) },
                mean: preprocess.mean, std: preprocess.std,
                erasing: config.reprob > 0 ? RandomErasing(probability: config.reprob) : nil)
        }
        let classes = train.classNames.count
        let mixup = config.mixup > 0 || config.cutmix > 0
            ? Mixup(mixupAlpha: config.mixup, cutmixAlpha: config.cutmix, probability: config.mixupProb,
                    switchProbability: config.mixupSwitchProb, labelSmoothing: Float(config.smoothing), classCount: classes)
            : nil
        var loader = DataLoader(dataset: train, batchSize: config.batchSize, shuffle: true, dropLast: train.count >= config.batchSize,
                                transform: transform, mixup: mixup, workers: config.workers, seed: config.seed,
                                badImages: BadImagePolicy(rawValue: config.badImages) ?? .fail)
        loader.reducedDecoding = config.fastDecode
        return loader
    }

    /// The evaluation loader (timm's resize + center crop, or VTAB's direct resize).
    public func evalLoader(config: TrainingConfig, preprocess: PreprocessConfig, corruption: CorruptionSpec? = nil) -> DataLoader {
        TrainingData.evalLoader(eval, config: config, preprocess: preprocess, corruption: corruption)
    }

    /// An evaluation loader over `dataset`; with `corruption`, each image is corrupted after the
    /// evaluation geometry and before normalisation (its random field from the loader's per-sample
    /// generator, so the result follows `config.seed`).
    public static func evalLoader(_ dataset: any ImageDataset, config: TrainingConfig, preprocess: PreprocessConfig,
                                  corruption: CorruptionSpec? = nil) -> DataLoader {
        let size = config.imageSize ?? preprocess.inputSize
        let filter: ResampleFilter = preprocess.interpolation == .bicubic ? .bicubic : .bilinear
        let eval = EvalTransform(imageSize: size, cropFraction: preprocess.cropFraction, filter: filter, mean: preprocess.mean, std: preprocess.std)
        let transform: any SampleTransform
        if let corruption {
            transform = CorruptionTransform(geometry: config.directResize ? .directResize(size: size, filter: .bicubic) : .resizeAndCrop(eval),
                                            corruption: corruption, mean: preprocess.mean, std: preprocess.std)
        } else {
            transform = config.directResize ? DirectResizeTransform(size: size, filter: .bicubic, mean: preprocess.mean, std: preprocess.std) : eval
        }
        var loader = DataLoader(dataset: dataset, batchSize: config.batchSize, shuffle: false, transform: transform,
                                workers: config.workers, seed: config.seed, badImages: BadImagePolicy(rawValue: config.badImages) ?? .fail)
        loader.reducedDecoding = config.fastDecode
        return loader
    }
}
