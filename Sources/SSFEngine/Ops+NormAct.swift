// Batch norm in evaluation form, an optional SSF scale-shift and an optional clamp (ReLU6) as one
// per-channel affine map and one pass over memory, forward and backward.
//
// Frozen statistics make the norm an affine map per channel, and the scale-shift is one too, so
// the three ops collapse into y = clamp(A·x + B) with
//   s = w / √(var + eps),  t = b − mean·s,  A = γ·s,  B = γ·t + β.
// The backward keeps only y. Where the clamp passes the gradient (lo < y < hi), y = A·x + B, so
// with g' = g·[lo < y < hi] every gradient follows from the per-channel sums Σg' and Σg'·y:
//   dx = g'·A,  dβ = Σg',  dγ = Σg'·u with u = (y − β)/γ the norm's output,
//   d(norm bias) = γ·Σg',  d(norm weight) = γ·Σg'·x̂ with x̂ = ((y − B)/A − mean)·rstd.
// Recovering u and x̂ from y divides by γ and A; when a gradient that needs them is wanted and
// some |γ| or |A| is below 1e-3, the ops run unfused instead (same values, more memory traffic).

/// A per-channel affine map and optional clamp applied to a convolution's output as it is written:
/// `out = clamp(scale[c] · conv + shift[c])`. For inference only (nothing records it).
public struct ChannelEpilogue: Sendable {
    public let scale: [Float], shift: [Float]
    public let clamp: ClosedRange<Float>?

    public init(scale: [Float], shift: [Float], clamp: ClosedRange<Float>?) {
        precondition(scale.count == shift.count, "ChannelEpilogue: \(scale.count) scales for \(shift.count) shifts")
        self.scale = scale; self.shift = shift; self.clamp = clamp
    }

    /// Evaluation-form batch norm, an optional SSF scale-shift and an optional clamp as one map
    /// (the A and B of `batchNormScaleShiftClamp`).
    public init(mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?, eps: Float,
                scale: Tensor? = nil, shift: Tensor? = nil, clamp: ClosedRange<Float>? = nil) {
        let channels = mean.count
        precondition(variance.count == channels && (weight?.count ?? channels) == channels && (bias?.count ?? channels) == channels
                     && (scale?.count ?? channels) == channels && (shift?.count ?? channels) == channels,
                     "ChannelEpilogue: statistics and vectors must all have \(channels) channels")
        var a = [Float](repeating: 0, count: channels), b = a
        for c in 0..<channels {
            let s = (weight?.pointer[c] ?? 1) / (variance.pointer[c] + eps).squareRoot()
            let t = (bias?.pointer[c] ?? 0) - mean.pointer[c] * s
            let g = scale?.pointer[c] ?? 1
            a[c] = g * s
            b[c] = g * t + (shift?.pointer[c] ?? 0)
        }
        self.init(scale: a, shift: b, clamp: clamp)
    }

    var lower: Float { clamp?.lowerBound ?? -.infinity }
    var upper: Float { clamp?.upperBound ?? .infinity }

    /// The same map after a bias: clamp(a·(y + bias) + b) = clamp(a·y + (a·bias + b)).
    func absorbing(_ bias: Tensor?) -> ChannelEpilogue {
        guard let bias else { return self }
        return ChannelEpilogue(scale: scale, shift: (0..<shift.count).map { shift[$0] + scale[$0] * bias.pointer[$0] }, clamp: clamp)
    }

    /// Applies the map of channel `c` to `count` contiguous values, from `src` into `dst` (may be the same).
    @inline(__always) func apply(channel c: Int, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        let va = Vec(repeating: scale[c]), vb = Vec(repeating: shift[c]), lo = Vec(repeating: lower), hi = Vec(repeating: upper)
        var j = 0
        while j < count {
            let n = min(8, count - j)
            storeVec(vmin(vmax(fma(loadVec(src + j, n), va, vb), lo), hi), dst + j, n)
            j += n
        }
    }

    /// Applies the map of channel `c` to `count` contiguous values in place.
    @inline(__always) func apply(channel c: Int, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        apply(channel: c, UnsafePointer(p), p, count)
    }
}

