// SGD with momentum and Nesterov momentum, as torch.optim.SGD (dampening 0), with weight decay
// (coupled, added to the gradient) off for 1-D parameters.
import SSFEngine
import SSFNN

/// Stochastic gradient descent over a fixed list of parameters.
///
/// Per element: `g ← g + wd·p` (rank ≥ 2 only), `b ← μb + g` (b = g on the first step),
/// then `p ← p − lr·(g + μb)` with Nesterov momentum or `p ← p − lr·b` without.
public final class SGD {
    public let parameters: [Parameter]
    public var learningRate: Float
    public var momentum: Float, weightDecay: Float
    public var nesterov: Bool
    /// Momentum buffers, one per parameter (saved in resumable checkpoints).
    var buffers: [Tensor]
    /// Steps taken so far.
    public internal(set) var step = 0

    public init(_ parameters: [Parameter], learningRate: Float, momentum: Float = 0.9, nesterov: Bool = true, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate; self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
        buffers = parameters.map { Tensor.zeros($0.value.shape) }
    }

    /// Applies one update from `gradients` (a parameter without a gradient is left alone).
    public func update(_ gradients: Gradients) { update(parameters.map { gradients[key: $0] }) }

    /// Applies one update from gradients index-aligned with `parameters` (nil: left alone).
    public func update(_ gradients: [Tensor?]) {
        let first = step == 0
        step += 1
        for (i, p) in parameters.enumerated() {
            guard let g = gradients[i] else { continue }
            let wd: Float = p.value.rank >= 2 ? weightDecay : 0
            let pp = p.value.mutablePointer(), bp = buffers[i].mutablePointer(), gp = g.pointer
            let (mu, lr, nesterov) = (momentum, learningRate, nesterov)
            Threading.parallelFor(p.value.count, minimumPerThread: 32_768) { range in
                for j in range {
                    var gj = gp[j] + wd * pp[j]
                    if mu != 0 {
                        let bj = first ? gj : mu * bp[j] + gj
                        bp[j] = bj
                        gj = nesterov ? gj + mu * bj : bj
                    }
                    pp[j] -= lr * gj
                }
            }
        }
    }
}
