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
    /// Gradients summed since the last update, index-aligned with `trainable`, in one buffer.
    public let gradients: FlatGradients
    /// Runs between backward and the update, on the summed gradients: a data-parallel run
    /// averages `gradients.buffer` across processes here, so clipping and the optimiser see
    /// the reduced gradient.
    public var gradientHook: ((FlatGradients) throws -> Void)?

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
        gradients = FlatGradients(shapes: trainable.map(\.1.value.shape))
    }

    /// Whether gradients are waiting for an update.
    public var hasPendingGradients: Bool { !gradients.isEmpty }

    /// Forward and backward of one batch; its gradients, divided by `groupSize` (the batches of the
    /// accumulation group), are added to the pending ones. Returns the batch's loss. `targets` are
    /// soft targets (mixup), else `labels` with the configured label smoothing.
    /// With `headInputs` the batch holds the features the head reads (`headInput` of the images), and only the head runs.
    public func accumulate(images: Tensor, labels: [Int], targets: Tensor? = nil, groupSize: Int = 1, headInputs: Bool = false) -> Double {
        let tape = Tape()
        let loss = tape.recording { () -> Tensor in
            let logits = headInputs ? model.applyHead(images) : model(images)
            if let targets { return crossEntropy(logits, softTargets: targets) }
            return crossEntropy(logits, labels: labels, labelSmoothing: labelSmoothing)
        }
        let value = Double(loss.item)
        guard value.isFinite else { return value }
        let grads = tape.backward(from: loss, seed: Tensor(scalar: 1 / Float(groupSize)))
        for (i, (_, p)) in trainable.enumerated() {
            if let g = grads[key: p] { gradients.add(g, at: i) }
        }
        return value
    }

    /// Runs the gradient hook, clips the pending gradients' global norm, sets the learning rate of
    /// update `index` and updates the optimiser and the EMA.
    public func update(index: Int) throws {
        try gradientHook?(gradients)
        if let clip = clipGrad {
            let coefficient = clip / (gradients.squaredNorm.squareRoot() + 1e-6)
            if coefficient < 1 { gradients.scale(by: Float(coefficient)) }
        }
        optimizer.learningRate = Float(schedule.learningRate(at: Double(index)))
        optimizer.update(gradients.tensors)
        ema?.update()
        gradients.reset()
    }
}
