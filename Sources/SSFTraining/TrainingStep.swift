// One optimisation step of the recipe, apart from the loop around it: forward and backward of a
// batch (gradients summed over an accumulation group), then clipping, the scheduled learning rate,
// the optimiser update and the EMA.
import SSFEngine
import SSFModels
import SSFNN

/// The forward/backward/update of a training run. `Trainer` drives it over the loader's batches; the
/// trajectory tests drive it over fixed batches.
public final class TrainingStep {
    public let model: ImageClassifier
    /// The trainable parameters by name, in model order.
    public let trainable: [(String, Parameter)]
    public let optimizer: Optimizer
    public let ema: WeightEMA?
    public let schedule: CosineSchedule
    public let labelSmoothing: Float
    public let clipGrad: Double?
    /// Gradients summed since the last update, index-aligned with `trainable`.
    private var accumulated: [Tensor?]

    /// Sets up the optimiser (AdamW or SGD per `config`), the EMA and the per-update schedule.
    public init(model: ImageClassifier, config: TrainingConfig, updatesPerEpoch: Int) throws {
        self.model = model
        trainable = model.trainableParameters
        guard !trainable.isEmpty else { throw TrainingError("the model has no trainable parameters") }
        let parameters = trainable.map(\.1)
        optimizer = config.opt == "sgd"
            ? SGD(parameters, learningRate: Float(config.lr), momentum: Float(config.momentum), nesterov: config.nesterov,
                  weightDecay: Float(config.weightDecay))
            : AdamW(parameters, learningRate: Float(config.lr), eps: Float(config.optEps), weightDecay: Float(config.weightDecay))
        ema = config.emaDecay.map { WeightEMA(parameters, decay: Float($0)) }
        schedule = CosineSchedule(baseLR: config.lr, epochs: config.epochs, warmupEpochs: config.warmupEpochs,
                                  updatesPerEpoch: updatesPerEpoch, warmupLR: config.warmupLR, minLR: config.minLR)
        labelSmoothing = Float(config.smoothing)
        clipGrad = config.clipGrad
        accumulated = Array(repeating: nil, count: trainable.count)
    }

    /// Whether gradients are waiting for an update.
    public var hasPendingGradients: Bool { accumulated.contains { $0 != nil } }

    /// Forward and backward of one batch; its gradients, divided by `groupSize` (the batches of the
    /// accumulation group), are added to the pending ones. Returns the batch's loss. `targets` are
    /// soft targets (mixup), else `labels` with the configured label smoothing.
    public func accumulate(images: Tensor, labels: [Int], targets: Tensor? = nil, groupSize: Int = 1) -> Double {
        let tape = Tape()
        let loss = tape.recording { () -> Tensor in
            let logits = model(images)
            if let targets { return crossEntropy(logits, softTargets: targets) }
            return crossEntropy(logits, labels: labels, labelSmoothing: labelSmoothing)
        }
        let value = Double(loss.item)
        guard value.isFinite else { return value }
        let grads = tape.backward(from: loss, seed: Tensor(scalar: 1 / Float(groupSize)))
        for (i, (_, p)) in trainable.enumerated() {
            guard let g = grads[key: p] else { continue }
            if accumulated[i] == nil { accumulated[i] = g } else { accumulated[i]!.addInPlace(g) }
        }
        return value
    }

    /// Clips the pending gradients' global norm, sets the learning rate of update `index` and
    /// updates the optimiser and the EMA.
    public func update(index: Int) {
        if let clip = clipGrad {
            var squares = 0.0
            for g in accumulated.compactMap({ $0 }) { for j in 0..<g.count { squares += Double(g.pointer[j]) * Double(g.pointer[j]) } }
            let coefficient = clip / (squares.squareRoot() + 1e-6)
            if coefficient < 1 { for i in accumulated.indices { accumulated[i]?.scaleInPlace(Float(coefficient)) } }
        }
        optimizer.learningRate = Float(schedule.learningRate(at: Double(index)))
        optimizer.update(accumulated)
        ema?.update()
        accumulated = Array(repeating: nil, count: accumulated.count)
    }
}
