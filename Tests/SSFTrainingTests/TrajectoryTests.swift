// End-to-end training parity with PyTorch: from identical initial values and identical batches,
// 30 updates of the recipe (AdamW with weight decay on rank ≥ 2, cosine schedule with warmup per
// update, label smoothing, gradient accumulation, clipping, EMA) for every method on a small ViT and
// on EfficientNet-Lite0 (batch norm in training mode for full fine-tuning). The reference is
// tools/gen_trajectory_fixtures.py (torch 2.5.1 / timm 1.0.11, float64); its docstring defines the
// deterministic fill rule reimplemented here, so no weights are stored.
import Foundation
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning
import XCTest

/// The fixture's deterministic values: FNV-1a 64 of the name, SplitMix64 of each element index.
enum TrajectoryFill {
    static func fnv1a64(_ name: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    static func splitMix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `Float32(offset + scale·(2u − 1))` per element.
    static func values(_ name: String, count: Int, offset: Double, scale: Double) -> [Float] {
        let h0 = fnv1a64(name)
        return (0..<count).map { j in
            let u = Double(splitMix64(h0 ^ (UInt64(j) &* 0x9E37_79B9_7F4A_7C15)) >> 40) / 16_777_216
            return Float(offset + scale * (2 * u - 1))
        }
    }

    /// (offset, scale) of a state-dictionary tensor, the first matching rule winning.
    static func rule(_ name: String, shape: [Int], gain: Double) -> (Double, Double) {
        if name.hasSuffix("running_var") { return (1, 0.2) }
        if name.hasSuffix("running_mean") { return (0, 0.1) }
        if name.contains("ssf_scale") { return (1, 0.2) }
        if name.contains("ssf_shift") { return (0, 0.2) }
        if shape.count == 1 && name.hasSuffix(".weight") { return (1, 0.2) }
        if shape.count <= 1 { return (0, 0.1) }
        if ["cls_token", "pos_embed", "prompt.embeddings"].contains(name) { return (0, 0.5) }
        let fanIn = shape.reduce(1, *) / shape[0]
        return (0, (3 * gain / Double(fanIn)).squareRoot())
    }

    static func tensor(_ name: String, shape: [Int], gain: Double) -> Tensor {
        let (offset, scale) = rule(name, shape: shape, gain: gain)
        return Tensor(shape: shape, values(name, count: shape.reduce(1, *), offset: offset, scale: scale))
    }

    /// Micro-batch `k`: `[B, 3, H, W]` images and the labels `(7k + 3n) mod C`.
    static func batch(_ k: Int, shape: [Int], classes: Int) -> (Tensor, [Int]) {
        (Tensor(shape: shape, values("input.\(k)", count: shape.reduce(1, *), offset: 0, scale: 1.5)),
         (0..<shape[0]).map { (7 * k + 3 * $0) % classes })
    }
}

final class TrajectoryTests: XCTestCase {
    private struct Schedule: Decodable { let t_initial: Int; let lr_min: Double; let warmup_t: Int; let warmup_lr_init: Double }
    private struct Recipe: Decodable {
        let lr: Double; let eps: Double; let weight_decay: Double; let label_smoothing: Double; let clip_grad: Double
        let ema_decay: Double; let grad_accum: Int; let schedule: Schedule
    }
    private struct ModelInfo: Decodable { let input: [Int]; let num_classes: Int; let methods: [String]; let recipe: Recipe? }
    /// How closely PyTorch's own float32 run follows the float64 reference (the generator measures it).
    private struct Probe: Decodable {
        let leadingWithin1e4: Int
        /// How far PyTorch's own float32 run of the trajectory ends from the float64 reference.
        let tensorMaxAbs: Double?
        enum CodingKeys: String, CodingKey {
            case leadingWithin1e4 = "leading_micro_batches_within_1e-4"
            case tensorMaxAbs = "tensor_max_abs"
        }
    }
    private struct MethodInfo: Decodable { let gradient_free: [String: [Int]]?; let float32_probe: Probe? }
    private struct Sampling: Decodable { let count: Int }
    private struct Meta: Decodable {
        let models: [String: ModelInfo]; let sampling: Sampling; let recipe: Recipe; let methods: [String: [String: MethodInfo]]
    }

