// The SSF operator: per-channel scale and shift `x·γ + β`, on the last axis or on NCHW axis 1.

/// Which axis of a tensor holds the channels.
public enum ChannelAxis: Sendable {
    /// The last axis (token and NHWC tensors).
    case last
    /// Axis 1 of an `[N, C, spatial…]` tensor.
    case channelsFirst
}

/// Views a tensor as `[outer, C, inner]` for a channel axis.
func channelLayout(_ shape: [Int], _ axis: ChannelAxis) -> (outer: Int, channels: Int, inner: Int) {
    switch axis {
    case .last:
        let c = shape.last ?? 1
        return (Tensor.elementCount(shape) / max(c, 1), c, 1)
    case .channelsFirst:
        precondition(shape.count >= 2, "channels-first tensors need at least 2 dimensions, got \(shape)")
        return (shape[0], shape[1], Tensor.elementCount(Array(shape.dropFirst(2))))
    }
}

/// y[o, c, i] = x[o, c, i] · a[c] + b[c] over an `[outer, C, inner]` view. Not recorded.
func channelAffine(_ x: Tensor, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ axis: ChannelAxis) -> Tensor {
    let (outer, channels, inner) = channelLayout(x.shape, axis)
    var out = Tensor(uninitializedShape: x.shape)
    let dst = out.mutablePointer(), src = x.pointer
    if inner == 1 {
        Threading.parallelFor(outer, minimumPerThread: max(1, 4096 / max(channels, 1))) { rows in
            for r in rows {
                let s = src + r * channels, d = dst + r * channels
                var j = 0
                while j < channels {
                    let n = min(8, channels - j)
                    let v = loadVec(s + j, n) * loadVec(a + j, n)
                    storeVec(b.map { v + loadVec($0 + j, n) } ?? v, d + j, n)
                    j += n
                }
            }
        }
    } else {
        Threading.parallelFor(outer * channels, minimumPerThread: max(1, 4096 / max(inner, 1))) { planes in
            for p in planes {
                let c = p % channels
                mapVecSerial(src + p * inner, dst + p * inner, 0, inner, VecAffine(a: Vec(repeating: a[c]), b: Vec(repeating: b?[c] ?? 0)))
            }
        }
    }
    return out
}

/// Per-channel Σ g·x and Σ g over an `[outer, C, inner]` view (x optional). Not recorded.
func channelGradientSums(_ g: Tensor, _ x: Tensor?, _ axis: ChannelAxis) -> (gx: Tensor?, g: Tensor) {
    let sums = channelBackward(g, source: x, scale: nil, axis)
    return (sums.gSource, sums.g)
}

