// AdamW and SGD (Nesterov momentum) steps and the cosine-warmup schedule against PyTorch/timm
// values from tools/gen_training_fixtures.py, plus evaluation counts and configuration merging.
import Foundation
import SSFEngine
import SSFNN
import SSFTraining
import XCTest

final class OptimizerTests: XCTestCase {
    private func fixture() throws -> [String: Any] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "training_reference", withExtension: "json", subdirectory: "Fixtures"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    private func floats(_ value: Any?) -> [Float] { (value as? [Double] ?? []).map(Float.init) }

    /// Runs three steps of `optimizer` on the fixture's parameters (3×4 with decay, 4 without) and compares.
    private func check(_ reference: [String: Any], make: ([Parameter]) -> Optimizer) throws {
        let w = Parameter(Tensor(shape: [3, 4], floats(reference["w"]))), b = Parameter(Tensor(shape: [4], floats(reference["b"])))
        let optimizer = make([w, b])
        for pair in try XCTUnwrap(reference["grads"] as? [[[Double]]]) {
            optimizer.update([Tensor(shape: [3, 4], pair[0].map(Float.init)), Tensor(shape: [4], pair[1].map(Float.init))])
        }
        for (got, want) in zip(w.value.scalars + b.value.scalars, floats(reference["w_after"]) + floats(reference["b_after"])) {
            XCTAssertEqual(got, want, accuracy: 2e-6)
        }
        XCTAssertEqual(optimizer.step, 3)
    }

    func testAdamWMatchesPyTorch() throws {
        let reference = try XCTUnwrap(try fixture()["adamw"] as? [String: Any])
        try check(reference) { AdamW($0, learningRate: Float(reference["lr"] as! Double), weightDecay: 0.05) }
    }

    /// The update runs eight lanes at a time with a scalar tail; every element must come out exactly
    /// as the per-element formula gives it (the lanes use the same operations in the same order).
    func testAdamWLanesMatchTheScalarFormulaExactly() {
        var rng = RandomGenerator(seed: 7)
        let count = 8 * 5 + 3
        let start = Tensor.randomNormal([count], using: &rng), matrixStart = Tensor.randomNormal([3, 13], using: &rng)
        let p = Parameter(start), w = Parameter(matrixStart)
        let (lr, b1, b2, eps, wd): (Float, Float, Float, Float, Float) = (3e-3, 0.9, 0.999, 1e-8, 0.05)
        let optimizer = AdamW([p, w], learningRate: lr, beta1: b1, beta2: b2, eps: eps, weightDecay: wd)
        var want = [start.scalars, matrixStart.scalars]
        var m = want.map { [Float](repeating: 0, count: $0.count) }, v = m
        for step in 1...4 {
            let grads = [Tensor.randomNormal([count], using: &rng), Tensor.randomNormal([3, 13], using: &rng)]
            optimizer.update(grads)
            let c1 = 1 - Float(pow(Double(b1), Double(step))), c2 = 1 - Float(pow(Double(b2), Double(step)))
            for t in 0..<2 {
                let g = grads[t].scalars, decay: Float = t == 1 ? 1 - lr * wd : 1
                for j in g.indices {
                    m[t][j] = b1 * m[t][j] + (1 - b1) * g[j]
                    v[t][j] = b2 * v[t][j] + (1 - b2) * g[j] * g[j]
                    want[t][j] = want[t][j] * decay - lr * (m[t][j] / c1) / ((v[t][j] / c2).squareRoot() + eps)
                }
            }
            XCTAssertEqual(p.value.scalars, want[0], "step \(step), 1-D parameter")
            XCTAssertEqual(w.value.scalars, want[1], "step \(step), matrix")
        }
    }

    func testNesterovSGDMatchesPyTorch() throws {
        let reference = try XCTUnwrap(try fixture()["sgd"] as? [String: Any])
        try check(reference) { SGD($0, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.05) }
    }

    func testCosineWarmupMatchesTimm() throws {
        for s in try XCTUnwrap(try fixture()["schedules"] as? [[String: Any]]) {
            let epochs = s["epochs"] as! Int, warmup = s["warmup"] as! Int, steps = s["steps_per_epoch"] as! Int
            let (base, warmupLR, minLR) = (s["base"] as! Double, s["warmup_lr"] as! Double, s["min_lr"] as! Double)
            let perUpdate = CosineSchedule(baseLR: base, epochs: epochs, warmupEpochs: warmup, updatesPerEpoch: steps, warmupLR: warmupLR, minLR: minLR)
            for (u, want) in (s["per_update"] as! [Double]).enumerated() {
                XCTAssertEqual(perUpdate.learningRate(at: Double(u)), want, accuracy: 1e-12 * base, "update \(u)")
            }
            let perEpoch = CosineSchedule(baseLR: base, tInitial: Double(epochs), warmupT: Double(warmup), warmupLR: warmupLR, minLR: minLR)
            for (e, want) in (s["per_epoch"] as! [Double]).enumerated() {
                XCTAssertEqual(perEpoch.learningRate(at: Double(e)), want, accuracy: 1e-12 * base, "epoch \(e)")
            }
        }
    }

