// The optimiser interface the trainer drives, with the state a resumable checkpoint saves.
import SSFEngine
import SSFNN

/// An optimiser over a fixed list of parameters whose learning rate the schedule sets.
public protocol Optimizer: AnyObject {
    var parameters: [Parameter] { get }
    var learningRate: Float { get set }
    /// Updates taken so far.
    var step: Int { get }
    /// Applies one update from gradients index-aligned with `parameters` (nil: left alone).
    func update(_ gradients: [Tensor?])
    /// The per-parameter state tensors by slot name (`m`, `v` or `momentum`), index-aligned with `parameters`.
    func stateTensors() -> [String: [Tensor]]
    /// Restores what `stateTensors()` returned and the step count.
    func restore(state: [String: [Tensor]], step: Int) throws
}

/// Optimiser state that does not fit the parameters it is restored into.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public let description: String
}

func checkedState(_ state: [String: [Tensor]], slot: String, like parameters: [Parameter]) throws -> [Tensor] {
    guard let tensors = state[slot], tensors.count == parameters.count,
          zip(tensors, parameters).allSatisfy({ $0.shape == $1.value.shape }) else {
        throw OptimizerStateError(description: "optimizer state '\(slot)' does not match the trainable parameters")
    }
    return tensors
}

extension AdamW: Optimizer {
    public func stateTensors() -> [String: [Tensor]] { ["m": m, "v": v] }
    public func restore(state: [String: [Tensor]], step: Int) throws {
        m = try checkedState(state, slot: "m", like: parameters)
        v = try checkedState(state, slot: "v", like: parameters)
        self.step = step
    }
}

extension SGD: Optimizer {
    public func stateTensors() -> [String: [Tensor]] { ["momentum": buffers] }
    public func restore(state: [String: [Tensor]], step: Int) throws {
        buffers = try checkedState(state, slot: "momentum", like: parameters)
        self.step = step
    }
}