/// The scale-shift backward in one pass over an `[outer, C, inner]` view: gx = g'·a (with a scale `a`),
/// and the per-channel Σ g'·source (with a source) and Σ g', where g' is g, or with a `passBand`,
/// g where the source lies strictly inside the band and 0 elsewhere (a clamp's gradient; the
/// band needs a source). Not recorded.
func channelBackward(_ g: Tensor, source: Tensor?, scale a: UnsafePointer<Float>?, _ axis: ChannelAxis,
                     passBand: ClosedRange<Float>? = nil) -> (gx: Tensor?, gSource: Tensor?, g: Tensor) {
    precondition(passBand == nil || source != nil, "channelBackward: a pass band needs a source")
    let (outer, channels, inner) = channelLayout(g.shape, axis)
    let workers = max(1, min(Threading.threads, outer))
    var partialG = Tensor.zeros([workers, channels]), partialGS = Tensor.zeros([workers, channels])
    var gx: Tensor? = a == nil ? nil : Tensor(uninitializedShape: g.shape)
    let pg = partialG.mutablePointer(), pgs = partialGS.mutablePointer()
    let gp = g.pointer, sp = source?.pointer, dp = gx?.mutablePointer()
    let lo = Vec(repeating: passBand?.lowerBound ?? 0), hi = Vec(repeating: passBand?.upperBound ?? 0)
    Threading.parallelFor(workers) { ws in
        for w in ws {
            let lo0 = outer * w / workers, hi0 = outer * (w + 1) / workers
            let accG = pg + w * channels, accGS = pgs + w * channels
            if passBand != nil, let sp {
                // One fused loop per row or plane: mask, both sums and the scaled gradient.
                for o in lo0..<hi0 {
                    for c in 0..<(inner == 1 ? 1 : channels) {
                        let base = inner == 1 ? o * channels : (o * channels + c) * inner
                        let length = inner == 1 ? channels : inner
                        var sumG = Vec(), sumGS = Vec()
                        let va = a.map { Vec(repeating: $0[c]) }
                        var j = 0
                        while j < length {
                            let n = min(8, length - j)
                            let sv = loadVec(sp + base + j, n)
                            let gv = loadVec(gp + base + j, n).replacing(with: 0, where: .!((sv .> lo) .& (sv .< hi)))
                            if inner == 1 {
                                storeVec(loadVec(accG + j, n) + gv, accG + j, n)
                                storeVec(loadVec(accGS + j, n) + gv * sv, accGS + j, n)
                                if let dp, let a { storeVec(gv * loadVec(a + j, n), dp + base + j, n) }
                            } else {
                                sumG += gv
                                sumGS.addProduct(gv, sv)
                                if let dp, let va { storeVec(gv * va, dp + base + j, n) }
                            }
                            j += n
                        }
                        if inner != 1 {
                            accG[c] += sumG.sum()
                            accGS[c] += sumGS.sum()
                        }
                    }
                }
            } else if inner == 1 {
                // Row by row (a streaming read of g and the source); the accumulators stay in L1.
                for o in lo0..<hi0 {
                    let row = o * channels
                    var j = 0
                    while j < channels {
                        let n = min(8, channels - j)
                        let gv = loadVec(gp + row + j, n)
                        storeVec(loadVec(accG + j, n) + gv, accG + j, n)
                        if let sp { storeVec(loadVec(accGS + j, n) + gv * loadVec(sp + row + j, n), accGS + j, n) }
                        if let dp, let a { storeVec(gv * loadVec(a + j, n), dp + row + j, n) }
                        j += n
                    }
                }
            } else {
                for o in lo0..<hi0 {
                    for c in 0..<channels {
                        let base = (o * channels + c) * inner
                        accG[c] += sumVec(gp + base, inner)
                        if let sp { accGS[c] += dotVec(gp + base, sp + base, inner) }
                        if let dp, let a { mapVecSerial(gp + base, dp + base, 0, inner, VecAffine(a: Vec(repeating: a[c]), b: Vec(repeating: 0))) }
                    }
                }
            }
        }
    }
    return (gx, source == nil ? nil : partialGS.sum(axes: [0]), partialG.sum(axes: [0]))
}

/// SSF's scale-shift `y = x ⊙ γ + β` with γ, β of shape `[C]` along `axis`.
///
/// The backward keeps the output instead of the input (Σ g·x follows from Σ g·y, Σ g and γ, β),
/// unless some |γ| is too small for that to be exact.
public func scaleShift(_ x: Tensor, scale: Tensor, shift: Tensor, axis: ChannelAxis = .last) -> Tensor {
    OpProfile.run("scale-shift") {
        let channels = channelLayout(x.shape, axis).channels
        precondition(scale.shape == [channels] && shift.shape == [channels],
                     "scaleShift: scale \(scale.shape) and shift \(shift.shape) must be [\(channels)] for input \(x.shape)")
        var out = channelAffine(x, scale.pointer, shift.pointer, axis)
        if let tape = Tape.active(for: x, scale, shift) {
            let us = scale.untracked, ub = shift.untracked
            let keptInput: Tensor? = foldsScaleShift(us) ? nil : x.untracked
            let y = out.untracked
            out = tape.record(out, inputs: [x, scale, shift]) { g, needs in
                // One pass over g and the kept tensor: gx = g·γ, Σ g and Σ g·(kept). From the output,
                // Σ g·x = Σ g·(y − β)/γ = (Σ g·y − β·Σ g)/γ, so the input is never rebuilt.
                let sums = channelBackward(g, source: keptInput ?? y, scale: needs[0] ? us.pointer : nil, axis)
                var gs: Tensor?
                if needs[1] {
                    gs = keptInput != nil ? sums.gSource : scaleGradientFromOutput(sums.gSource!, sums.g, scale: us, shift: ub)
                }
                return [sums.gx, gs, needs[2] ? sums.g : nil]
            }
        }
        return out
    }
}

