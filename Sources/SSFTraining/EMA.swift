// An exponential moving average of the trainable weights (timm's ModelEmaV2 over the tensors that train).
import SSFEngine
import SSFNN

/// `ema ← decay·ema + (1 − decay)·p` for each tracked parameter after every update.
public final class WeightEMA {
    public let decay: Float
    public let parameters: [Parameter]
    /// The averaged values, index-aligned with `parameters`.
    public internal(set) var values: [Tensor]

    public init(_ parameters: [Parameter], decay: Float) {
        self.parameters = parameters; self.decay = decay
        values = parameters.map { $0.value }
    }

    /// Folds the parameters' current values into the average.
    public func update() {
        for (i, p) in parameters.enumerated() {
            let ep = values[i].mutablePointer(), pp = p.value.pointer, d = decay
            for j in 0..<p.value.count { ep[j] = d * ep[j] + (1 - d) * pp[j] }
        }
    }

    /// Restores averaged values (from a resumable checkpoint).
    public func restore(_ saved: [Tensor]) throws {
        guard saved.count == values.count, zip(saved, values).allSatisfy({ $0.shape == $1.shape }) else {
            throw OptimizerStateError(description: "EMA state does not match the trainable parameters")
        }
        values = saved
    }

    /// Runs `body` with the averaged values swapped into the parameters, then puts the live ones back.
    public func withAveragedWeights<R>(_ body: () throws -> R) rethrows -> R {
        let live = parameters.map(\.value)
        for (p, e) in zip(parameters, values) { p.value = e }
        defer { for (p, l) in zip(parameters, live) { p.value = l } }
        return try body()
    }
}
