// AdamW (decoupled weight decay), as torch.optim.AdamW, with weight decay off for 1-D parameters.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SSFEngine
import SSFNN

/// The AdamW optimiser over a fixed list of parameters.
///
/// Per element: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `p ← p − lr·wd·p` (for parameters of
/// rank ≥ 2 only, the reference recipe's rule), `p ← p − lr·m̂/(√v̂ + ε)` with bias-corrected m̂, v̂.
public final class AdamW {
    public let parameters: [Parameter]
    public var learningRate: Float
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// First and second moment estimates, one per parameter (saved in resumable checkpoints).
    var m: [Tensor], v: [Tensor]
    /// Steps taken so far.
    public internal(set) var step = 0

    public init(_ parameters: [Parameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0.05) {
        self.parameters = parameters
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        m = parameters.map { Tensor.zeros($0.value.shape) }
        v = parameters.map { Tensor.zeros($0.value.shape) }
    }

    /// Applies one update from `gradients` (a parameter without a gradient is left alone).
    public func update(_ gradients: Gradients) { update(parameters.map { gradients[key: $0] }) }

    /// Applies one update from gradients index-aligned with `parameters` (nil: left alone).
    public func update(_ gradients: [Tensor?]) {
        step += 1
        let c1 = 1 - Float(pow(Double(beta1), Double(step))), c2 = 1 - Float(pow(Double(beta2), Double(step)))
        for (i, p) in parameters.enumerated() {
            guard let g = gradients[i] else { continue }
            let decay: Float = p.value.rank >= 2 ? 1 - learningRate * weightDecay : 1
            let pp = p.value.mutablePointer(), mp = m[i].mutablePointer(), vp = v[i].mutablePointer(), gp = g.pointer
            let (b1, b2, lr, e) = (beta1, beta2, learningRate, eps)
            let n = p.value.count
            Threading.parallelFor(n, minimumPerThread: 32_768) { range in
                // Eight lanes at a time with the scalar loop's operations in its order (no fused
                // multiply-adds), so each lane rounds exactly as the scalar tail does.
                var j = range.lowerBound
                let (vb1, vb2, vc1, vc2) = (Vec(repeating: b1), Vec(repeating: b2), Vec(repeating: c1), Vec(repeating: c2))
                let (wb1, wb2, vlr, ve, vdecay) = (Vec(repeating: 1 - b1), Vec(repeating: 1 - b2), Vec(repeating: lr), Vec(repeating: e),
                                                  Vec(repeating: decay))
                while j + 8 <= range.upperBound {
                    let gj = loadVec(gp + j, 8)
                    let mj = vb1 * loadVec(mp + j, 8) + wb1 * gj
                    let vj = vb2 * loadVec(vp + j, 8) + wb2 * gj * gj
                    storeVec(mj, mp + j, 8); storeVec(vj, vp + j, 8)
                    let update = vlr * (mj / vc1) / ((vj / vc2).squareRoot() + ve)
                    storeVec(loadVec(pp + j, 8) * vdecay - update, pp + j, 8)
                    j += 8
                }
                while j < range.upperBound {
                    let gj = gp[j]
                    let mj = b1 * mp[j] + (1 - b1) * gj
                    let vj = b2 * vp[j] + (1 - b2) * gj * gj
                    mp[j] = mj; vp[j] = vj
                    pp[j] = pp[j] * decay - lr * (mj / c1) / ((vj / c2).squareRoot() + e)
                    j += 1
                }
            }
        }
    }
}

