// Hyperparameter sweeps: grid parsing and order, the stratified holdout, successive halving's schedule
// and survivors, selection on validation alone, the splits a dataset gives, and tiny end-to-end sweeps
// of a small ViT (sweep.json, the final run, resume of finished and stopped runs, halving rungs).
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning
import XCTest

final class SweepTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    // MARK: Grid

    func testGridOrderNamesAndValueParsing() throws {
        let grid = try SweepGrid(parsing: ["lr=1e-3,3e-3", "weight_decay=0.05,5e-5", "aa=rand-m9-mstd0.5-inc1,null", "nesterov=false", "epochs=4"])
        XCTAssertEqual(grid.axes.map(\.key), ["lr", "weight_decay", "aa", "nesterov", "epochs"])
        XCTAssertEqual(grid.axes[0].values, [.number(1e-3), .number(3e-3)])
        XCTAssertEqual(grid.axes[2].values, [.string("rand-m9-mstd0.5-inc1"), .null])
        XCTAssertEqual(grid.axes[3].values, [.bool(false)])
        XCTAssertEqual(grid.axes[4].values, [.integer(4)])
        XCTAssertEqual(SweepValue(parsing: "inf"), .string("inf"))
        XCTAssertEqual(SweepValue(parsing: "0x10"), .string("0x10"))

        let trials = grid.trials
        XCTAssertEqual(trials.count, 8)
        XCTAssertEqual(trials.map(\.index), Array(0..<8))
        // The first axis varies slowest, the last fastest.
        XCTAssertEqual(trials.map { $0.settings[0].value }, [.number(1e-3), .number(1e-3), .number(1e-3), .number(1e-3),
                                                               .number(3e-3), .number(3e-3), .number(3e-3), .number(3e-3)])
        XCTAssertEqual(trials.map { $0.settings[2].value }, [.string("rand-m9-mstd0.5-inc1"), .null, .string("rand-m9-mstd0.5-inc1"), .null,
                                                               .string("rand-m9-mstd0.5-inc1"), .null, .string("rand-m9-mstd0.5-inc1"), .null])
        XCTAssertEqual(trials[1].name, "001-lr=0.001,weight_decay=0.05,aa=null,nesterov=false,epochs=4")
        XCTAssertEqual(trials[2].label, "lr=0.001 weight_decay=5e-05 aa=rand-m9-mstd0.5-inc1 nesterov=false epochs=4")
        XCTAssertEqual(try SweepGrid(parsing: ["aa=a/b c"]).trials[0].name, "000-aa=a_b_c")

        var base = TrainingConfig()
        base.aa = "rand-m9"
        let configs = try grid.configurations(base: base)
        XCTAssertEqual(configs[1].lr, 1e-3)
        XCTAssertNil(configs[1].aa)
        XCTAssertEqual(configs[2].weightDecay, 5e-5)
        XCTAssertEqual(configs[2].aa, "rand-m9-mstd0.5-inc1")
        XCTAssertEqual(configs[7].lr, 3e-3)
        XCTAssertFalse(configs[0].nesterov)
        XCTAssertEqual(configs[0].epochs, 4)

        // The record's encoding reads back equal.
        let data = try JSONEncoder().encode(grid.axes)
        XCTAssertEqual(try JSONDecoder().decode([SweepAxis].self, from: data), grid.axes)
    }

    func testGridErrorsNameTheProblem() {
        func message(_ arguments: [String]) -> String {
            do { _ = try SweepGrid(parsing: arguments); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(["learning_rate=1e-3"]).contains("unknown configuration key 'learning_rate'"), message(["learning_rate=1e-3"]))
        XCTAssertTrue(message(["learning_rate=1e-3"]).contains("weight_decay"), "the known keys are listed")
        XCTAssertTrue(message(["data=a,b"]).contains("cannot vary"))
        XCTAssertTrue(message(["lr"]).contains("expected KEY=V1,V2"))
        XCTAssertTrue(message(["lr=1e-3,,1e-2"]).contains("an empty value"))
        XCTAssertTrue(message(["lr=1e-3,0.001"]).contains("given twice"))
        XCTAssertTrue(message(["lr=1e-3", "lr=1e-2"]).contains("given twice"))
        XCTAssertTrue(message([]).contains("at least one --grid"))
        XCTAssertThrowsError(try SweepGrid(parsing: ["epochs=2,two"]).configurations(base: TrainingConfig())) { error in
            XCTAssertTrue("\(error)".contains("trial epochs=two"), "\(error)")
            XCTAssertTrue("\(error)".contains("'epochs'"), "\(error)")
        }
        XCTAssertThrowsError(try SweepGrid(parsing: ["lr=1e-3,-1"]).configurations(base: TrainingConfig())) { error in
            XCTAssertTrue("\(error)".contains("trial lr=-1"), "\(error)")
        }
    }

    // MARK: Stratified holdout

    func testStratifiedSplitKeepsClassProportionsAndIsSeeded() {
        // Classes of 10, 5, 2 and 1 samples, interleaved.
        var labels: [Int] = []
        for (label, count) in [(0, 10), (1, 5), (2, 2), (3, 1)] { labels += Array(repeating: label, count: count) }
        var rng = RandomGenerator(seed: 5)
        for i in stride(from: labels.count - 1, to: 0, by: -1) { labels.swapAt(i, Int(rng.next(upperBound: UInt64(i + 1)))) }

        let split = StratifiedSplit.split(labels: labels, fraction: 0.2, seed: 42)
        XCTAssertTrue(Set(split.train).isDisjoint(with: split.validation))
        XCTAssertEqual((split.train + split.validation).sorted(), Array(labels.indices), "every sample in exactly one part")
        XCTAssertEqual(split.train, split.train.sorted())
        func count(_ part: [Int], _ label: Int) -> Int { part.filter { labels[$0] == label }.count }
        // round(0.2 n), at least one of a class with two or more, none of a class of one.
        XCTAssertEqual([0, 1, 2, 3].map { count(split.validation, $0) }, [2, 1, 1, 0])
        XCTAssertEqual([0, 1, 2, 3].map { count(split.train, $0) }, [8, 4, 1, 1])

        let again = StratifiedSplit.split(labels: labels, fraction: 0.2, seed: 42)
        XCTAssertEqual(again.validation, split.validation, "the same seed gives the same split")
        let seeds = (0..<8).map { StratifiedSplit.split(labels: labels, fraction: 0.2, seed: $0).validation }
        XCTAssertGreaterThan(Set(seeds).count, 1, "other seeds give other splits")

        XCTAssertEqual(StratifiedSplit.validationCount(classSize: 2, fraction: 0.9), 1, "a class keeps a training sample")
        XCTAssertEqual(StratifiedSplit.validationCount(classSize: 100, fraction: 0.25), 25)
    }

    // MARK: Successive halving and selection

    func testHalvingScheduleAndSurvivors() throws {
        var full = TrainingConfig()
        full.epochs = 10; full.warmupEpochs = 2; full.cooldownEpochs = 1
        let two = try SuccessiveHalving(eta: 3, rungs: 2)
        XCTAssertEqual(two.divisor(rung: 0), 3)
        let rung0 = two.config(full, rung: 0)
        XCTAssertEqual([rung0.epochs, rung0.warmupEpochs, rung0.cooldownEpochs], [4, 0, 0])
        XCTAssertEqual(two.config(full, rung: 1), full, "the last rung trains the full schedule")
        let three = try SuccessiveHalving(eta: 3, rungs: 3)
        XCTAssertEqual((0..<3).map { three.config(full, rung: $0).epochs }, [2, 4, 10])
        XCTAssertEqual((0..<3).map { three.config(full, rung: $0).warmupEpochs }, [0, 0, 2])
        XCTAssertEqual([1, 2, 3, 4, 6, 7, 9].map(three.survivorCount), [1, 1, 1, 2, 2, 3, 3])
        XCTAssertThrowsError(try SuccessiveHalving(eta: 1, rungs: 2))
        XCTAssertThrowsError(try SuccessiveHalving(eta: 3, rungs: 0))

        // Six trials at rung 0: keep ⌈6/3⌉ = 2, by top-1 (the tie at 80 goes to the lower lr); a failed run never survives.
        let scores = [SweepScore(trial: 0, lr: 1e-3, top1: 70), SweepScore(trial: 1, lr: 3e-3, top1: 80), SweepScore(trial: 2, lr: 1e-2, top1: nil),
                      SweepScore(trial: 3, lr: 1e-3, top1: 80), SweepScore(trial: 4, lr: 3e-2, top1: 75), SweepScore(trial: 5, lr: 1e-4, top1: 60)]
        XCTAssertEqual(SweepSelection.survivors(scores, count: two.survivorCount(scores.count)), [1, 3])
        XCTAssertEqual(SweepSelection.ranked(scores).map(\.trial), [3, 1, 4, 0, 5])
        XCTAssertEqual(SweepSelection.best(scores), 3)
        // Equal top-1 and lr: the earlier trial.
        XCTAssertEqual(SweepSelection.best([SweepScore(trial: 4, lr: 1e-3, top1: 50), SweepScore(trial: 2, lr: 1e-3, top1: 50)]), 2)
        XCTAssertNil(SweepSelection.best([SweepScore(trial: 0, lr: 1e-3, top1: nil)]))
    }

    // MARK: Tiny sweeps

    /// Three colour classes of noisy 16×16 images (labels cycle, so every prefix is balanced).
    private func dataset(count: Int, seed: UInt64, onlyLabel: Int? = nil) -> PixelArrayDataset {
        var rng = RandomGenerator(seed: seed)
        var pixels: [UInt8] = [], labels: [Int] = []
        for i in 0..<count {
            let label = onlyLabel ?? i % 3
            labels.append(label)
            for c in 0..<3 {
                for _ in 0..<256 { pixels.append(UInt8(max(0, min(255, (c == label ? 200 : 60) + Int(rng.nextNormal() * 30))))) }
            }
        }
        return PixelArrayDataset(width: 16, height: 16, channels: 3, pixels: pixels, labels: labels, classNames: ["r", "g", "b"], source: "memory")
    }

    private let preprocess = PreprocessConfig(inputSize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropFraction: 1, interpolation: .bicubic)

    private func base() -> TrainingConfig {
        var c = TrainingConfig()
        c.model = "tiny-vit"; c.data = "memory"; c.method = "ssf"
        c.epochs = 1; c.cooldownEpochs = 0; c.warmupEpochs = 0; c.batchSize = 4; c.smoothing = 0
        c.directResize = true; c.workers = 1
        return c
    }

    /// An SSF-tuned tiny ViT, the same for the same seed; `headBias` overrides the head's bias.
    private func tinyModel(_ config: TrainingConfig, classes: Int, headBias: [Float]? = nil) -> RunModel {
        var rng = RandomGenerator(seed: config.seed)
        let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: classes, embedDim: 16, depth: 1, numHeads: 2),
                                      using: &rng)
        TuningMethod.ssf.apply(to: model, using: &rng)
        if let headBias, let bias = model.trainableParameters.first(where: { $0.0 == "head.bias" })?.1 {
            bias.value = Tensor(shape: [classes], headBias)
        }
        return RunModel(model: model, method: .ssf, preprocess: preprocess)
    }

    private func holdoutData() throws -> SweepData {
        try SweepData.holdout(train: dataset(count: 24, seed: 1), trainSplit: "train", fraction: 0.25, seed: 42, test: dataset(count: 9, seed: 2))
    }

    private func sweep(_ name: String, grid: [String], data: SweepData, halving: SuccessiveHalving? = nil, base: TrainingConfig? = nil) throws -> Sweep {
        try Sweep(directory: scratch.appendingPathComponent(name), base: base ?? self.base(), grid: try SweepGrid(parsing: grid), data: data,
                  halving: halving) { [unowned self] config, classes in self.tinyModel(config, classes: classes) }
    }

    func testTinySweepWritesRecordFinalRunAndReportAndResumeSkipsFinishedRuns() throws {
        let data = try holdoutData()
        XCTAssertEqual(data.splits.validationImages, 6)
        XCTAssertEqual(data.splits.trialTrainImages, 18)
        XCTAssertEqual(data.splits.finalTrainImages, 24)
        let first = try sweep("sweep", grid: ["lr=1e-2,3e-2"], data: data)
        var started: [String] = []
        first.onEvent = { if case let .runStarting(info) = $0 { started.append(info.directory.lastPathComponent) } }
        XCTAssertEqual(try first.run(resume: false), .finished)
        XCTAssertEqual(started, ["000-lr=0.01", "001-lr=0.03", "final"])

        let directory = scratch.appendingPathComponent("sweep")
        let record = try SweepRecord(contentsOf: directory.appendingPathComponent("sweep.json"))
        XCTAssertEqual(record.status, .finished)
        XCTAssertEqual(record.grid, [SweepAxis(key: "lr", values: [.number(1e-2), .number(3e-2)])])
        XCTAssertEqual(record.trials.map(\.name), ["000-lr=0.01", "001-lr=0.03"])
        XCTAssertEqual(record.trials.map(\.status), [.finished, .finished])
        XCTAssertEqual(record.splits.validationSplit, "holdout")
        XCTAssertEqual(record.splits.holdoutFraction, 0.25)
        for trial in record.trials {
            XCTAssertEqual(trial.runs.count, 1)
            XCTAssertEqual(trial.runs[0].epochs, 1)
            XCTAssertNotNil(trial.runs[0].valTop1)
            XCTAssertNotNil(trial.runs[0].trainSeconds)
            XCTAssertEqual(trial.runs[0].directory, "trials/\(trial.name)")
            let summary = try XCTUnwrap(RunRecordReader.summary(directory.appendingPathComponent(trial.runs[0].directory)))
            XCTAssertEqual(summary["selected_on"] as? String, "holdout")
            XCTAssertEqual(summary["eval_images"] as? Int, 6)
            XCTAssertEqual(summary["final_top1"] as? Double, trial.runs[0].valTop1)
        }
        let chosen = try XCTUnwrap(record.chosen)
        let scores = record.trials.map { SweepScore(trial: $0.index, lr: $0.settings["lr"]!.numeric!, top1: $0.valTop1) }
        XCTAssertEqual(chosen.trial, SweepSelection.best(scores))
        XCTAssertEqual(chosen.valTop1, record.trials[chosen.trial].valTop1)

        // The final run: the chosen settings on all 24 training images, evaluated once on the 9 test images.
        let final = try XCTUnwrap(record.final)
        XCTAssertEqual(final.status, .finished)
        XCTAssertEqual(final.trainImages, 24)
        XCTAssertEqual(final.testImages, 9)
        let finalSummary = try XCTUnwrap(RunRecordReader.summary(directory.appendingPathComponent("final")))
        XCTAssertEqual(finalSummary["selected_on"] as? String, "test")
        XCTAssertEqual(finalSummary["train_images"] as? Int, 24)
        XCTAssertEqual(finalSummary["final_top1"] as? Double, final.testTop1)
        let finalConfig = try TrainingConfig.stored(inRunDirectory: directory.appendingPathComponent("final"))
        XCTAssertEqual(finalConfig.lr, record.trials[chosen.trial].settings["lr"]!.numeric)
        XCTAssertFalse(finalConfig.evalEveryEpoch)
        let page = try String(contentsOf: directory.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(page.contains("data-chart=\"val_top1\" data-series=\"2\""), "both trials' curves are drawn")
        XCTAssertEqual(page.components(separatedBy: "class=\"chosen\"").count - 1, 1, "one chosen row")

        // Again without --resume: refused, naming the directory and --resume.
        XCTAssertThrowsError(try sweep("sweep", grid: ["lr=1e-2,3e-2"], data: data).run(resume: false)) { error in
            XCTAssertTrue("\(error)".contains(directory.path) && "\(error)".contains("--resume"), "\(error)")
        }
        // With --resume: nothing is trained again, and the record is the same.
        let again = try sweep("sweep", grid: ["lr=1e-2,3e-2"], data: data)
        var skipped = 0, trained = 0
        again.onEvent = { event in
            if case .runSkipped = event { skipped += 1 }
            if case .runStarting = event { trained += 1 }
        }
        XCTAssertEqual(try again.run(resume: true), .finished)
        XCTAssertEqual([skipped, trained], [3, 0])
        XCTAssertEqual(again.record.trials.map(\.valTop1), record.trials.map(\.valTop1))
        XCTAssertEqual(again.record.final?.testTop1, final.testTop1)
        // A different grid in the same directory is refused.
        XCTAssertThrowsError(try sweep("sweep", grid: ["lr=1e-2,1e-1"], data: data).run(resume: true)) { error in
            XCTAssertTrue("\(error)".contains("the grid"), "\(error)")
        }
    }

    func testStoppedTrialContinuesFromItsCheckpointOnResume() throws {
        let data = try holdoutData()
        XCTAssertEqual(try sweep("whole", grid: ["lr=1e-2,3e-2"], data: data).run(resume: false), .finished)
        let whole = try SweepRecord(contentsOf: scratch.appendingPathComponent("whole/sweep.json"))

        // Stop the second trial after its first update (Ctrl-C), then resume.
        let stopped = try sweep("stopped", grid: ["lr=1e-2,3e-2"], data: data)
        var trial: Int?, stop = false
        stopped.shouldStop = { stop }
        stopped.onEvent = { event in
            if case let .runStarting(info) = event { trial = info.trial }
            if case let .training(.batch(_, batch, _, _, _, _)) = event, trial == 1, batch == 1 { stop = true }
        }
        XCTAssertEqual(try stopped.run(resume: false), .interrupted)
        let record = try SweepRecord(contentsOf: scratch.appendingPathComponent("stopped/sweep.json"))
        XCTAssertEqual(record.status, .interrupted)
        XCTAssertEqual(record.trials.map(\.status), [.pending, .interrupted])
        XCTAssertNil(record.final)
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("stopped/trials/001-lr=0.03/resume.safetensors").path))

        let resumed = try sweep("stopped", grid: ["lr=1e-2,3e-2"], data: data)
        var continued: [Bool] = []
        resumed.onEvent = { if case let .runStarting(info) = $0 { continued.append(info.resuming) } }
        XCTAssertEqual(try resumed.run(resume: true), .finished)
        XCTAssertEqual(continued, [true, false], "the stopped trial continues, then the final run starts")
        XCTAssertEqual(resumed.record.trials.map(\.valTop1), whole.trials.map(\.valTop1), "the resumed sweep matches the uninterrupted one")
        XCTAssertEqual(resumed.record.chosen, whole.chosen)
        XCTAssertEqual(resumed.record.final?.testTop1, whole.final?.testTop1)
    }

    func testSelectionUsesValidationNotTest() throws {
        // Validation images are all class 0, test images all class 1. The models hardly train (lr 1e-9);
        // the smoothing=0 trial's head favours class 0, the smoothing=0.05 trial's class 1.
        let data = SweepData(trialTrain: dataset(count: 12, seed: 1), validation: dataset(count: 6, seed: 2, onlyLabel: 0),
                             finalTrain: dataset(count: 18, seed: 1), test: dataset(count: 6, seed: 3, onlyLabel: 1),
                             names: ("train", "val", "train+val", "test"))
        var config = base()
        config.lr = 1e-9
        let bias = { (c: TrainingConfig) -> [Float] in c.smoothing == 0 ? [40, 0, 0] : [0, 40, 0] }
        let sweep = try Sweep(directory: scratch.appendingPathComponent("selection"), base: config, grid: try SweepGrid(parsing: ["smoothing=0.05,0"]),
                              data: data) { [unowned self] c, classes in self.tinyModel(c, classes: classes, headBias: bias(c)) }
        XCTAssertEqual(try sweep.run(resume: false), .finished)
        // On test, trial 0 (class 1) would win: 100 % against 0 %.
        let testTop1 = try sweep.configurations.map { c -> Double in
            try evaluate(tinyModel(c, classes: 3, headBias: bias(c)).model, loader: TrainingData.evalLoader(data.test!, config: c, preprocess: preprocess)).top1
        }
        XCTAssertEqual(testTop1, [100, 0])
        XCTAssertEqual(sweep.record.trials.map(\.valTop1), [0, 100])
        XCTAssertEqual(sweep.record.chosen?.trial, 1, "chosen on validation")
        XCTAssertEqual(sweep.record.final?.testTop1, 0)
    }

    func testHalvingRunsRungsAndPrunes() throws {
        var config = base()
        config.epochs = 2
        let halving = try SuccessiveHalving(eta: 2, rungs: 2)
        let sweep = try sweep("halving", grid: ["lr=1e-2,3e-2,1e-1"], data: try holdoutData(), halving: halving, base: config)
        XCTAssertEqual(try sweep.run(resume: false), .finished)
        let record = sweep.record
        XCTAssertEqual(record.trials.map { $0.runs.map(\.rung) }.flatMap { $0 }.filter { $0 == 0 }.count, 3, "rung 0 runs every trial")
        XCTAssertEqual(record.trials.filter { $0.status == .pruned }.count, 1, "⌈3/2⌉ = 2 go on")
        XCTAssertEqual(record.trials.filter { $0.status == .finished }.count, 2)
        for trial in record.trials {
            XCTAssertEqual(trial.runs[0].epochs, 1)
            XCTAssertEqual(trial.runs[0].directory, "trials/\(trial.name)/rung-0")
            if trial.status == .finished {
                XCTAssertEqual(trial.runs.map(\.epochs), [1, 2])
                XCTAssertEqual(trial.runs[1].directory, "trials/\(trial.name)/rung-1")
            }
        }
        let rung0 = record.trials.map { SweepScore(trial: $0.index, lr: $0.settings["lr"]!.numeric!, top1: $0.runs[0].valTop1) }
        XCTAssertEqual(record.trials.filter { $0.status == .finished }.map(\.index), SweepSelection.survivors(rung0, count: 2))
        XCTAssertEqual(record.chosen?.rung, 1)
        XCTAssertEqual(record.final?.epochs, 2)
    }

    // MARK: Splits of a dataset on disk

    /// Writes a 4×4 PNG of one colour per image and returns its relative path.
    private func image(_ folder: URL, _ name: String, _ value: UInt8) throws -> String {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: value, count: 48)).pngData().write(to: folder.appendingPathComponent(name))
        return name
    }

    func testSplitsOfVTABAndImageFolders() throws {
        // VTAB-1k: train800 (4), val200 (2), train800val200 (6), test (3).
        let vtab = scratch.appendingPathComponent("vtab/task")
        let images = vtab.appendingPathComponent("images")
        var lines: [String] = []
        for i in 0..<9 { lines.append("images/\(try image(images, "im\(i).png", UInt8(i * 20))) \(i % 2)") }
        func list(_ name: String, _ range: Range<Int>) throws { try Data((lines[range].joined(separator: "\n") + "\n").utf8).write(to: vtab.appendingPathComponent(name)) }
        try list("train800.txt", 0..<4); try list("val200.txt", 4..<6); try list("train800val200.txt", 0..<6); try list("test.txt", 6..<9)
        var config = base()
        config.data = "vtab:\(vtab.path)"
        var data = try SweepData.open(config: config, validation: .automatic, withTest: true)
        XCTAssertEqual([data.splits.trialTrainSplit, data.splits.validationSplit, data.splits.finalTrainSplit, data.splits.testSplit],
                       ["train800", "val200", "train800val200", "test"])
        XCTAssertEqual([data.splits.trialTrainImages, data.splits.validationImages, data.splits.finalTrainImages, data.splits.testImages], [4, 2, 6, 3])
        XCTAssertNil(data.splits.holdoutFraction)
        data = try SweepData.open(config: config, validation: .automatic, withTest: false)
        XCTAssertNil(data.test)
        config.data = "vtab:\(vtab.path):test"
        XCTAssertThrowsError(try SweepData.open(config: config, validation: .automatic, withTest: true)) { error in
            XCTAssertTrue("\(error)".contains("without ':test'"), "\(error)")
        }

        // An ImageFolder without val: a 20 % holdout of train (5 images per class → 1 each).
        let folder = scratch.appendingPathComponent("folder")
        for split in ["train", "test"] {
            for (label, name) in ["a", "b"].enumerated() {
                for i in 0..<(split == "train" ? 5 : 2) {
                    _ = try image(folder.appendingPathComponent("\(split)/\(name)"), "\(i).png", UInt8(label * 100 + i))
                }
            }
        }
        config.data = "imagefolder:\(folder.path)"
        data = try SweepData.open(config: config, validation: .automatic, withTest: true)
        XCTAssertEqual(data.splits.validationSplit, "holdout")
        XCTAssertEqual(data.splits.holdoutFraction, 0.2)
        XCTAssertEqual(data.splits.holdoutSeed, 42)
        XCTAssertEqual([data.splits.trialTrainImages, data.splits.validationImages, data.splits.finalTrainImages, data.splits.testImages], [8, 2, 10, 4])
        XCTAssertEqual(try (0..<2).map { try data.validation.label(at: $0) }.sorted(), [0, 1])

        // With a val folder: validated on it, the final run on train+val; --val-fraction still carves a holdout.
        for (label, name) in ["a", "b"].enumerated() { _ = try image(folder.appendingPathComponent("val/\(name)"), "v.png", UInt8(label * 100 + 50)) }
        data = try SweepData.open(config: config, validation: .automatic, withTest: true)
        XCTAssertEqual([data.splits.validationSplit, data.splits.finalTrainSplit], ["val", "train+val"])
        XCTAssertEqual([data.splits.trialTrainImages, data.splits.validationImages, data.splits.finalTrainImages], [10, 2, 12])
        XCTAssertEqual(data.finalTrain.identity(at: 11), folder.appendingPathComponent("val/b/v.png").path)
        data = try SweepData.open(config: config, validation: .holdout(fraction: 0.4), withTest: true)
        XCTAssertEqual([data.splits.trialTrainImages, data.splits.validationImages], [6, 4])
        XCTAssertThrowsError(try SweepData.open(config: config, validation: .split("train"), withTest: true))
        XCTAssertThrowsError(try SweepData.open(config: config, validation: .holdout(fraction: 1), withTest: true))
    }
}

/// A run directory's summary.json as a dictionary.
enum RunRecordReader {
    static func summary(_ directory: URL) throws -> [String: Any]? {
        try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("summary.json"))) as? [String: Any]
    }
}
