// `ssf bench data`: how fast the loader decodes and transforms images, without a model, so the data
// pipeline's ceiling is known next to the model's step rate.
import ArgumentParser
import Dispatch
import Foundation
import SSFData
import SSFEngine
import SSFFormats
import SSFModels
import SSFTraining

struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Images/s of the loader: decoding alone, with the evaluation transform, and with the training transform.",
        discussion: """
        Runs the training loader's code path (its worker threads, batches of --batch-size) over --images \
        images of the split: decode (read and decode each file, no transform), eval (decode, resize and \
        center crop as timm evaluates, normalise), train (decode, random-resized crop, flip, normalise; \
        --aa adds RandAugment), and eval and train with reduced decoding (--fast-decode: JPEG files \
        decoded at the smallest DCT scale that keeps the transform's detail). The modes alternate for \
        --rounds rounds; each figure is the median. The input size is --image-size, else the model's \
        (--model), else 224.
        """)

    @Option(name: .customLong("data"), help: "Dataset as FORMAT:PATH[:split].") var data: String
    @Option(help: "Split (default train).") var split = "train"
    @Option(help: "Images per pass (an even stride through the split).") var images = 512
    @Option(name: .customLong("model"), help: "Take the input size and interpolation from this model.") var model: String?
    @Option(name: .customLong("image-size"), help: "Input size.") var imageSize: Int?
    @Option(name: .customLong("batch-size"), help: "Images per batch.") var batchSize = 64
    @Option(help: "Loader worker threads.") var workers = 2
    @Option(help: "RandAugment config for the train mode, e.g. rand-m9-mstd0.5-inc1.") var aa: String?
    @Option(help: "Alternating rounds.") var rounds = 3
    @Flag(help: "Print one JSON object.") var json = false

    /// Decodes and drops the pixels: the loader with no transform work.
    private struct DecodeOnly: SampleTransform {
        func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor { Tensor(shape: [1], [Float(image.width)]) }
    }

    func run() throws {
        let spec = try DatasetSpec(parsing: data)
        var dataset: any ImageDataset = try spec.open(split: split)
        dataset = SubsetDataset(dataset, limit: images)
        var preprocess = PreprocessConfig(inputSize: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], cropFraction: 0.875, interpolation: .bicubic)
        if let model { preprocess = try ModelRegistry.spec(model).preprocess }
        if let imageSize { preprocess.inputSize = imageSize }
        var config = TrainingConfig()
        config.data = data; config.batchSize = batchSize; config.workers = workers; config.aa = aa; config.imageSize = preprocess.inputSize
        let training = TrainingData(train: dataset, eval: dataset, evalSplit: split)
        var train = try training.trainLoader(config: config, preprocess: preprocess)
        train.dropLast = false
        let eval = training.evalLoader(config: config, preprocess: preprocess)
        let decode = DataLoader(dataset: dataset, batchSize: batchSize, shuffle: false, transform: DecodeOnly(), workers: workers, seed: 0)
        var fastEval = eval, fastTrain = train
        fastEval.reducedDecoding = true; fastTrain.reducedDecoding = true
        let modes: [(name: String, loader: DataLoader)] = [("decode", decode), ("eval", eval), ("train", train),
                                                           ("eval, reduced decoding", fastEval), ("train, reduced decoding", fastTrain)]

        func pass(_ loader: DataLoader) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            let epoch = loader.epoch(0)
            var count = 0
            while let batch = try epoch.next() { count += batch.labels.count }
            return Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        _ = try pass(decode)   // warm the page cache
        var rates = [[Double]](repeating: [], count: modes.count)
        for _ in 0..<max(rounds, 1) {
            for (i, mode) in modes.enumerated() { rates[i].append(try pass(mode.loader)) }
        }
        let medians = rates.map { r in r.sorted()[r.count / 2] }
        let cpu = cpuModelName()
        if json {
            var members = [JSONMember("data", JSONValue(data)), JSONMember("split", JSONValue(split)), JSONMember("images", JSONValue(dataset.count)),
                           JSONMember("image_size", JSONValue(preprocess.inputSize)), JSONMember("workers", JSONValue(workers)),
                           JSONMember("cpu", JSONValue(cpu))]
            for (mode, rate) in zip(modes, medians) {
                let key = mode.name.replacingOccurrences(of: ", reduced decoding", with: "_reduced")
                members.append(JSONMember("\(key)_img_per_s", JSONValue(rate, decimals: 1)))
            }
            print(JSONValue.orderedObject(members).serialized)
        } else {
            print("\(data) (\(split), \(dataset.count) images) to \(preprocess.inputSize) px, \(workers) worker thread(s), \(cpu); median of \(max(rounds, 1)) alternating rounds:")
            for (mode, rate) in zip(modes, medians) { print("  " + mode.name.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "%9.1f img/s", rate)) }
        }
    }
}