    func testEvaluationCounts() {
        var result = EvaluationResult(classes: 6)
        // Row 0: class 2 is best (correct). Row 1: label 0 ranks 3rd (top-5 hit). Row 2: label 5 ranks last.
        let logits = Tensor(shape: [3, 6], [0, 1, 5, 2, 3, 4,
                                            1, 0, 3, 2, 0, 0,
                                            6, 5, 4, 3, 2, 1])
        result.add(logits: logits, labels: [2, 0, 5])
        XCTAssertEqual(result.top1, 100.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(result.top5, 200.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(result.perClassTop1[2], 100)
        XCTAssertEqual(result.perClassTop1[0], 0)
        XCTAssertNil(result.perClassTop1[1])
        let rowLoss = { (row: [Double], label: Int) in log(row.map(exp).reduce(0, +)) - row[label] }
        let expected = (rowLoss([0, 1, 5, 2, 3, 4], 2) + rowLoss([1, 0, 3, 2, 0, 0], 0) + rowLoss([6, 5, 4, 3, 2, 1], 5)) / 3
        XCTAssertEqual(result.loss, expected, accuracy: 1e-6)
    }

    /// Values out of range are refused with the key's name, whether from a flag or a config file.
    func testOutOfRangeValuesAreRefused() throws {
        let cases: [(String, Any, String)] = [
            ("epochs", 0, "epochs"), ("batch_size", 0, "batch_size"), ("grad_accum", 0, "grad_accum"), ("workers", -1, "workers"),
            ("lr", -1.0, "learning rates"), ("weight_decay", -0.1, "weight decay"), ("ema_decay", 2.0, "ema_decay"),
            ("clip_grad", -1.0, "clip_grad"), ("drop_path", 1.5, "drop_path"), ("smoothing", 1.5, "smoothing"),
            ("mixup", -1.0, "mixup"), ("reprob", 1.5, "reprob"), ("hflip", -0.5, "hflip"), ("scale_min", 0.0, "scale_min"),
            ("momentum", 1.0, "momentum"), ("image_size", 0, "image_size"), ("train_limit", 0, "train_limit"),
            ("warmup_epochs", 5, "warmup_epochs"), ("bn", "sometimes", "bn must be"),
        ]
        for (key, value, phrase) in cases {
            var base: [String: Any] = ["model": "m", "data": "d", "epochs": 3]
            base[key] = value
            let config = try TrainingConfig().merging(base)
            XCTAssertThrowsError(try config.validate(), key) { error in
                XCTAssertTrue("\(error)".contains(phrase), "\(key): \(error)")
            }
        }
        XCTAssertNoThrow(try TrainingConfig().merging(["epochs": 3, "warmup_epochs": 1, "smoothing": 0.0, "mixup": 0.8]).validate())
    }

    /// Found by the config fuzz target: a mapping whose keys are mappings stopped the process
    /// inside the YAML library; it is now a configuration error naming the file and line.
    func testConfigKeysThatAreNotScalarsAreRefused() throws {
        for text in ["? ? :l ? :l ? ", "? [a, b]\n: 1\n", "lr: 0.1\nnested:\n  ? {x: 1}\n  : 2\n"] {
            XCTAssertThrowsError(try TrainingConfig.overrides(yaml: text, path: "bad.yaml"), text) { error in
                XCTAssertTrue("\(error)".hasPrefix("bad.yaml: "), "\(error)")
            }
        }
        XCTAssertEqual(try TrainingConfig.overrides(yaml: "lr: 0.1\n", path: "ok.yaml")["lr"] as? Double, 0.1)
    }

    func testPresetConfigFileAndFlagsMerge() throws {
        let fromFile = try TrainingConfig.overrides(yaml: "lr: 0.5\nepochs: 3\naa: null\n", path: "test.yaml")
        let config = try TrainingConfig.preset("cifar100").merging(fromFile).merging(["epochs": 4])
        XCTAssertEqual(config.lr, 0.5)
        XCTAssertEqual(config.epochs, 4)
        XCTAssertNil(config.aa)
        XCTAssertEqual(config.emaDecay, 0.99992)
        XCTAssertEqual(config.batchSize, 128)
        XCTAssertEqual(try TrainingConfig.preset("fgvc-cars").lr, 2e-2)
        XCTAssertThrowsError(try config.merging(["learning_rate": 1]))
        XCTAssertThrowsError(try TrainingConfig.preset("cifar10"))
        // The saved YAML reads back to the same configuration.
        XCTAssertEqual(try TrainingConfig().merging(try TrainingConfig.overrides(yaml: try config.yaml(), path: "saved")), config)
    }

    /// The method's hyperparameters are part of the stored configuration, so a resumed, evaluated
    /// or merged run rebuilds the same method without repeated flags.
    func testMethodOptionsAreStoredWithTheRun() throws {
        let config = try TrainingConfig().merging(["method": "ssf+lora", "lora_rank": 4, "lora_alpha": 8.0, "lora_targets": "qkv,fc1",
                                                   "adapter_dim": 16, "prompts": 5, "prompt_dropout": 0.1])
        let stored = try TrainingConfig().merging(try TrainingConfig.overrides(yaml: try config.yaml(), path: "config.yaml"))
        let method = try RunSetup.method(stored)
        XCTAssertEqual(method.components, [.ssf, .lora])
        XCTAssertEqual(method.options.loraRank, 4)
        XCTAssertEqual(method.options.loraScaling, 2)
        XCTAssertEqual(method.options.loraTargets, ["qkv", "fc1"])
        XCTAssertEqual(method.options.adapterDim, 16)
        XCTAssertEqual(method.options.prompts, 5)
        XCTAssertEqual(method.options.promptDropout, 0.1, accuracy: 1e-7)
        XCTAssertThrowsError(try TrainingConfig().merging(["lora_rank": 0]).validate())
    }
}