/// `clamp(scaleShift(batchNormInference(x, …), scale, shift))` in one pass: batch norm with running
/// statistics on NCHW axis 1, then optionally SSF's `⊙ scale + shift` (`[C]` each), then optionally
/// a clamp to `clamp` (`0...6` is ReLU6). Differentiable in `x`, `weight`, `bias`, `scale` and `shift`;
/// the statistics are constants.
public func batchNormScaleShiftClamp(_ x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?, eps: Float,
                                     scale: Tensor? = nil, shift: Tensor? = nil, clamp: ClosedRange<Float>? = nil) -> Tensor {
    let channels = channelLayout(x.shape, .channelsFirst).channels
    precondition(mean.shape == [channels] && variance.shape == [channels],
                 "batchNormScaleShiftClamp: statistics must be [\(channels)] for input \(x.shape)")
    precondition((scale == nil) == (shift == nil) && (scale.map { $0.shape == [channels] && shift!.shape == [channels] } ?? true),
                 "batchNormScaleShiftClamp: scale and shift must both be [\(channels)] or both absent")
    let tape = Tape.active(for: x, weight, bias, scale, shift)
    let map = ChannelEpilogue(mean: mean, variance: variance, weight: weight, bias: bias, eps: eps, scale: scale, shift: shift, clamp: clamp)
    let a = map.scale, b = map.shift
    let rstd = (0..<channels).map { 1 / (variance.pointer[$0] + eps).squareRoot() }
    if let tape {
        let invertible: (Tensor?) -> Bool = { $0.map { $0.untracked.scalars.allSatisfy { abs($0) > 1e-3 } } ?? true }
        let needsU = scale.map(tape.tracks) ?? false, needsXHat = weight.map(tape.tracks) ?? false
        if (needsU && !invertible(scale)) || (needsXHat && !(invertible(scale) && a.allSatisfy { abs($0) > 1e-3 })) {
            var y = batchNormInference(x, mean: mean, variance: variance, weight: weight, bias: bias, eps: eps)
            if let scale, let shift { y = scaleShift(y, scale: scale, shift: shift, axis: .channelsFirst) }
            if let clamp {
                // The clamp alone: the identity affine map, always invertible.
                y = batchNormScaleShiftClamp(y, mean: .zeros([channels]), variance: .ones([channels]), weight: nil, bias: nil, eps: 0, clamp: clamp)
            }
            return y
        }
    }
    return OpProfile.run("batch norm") {
        var out = Tensor(uninitializedShape: x.shape)
        let (outer, _, inner) = channelLayout(x.shape, .channelsFirst)
        let src = x.pointer, dst = out.mutablePointer()
        Threading.parallelFor(outer * channels, minimumPerThread: max(1, 4096 / max(inner, 1))) { planes in
            for p in planes { map.apply(channel: p % channels, src + p * inner, dst + p * inner, inner) }
        }
        guard let tape else { return out }
        let y = out.untracked, um = mean.untracked
        let us = scale?.untracked, uh = shift?.untracked
        let band = clamp ?? -Float.infinity...Float.infinity
        out = tape.record(out, inputs: [x, weight, bias, scale, shift]) { g, needs in
            let sums = a.withUnsafeBufferPointer { ap in
                channelBackward(g, source: y, scale: needs[0] ? ap.baseAddress : nil, .channelsFirst, passBand: band)
            }
            let sg = sums.g.pointer, sgy = sums.gSource!.pointer
            func vector(_ value: (Int) -> Float) -> Tensor {
                var t = Tensor(uninitializedShape: [channels])
                let tp = t.mutablePointer()
                for c in 0..<channels { tp[c] = value(c) }
                return t
            }
            let gamma: (Int) -> Float = { us?.pointer[$0] ?? 1 }
            let beta: (Int) -> Float = { uh?.pointer[$0] ?? 0 }
            let dw = needs[1] ? vector { c in
                let xHatSum = ((sgy[c] - b[c] * sg[c]) / a[c] - um.pointer[c] * sg[c]) * rstd[c]
                return gamma(c) * xHatSum
            } : nil
            let db = needs[2] ? vector { c in gamma(c) * sg[c] } : nil
            let dScale = needs[3] ? vector { c in (sgy[c] - beta(c) * sg[c]) / gamma(c) } : nil
            return [sums.gx, dw, db, dScale, needs[4] ? sums.g : nil]
        }
        return out
    }
}
