// Batch normalisation in training form: batch statistics in the forward and the full backward
// through the mean and the variance.

/// The per-channel statistics of one training-mode batch norm call.
public struct BatchStatistics {
    /// Mean over `N × H × W` per channel.
    public let mean: Tensor
    /// Biased variance (divided by the element count), the one the normalisation uses.
    public let variance: Tensor
    /// Elements per channel (`N × H × W`).
    public let count: Int

    /// The unbiased variance (count − 1 in the denominator), what running statistics track.
    public var unbiasedVariance: Tensor {
        let factor = count > 1 ? Float(Double(count) / Double(count - 1)) : 1
        return variance * factor
    }
}

/// Batch normalisation on axis 1 with the batch's own statistics, as PyTorch's `BatchNorm2d` in
/// training mode: `y = (x − μ_B)/√(σ²_B + eps) · w + b` with μ_B, σ²_B (biased) per channel over
/// every sample and position. Returns the output and the statistics (for the running averages).
///
/// The backward is the full one, through the mean and the variance:
/// `dx = w·rstd·(g − mean(g) − x̂·mean(g·x̂))` per channel, `dw = Σ g·x̂`, `db = Σ g`.
public func batchNormTraining(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> (output: Tensor, statistics: BatchStatistics) {
    OpProfile.run("batch norm") { () -> (output: Tensor, statistics: BatchStatistics) in
        let (outer, channels, inner) = channelLayout(x.shape, .channelsFirst)
        let count = outer * inner
        precondition(count > 0, "batchNormTraining: empty input \(x.shape)")
        let invCount = 1 / Float(count)
        // Two passes for accuracy: the mean, then the variance of the centred values.
        let ones = Tensor.ones([channels])
        let mean = channelGradientSums(x, nil, .channelsFirst).g * invCount
        let negMean = -mean
        let centred = channelAffine(x.untracked, ones.pointer, negMean.pointer, .channelsFirst)
        let variance = channelGradientSums(centred, centred, .channelsFirst).gx! * invCount
        var rstd = Tensor(uninitializedShape: [channels])
        let rp = rstd.mutablePointer()
        for c in 0..<channels { rp[c] = 1 / (variance.pointer[c] + eps).squareRoot() }
        let xHat = channelAffine(centred, rstd.pointer, nil, .channelsFirst)
        var out = xHat
        if weight != nil || bias != nil {
            out = channelAffine(xHat, (weight ?? ones).pointer, bias?.pointer, .channelsFirst)
        }
        let statistics = BatchStatistics(mean: mean, variance: variance, count: count)
        guard let tape = Tape.active(for: x, weight, bias) else { return (out, statistics) }
        let uw = weight?.untracked
        out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
            let sums = channelGradientSums(g, xHat, .channelsFirst)
            var gx: Tensor?
            if needs[0] {
                // dx = a·g + b·x̂ + k per channel with a = w·rstd, b = −a·mean(g·x̂), k = −a·mean(g).
                var a = Tensor(uninitializedShape: [channels]), b = Tensor(uninitializedShape: [channels]), k = Tensor(uninitializedShape: [channels])
                let ap = a.mutablePointer(), bp = b.mutablePointer(), kp = k.mutablePointer()
                let sgx = sums.gx!.pointer, sg = sums.g.pointer
                for c in 0..<channels {
                    ap[c] = (uw?.pointer[c] ?? 1) * rstd.pointer[c]
                    bp[c] = -ap[c] * sgx[c] * invCount
                    kp[c] = -ap[c] * sg[c] * invCount
                }
                var dx = Tensor(uninitializedShape: g.shape)
                let dp = dx.mutablePointer(), gp = g.pointer, hp = xHat.pointer
                let (av, bv, kv) = (a, b, k)
                Threading.parallelFor(outer * channels, minimumPerThread: max(1, 4096 / max(inner, 1))) { planes in
                    for p in planes {
                        let c = p % channels, base = p * inner
                        let va = Vec(repeating: av.pointer[c]), vb = Vec(repeating: bv.pointer[c]), vk = Vec(repeating: kv.pointer[c])
                        var j = 0
                        while j < inner {
                            let n = min(8, inner - j)
                            var v = vk
                            v.addProduct(va, loadVec(gp + base + j, n))
                            v.addProduct(vb, loadVec(hp + base + j, n))
                            storeVec(v, dp + base + j, n)
                            j += n
                        }
                    }
                }
                gx = dx
            }
            return [gx, needs[1] ? sums.gx : nil, needs[2] ? sums.g : nil]
        }
        return (out, statistics)
    }
}