    private static let file: SafeTensorsFile? = {
        guard let url = Bundle.module.url(forResource: "trajectories", withExtension: "safetensors", subdirectory: "Fixtures") else { return nil }
        return try? SafeTensors.load(url)
    }()

    private func fixture() throws -> (SafeTensorsFile, Meta) {
        let file = try XCTUnwrap(Self.file, "Fixtures/trajectories.safetensors is missing or unreadable")
        let meta = try JSONDecoder().decode(Meta.self, from: Data(try XCTUnwrap(file.metadata["fixture"]).utf8))
        return (file, meta)
    }

    private func build(_ model: String, method: String) throws -> (ImageClassifier, Double) {
        var rng = RandomGenerator(seed: 0)
        let built: ImageClassifier, gain: Double
        switch model {
        case "vit":
            built = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 4, numClasses: 5, embedDim: 24, depth: 2,
                                                                      numHeads: 3, mlpRatio: 2), using: &rng)
            gain = 1
        default:
            built = EfficientNet(config: .tfLite0(numClasses: 5), using: &rng)
            gain = 2
        }
        var options = TuningOptions()
        options.adapterDim = 4; options.prompts = 3; options.loraRank = 3; options.loraAlpha = 6
        options.loraTargets = ["qkv", "proj", "fc1", "fc2"]
        let tuning = TuningMethod(try XCTUnwrap(TuningMethod(rawValue: method)).components, options: options)
        tuning.apply(to: built, using: &rng)
        for (name, p) in built.namedParameters() where !name.hasSuffix("num_batches_tracked") {
            p.value = TrajectoryFill.tensor(name, shape: p.value.shape, gain: gain)
        }
        return (built, gain)
    }

    func testFillRuleMatchesTheGenerator() throws {
        let (file, _) = try fixture()
        let checks = file.tensors.filter { $0.key.hasPrefix("rule.check.") }
        XCTAssertFalse(checks.isEmpty)
        let shapes = ["input.0": [4, 3, 16, 16]]
        for (key, expected) in checks {
            let name = String(key.dropFirst("rule.check.".count))
            var found: Tensor?
            for (model, method) in [("vit", "ssf"), ("vit", "lora"), ("vit", "vpt-deep"), ("lite0", "ssf")] where found == nil {
                let (m, gain) = try build(model, method: method)
                if let p = m.namedParameters().first(where: { $0.0 == name })?.1 {
                    found = TrajectoryFill.tensor(name, shape: p.value.shape, gain: gain)
                }
            }
            if found == nil, let shape = shapes[name] {
                found = Tensor(shape: shape, TrajectoryFill.values(name, count: shape.reduce(1, *), offset: 0, scale: 1.5))
            }
            let values = try XCTUnwrap(found, "no tensor named \(name)").scalars
            XCTAssertEqual(Array(values.prefix(expected.count)), expected.scalars, name)
        }
    }

    /// max |a − b| over max(max |b|, 1): relative for large tensors, absolute for small ones.
    private func error(_ a: [Float], _ b: [Float]) -> Double {
        let scale = max(1, b.map { Double(abs($0)) }.max() ?? 0)
        return zip(a, b).map { Double(abs($0 - $1)) }.max().map { $0 / scale } ?? 0
    }

    private func replay(_ model: String) throws {
        let (file, meta) = try fixture()
        let info = try XCTUnwrap(meta.models[model])
        for method in info.methods {
            let prefix = "\(model).\(method)."
            func stored(_ key: String) throws -> Tensor { try XCTUnwrap(file.tensors[prefix + key], prefix + key) }
            let (net, _) = try build(model, method: method)
            let recipe = info.recipe ?? meta.recipe
            var config = TrainingConfig()
            config.method = method; config.lr = recipe.lr; config.optEps = recipe.eps; config.weightDecay = recipe.weight_decay
            config.epochs = recipe.schedule.t_initial; config.warmupEpochs = recipe.schedule.warmup_t
            config.warmupLR = recipe.schedule.warmup_lr_init; config.minLR = recipe.schedule.lr_min
            config.smoothing = recipe.label_smoothing; config.clipGrad = recipe.clip_grad; config.emaDecay = recipe.ema_decay
            config.gradAccum = recipe.grad_accum
            // Elements whose loss gradient is exactly zero (a constant added to every key): float32 rounding noise,
            // normalised by Adam, moves them at random; the generator lists them and they are not compared.
            let gradientFree = meta.methods[model]?[method]?.gradient_free ?? [:]
            // A trajectory that float32 cannot follow to the end (full fine-tuning with batch norm in training
            // mode: PyTorch's float32 run parts from its float64 one after a few micro-batches) is compared where
            // float32 can: the leading micro-batches and the running statistics after the first update.
            let probe = meta.methods[model]?[method]?.float32_probe
            let micro = try stored("losses").count
            let followable = probe.map { $0.leadingWithin1e4 } ?? micro
            let wholeRun = followable >= micro
            let (first, _) = TrajectoryFill.batch(0, shape: info.input, classes: info.num_classes)
            net.setTraining(false)
            XCTAssertLessThan(error(net(first).scalars, try stored("logits0").scalars), 1e-4, prefix + "logits0")
            net.setTraining(true)
            net.setBatchNormMode(config.batchNormMode)
            let step = try TrainingStep(model: net, config: config, updatesPerEpoch: 1)
            let losses = try stored("losses").scalars, rates = try stored("lr").scalars
            var worstLoss = 0.0
            for u in 0..<rates.count {
                for k in [2 * u, 2 * u + 1] {
                    let (images, labels) = TrajectoryFill.batch(k, shape: info.input, classes: info.num_classes)
                    let loss = step.accumulate(images: images, labels: labels, groupSize: recipe.grad_accum)
                    if k < followable { worstLoss = max(worstLoss, abs(loss - Double(losses[k])) / abs(Double(losses[k]))) }
                }
                try step.update(index: u)
                if u == 0 {
                    for (path, bn) in net.batchNorms {
                        for (name, value) in [("running_mean", bn.runningMean.value), ("running_var", bn.runningVar.value)] {
                            guard let expected = file.tensors["\(prefix)step1.\(path).\(name)"] else { continue }
                            XCTAssertLessThan(error(value.scalars, expected.scalars), 1e-4, "\(prefix)step1.\(path).\(name)")
                        }
                    }
                }
                XCTAssertEqual(Double(step.optimizer.learningRate), Double(rates[u]), accuracy: 1e-9 + 1e-6 * Double(rates[u]), "\(prefix)lr[\(u)]")
            }
            // EfficientNet-Lite0's trajectories (ReLU6 kinks, Adam normalising tiny gradients) carry the
            // summation order of the BLAS kernels through 30 updates: lite0.ssf ends 2.5e-6 (losses) and
            // 1.1e-5 (tensors) from PyTorch on OpenBLAS's SSE3 kernels and 1.5e-4 on its Haswell (AVX2)
            // kernels, whose single products are as accurate (≈3e-7 of Σ|ab| either way). Those runs are
            // held to 3e-4; the ViT's to 1e-4.
            let orderBound = model == "lite0" ? 3e-4 : 1e-4
            XCTAssertLessThan(worstLoss, orderBound, prefix + "losses")
            XCTAssertGreaterThanOrEqual(followable, 2, prefix + ": not even the first update can be compared")
            guard wholeRun else {
                print(String(format: "trajectory %@.%@: worst loss error %.2e over the %d leading micro-batches float32 can follow (of %d); running statistics after the first update compared",
                             model, method, worstLoss, followable, micro))
                continue
            }
            // Final trainable tensors (whole, or a strided sample plus sum and sum of squares), the EMA, running statistics,
            // within 1e-4, or where PyTorch's own float32 run ends farther than that from the float64 reference,
            // within four times its distance. lite0.bias is such a run: ReLU6 kinks at 1×1 maps and Adam's sign
            // flips amplify summation-order noise, so float32 implementations end 1.6e-4 (PyTorch) and 9e-5 to 5.4e-4
            // (this engine, depending on its kernels' summation order) from float64 while their losses stay
            // within 5e-5 — the losses keep the 1e-4 bound.
            let tolerance = max(orderBound, 4 * (probe?.tensorMaxAbs ?? 0))
            var worstTensor = 0.0
            let sample = meta.sampling.count
            func compare(_ all: [Float], _ key: String, sums sumKey: String?, name: String? = nil) throws {
                var values = all, expected = try stored(key).scalars
                if let name, let slice = gradientFree[name], slice.count == 2, values.count == expected.count {
                    values.removeSubrange(slice[0]..<slice[1]); expected.removeSubrange(slice[0]..<slice[1])
                }
                if values.count == expected.count {
                    worstTensor = max(worstTensor, error(values, expected))
                    XCTAssertLessThan(error(values, expected), tolerance, prefix + key)
                } else {
                    XCTAssertEqual(expected.count, sample, prefix + key)
                    let picked = (0..<sample).map { values[$0 * values.count / sample] }
                    worstTensor = max(worstTensor, error(picked, expected))
                    XCTAssertLessThan(error(picked, expected), tolerance, prefix + key)
                }
                if let sumKey, let sums = file.tensors[prefix + sumKey]?.scalars { compareSums(values, sums, prefix + sumKey) }
            }
            /// [sum, sum of squares] of `values` against the reference's.
            func compareSums(_ values: [Float], _ sums: [Float], _ label: String) {
                let s = values.reduce(0.0) { $0 + Double($1) }, q = values.reduce(0.0) { $0 + Double($1) * Double($1) }
                XCTAssertLessThan(abs(s - Double(sums[0])) / max(1, abs(Double(sums[0]))), tolerance, label + " sum")
                XCTAssertLessThan(abs(q - Double(sums[1])) / max(1, Double(sums[1])), tolerance, label + " sum of squares")
            }
            let emaValues = step.ema?.values ?? []
            for (i, (name, p)) in step.trainable.enumerated() {
                try compare(p.value.scalars, "final." + name, sums: "sum." + name, name: name)
                if file.tensors[prefix + "ema." + name] != nil {
                    try compare(emaValues[i].scalars, "ema." + name, sums: nil, name: name)
                } else if let sums = file.tensors[prefix + "ema_sum." + name]?.scalars {
                    compareSums(emaValues[i].scalars, sums, prefix + "ema_sum." + name)
                } else {
                    XCTFail("\(prefix): no EMA reference for \(name)")
                }
            }
            if method == "full" && model.hasPrefix("lite0") {
                for (path, bn) in net.batchNorms {
                    try compare(bn.runningMean.value.scalars, "final.\(path).running_mean", sums: nil)
                    try compare(bn.runningVar.value.scalars, "final.\(path).running_var", sums: nil)
                }
            }
            XCTAssertEqual(Set(step.trainable.map(\.0)), Set(file.tensors.keys.filter { $0.hasPrefix(prefix + "final.") && !$0.hasSuffix("running_mean") && !$0.hasSuffix("running_var") }
                .map { String($0.dropFirst((prefix + "final.").count)) }), prefix + "trainable set")
            print(String(format: "trajectory %@%@: worst loss error %.2e, worst tensor error %.2e (allowed %.1e) over %d updates", model, "." + method, worstLoss, worstTensor, tolerance, rates.count))
        }
    }

    func testViTTrajectoriesMatchPyTorch() throws { try replay("vit") }
    func testEfficientNetTrajectoriesMatchPyTorch() throws { try replay("lite0") }
    func testEfficientNetFullFineTuningWithBatchStatisticsMatchesPyTorch() throws { try replay("lite0_bn") }
}