/// Whether an SSF output y = x·γ + β gives back x accurately enough for γ's gradient: every |γ|
/// above 1e-3. Where it does, `scaleShift` keeps its output instead of its input, and
/// `linearFoldedScaleShift` can take the site.
public func foldsScaleShift(_ scale: Tensor) -> Bool {
    let p = scale.pointer
    for j in 0..<scale.count where !(abs(p[j]) > 1e-3) { return false }
    return true
}

/// γ's gradient from the output's per-channel sums: Σ g·x = Σ g·(y − β)/γ = (Σ g·y − β·Σ g)/γ.
func scaleGradientFromOutput(_ sumGY: Tensor, _ sumG: Tensor, scale: Tensor, shift: Tensor) -> Tensor {
    var t = Tensor(uninitializedShape: scale.shape)
    let tp = t.mutablePointer(), gy = sumGY.pointer, sg = sumG.pointer, sp = scale.pointer, hp = shift.pointer
    for c in 0..<scale.count { tp[c] = (gy[c] - hp[c] * sg[c]) / sp[c] }
    return t
}

/// `scaleShift` with one vector pair per sample: for `x` of shape `[N, …]`, `scale` and `shift` are
/// `[N, C]` and sample n gets `x[n] ⊙ scale[n] + shift[n]` along `axis`. This is how one batch
/// carries several tasks' SSF vectors over one frozen backbone.
///
/// The leading axis may also be samples × k (Swin's windows, k per image, image-major): `scale`
/// then has one row per image, `x.shape[0]` a multiple of its rows.
public func scaleShiftPerSample(_ x: Tensor, scale: Tensor, shift: Tensor, axis: ChannelAxis = .last) -> Tensor {
    OpProfile.run("scale-shift") {
        let samples = scale.shape.first ?? 1
        let (outer, channels, inner) = channelLayout(x.shape, axis)
        precondition(scale.rank == 2 && scale.shape == [samples, channels] && shift.shape == [samples, channels]
                     && (x.shape.first ?? 0) % max(samples, 1) == 0,
                     "scaleShiftPerSample: scale \(scale.shape) and shift \(shift.shape) must be [samples, \(channels)] with samples dividing \(x.shape)")
        let rowsPerSample = outer / max(samples, 1)
        var out = Tensor(uninitializedShape: x.shape)
        let dst = out.mutablePointer(), src = x.pointer, sp = scale.pointer, hp = shift.pointer
        Threading.parallelFor(outer, minimumPerThread: max(1, 4096 / max(channels * inner, 1))) { rows in
            for r in rows {
                let n = r / rowsPerSample
                let a = sp + n * channels, b = hp + n * channels
                for c in 0..<channels {
                    let base = (r * channels + c) * inner
                    if inner == 1 {
                        dst[base] = src[base] * a[c] + b[c]
                    } else {
                        mapVecSerial(src + base, dst + base, 0, inner, VecAffine(a: Vec(repeating: a[c]), b: Vec(repeating: b[c])))
                    }
                }
            }
        }
        if let tape = Tape.active(for: x, scale, shift) {
            let ux = x.untracked, us = scale.untracked
            out = tape.record(out, inputs: [x, scale, shift]) { g, needs in
                var gx: Tensor?, gs: Tensor?, gb: Tensor?
                let gp = g.pointer, xp = ux.pointer, usp = us.pointer
                if needs[0] {
                    var t = Tensor(uninitializedShape: g.shape)
                    let tp = t.mutablePointer()
                    for r in 0..<outer {
                        let a = usp + (r / rowsPerSample) * channels
                        for c in 0..<channels {
                            let base = (r * channels + c) * inner
                            for i in 0..<inner { tp[base + i] = gp[base + i] * a[c] }
                        }
                    }
                    gx = t
                }
                if needs[1] || needs[2] {
                    var ts = Tensor.zeros([samples, channels]), tb = Tensor.zeros([samples, channels])
                    let tsp = ts.mutablePointer(), tbp = tb.mutablePointer()
                    for r in 0..<outer {
                        let n = r / rowsPerSample
                        for c in 0..<channels {
                            let base = (r * channels + c) * inner
                            tsp[n * channels + c] += dotVec(gp + base, xp + base, inner)
                            tbp[n * channels + c] += sumVec(gp + base, inner)
                        }
                    }
                    gs = ts; gb = tb
                }
                return [gx, needs[1] ? gs : nil, needs[2] ? gb : nil]
            }
        }
        return out
    }
}
