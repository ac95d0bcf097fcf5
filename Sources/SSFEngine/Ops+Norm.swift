// Differentiable normalisation layers: LayerNorm (last axis and channels-first), GroupNorm, BatchNorm (batch statistics and eval form).

/// Row statistics for LayerNorm-style backward passes: one mean and one 1/σ per normalised group.
struct NormStats {
    var mean: Tensor
    var rstd: Tensor
}

/// Normalises each contiguous group of `n` elements: returns x̂ (or x̂·w + b when a per-element
/// affine of length `n` is given, fused into the same pass) and the statistics. Not recorded.
///
/// With `groupsPerAffine` > 0 the affine differs per sample: group r uses the `n` values at
/// `weight + (r / groupsPerAffine)·n` (and likewise `bias`), one row per sample.
func normalizeGroups(_ x: Tensor, groups: Int, n: Int, eps: Float,
                     weight: UnsafePointer<Float>? = nil, bias: UnsafePointer<Float>? = nil,
                     groupsPerAffine: Int = 0) -> (Tensor, NormStats) {
    var out = Tensor(uninitializedShape: x.shape)
    var mean = Tensor(uninitializedShape: [groups]), rstd = Tensor(uninitializedShape: [groups])
    let d = out.mutablePointer(), s = x.pointer, mp = mean.mutablePointer(), rp = rstd.mutablePointer()
    Threading.parallelFor(groups, minimumPerThread: max(1, 8192 / max(n, 1))) { range in
        for r in range {
            let src = s + r * n, dst = d + r * n
            let mu = sumVec(src, n) / Float(n)
            let vm = Vec(repeating: mu)
            var a0 = Vec(), a1 = Vec()
            var j = 0
            while j + 16 <= n {
                let c0 = loadVec(src + j, 8) - vm, c1 = loadVec(src + j + 8, 8) - vm
                a0.addProduct(c0, c0); a1.addProduct(c1, c1)
                j += 16
            }
            var ss = (a0 + a1).sum()
            while j < n { let c = src[j] - mu; ss += c * c; j += 1 }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            mp[r] = mu; rp[r] = inv
            let vi = Vec(repeating: inv)
            if weight == nil && bias == nil {
                mapVecSerial(src, dst, 0, n, VecAffine(a: vi, b: Vec() - vm * vi))
            } else {
                let row = groupsPerAffine > 0 ? (r / groupsPerAffine) * n : 0
                let wr = weight.map { $0 + row }, br = bias.map { $0 + row }
                j = 0
                while j < n {
                    let w = min(8, n - j)
                    let xh = (loadVec(src + j, w) - vm) * vi
                    let scaled = wr.map { xh * loadVec($0 + j, w) } ?? xh
                    storeVec(br.map { scaled + loadVec($0 + j, w) } ?? scaled, dst + j, w)
                    j += w
                }
            }
        }
    }
    return (out, NormStats(mean: mean, rstd: rstd))
}

/// Input gradient of a group normalisation given dL/dx̂ (already multiplied by the affine weight):
/// dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) within each group. Not recorded.
func normalizeGroupsBackward(_ gHat: Tensor, _ xHat: Tensor, _ rstd: Tensor, groups: Int, n: Int) -> Tensor {
    var out = Tensor(uninitializedShape: gHat.shape)
    let d = out.mutablePointer(), gp = gHat.pointer, xp = xHat.pointer, rp = rstd.pointer
    Threading.parallelFor(groups, minimumPerThread: max(1, 8192 / max(n, 1))) { range in
        for r in range {
            let g = gp + r * n, xh = xp + r * n
            let mg = Vec(repeating: sumVec(g, n) / Float(n))
            let mgx = Vec(repeating: dotVec(g, xh, n) / Float(n))
            let vr = Vec(repeating: rp[r])
            zipVecSerial(g, xh, d + r * n, 0, n, GroupNormInputGradient(rstd: vr, meanG: mg, meanGX: mgx))
        }
    }
    return out
}

/// rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) for one group's lanes (a value type, so the loop is
/// specialised and inlined rather than calling a closure per vector).
struct GroupNormInputGradient: VecBinary {
    let rstd: Vec, meanG: Vec, meanGX: Vec
    @inline(__always) func callAsFunction(_ g: Vec, _ xHat: Vec) -> Vec { rstd * (g - meanG - xHat * meanGX) }
}

/// Recomputes x̂ = (x − mean) · rstd for contiguous groups. Not recorded.
func recomputeNormalized(_ x: Tensor, _ stats: NormStats, groups: Int, n: Int) -> Tensor {
    var out = Tensor(uninitializedShape: x.shape)
    let d = out.mutablePointer(), s = x.pointer, mp = stats.mean.pointer, rp = stats.rstd.pointer
    Threading.parallelFor(groups, minimumPerThread: max(1, 8192 / max(n, 1))) { range in
        for r in range {
            let vm = Vec(repeating: mp[r]), vr = Vec(repeating: rp[r])
            mapVecSerial(s + r * n, d + r * n, 0, n, VecAffine(a: vr, b: Vec() - vm * vr))
        }
    }
    return out
}

/// Applies the optional affine `x̂·w + b` along `axis` and records the backward of a
/// normalisation whose statistics are taken over contiguous groups of `n` elements.
private func affineNormalization(_ x: Tensor, weight: Tensor?, bias: Tensor?, groups: Int, n: Int,
                                 eps: Float, axis: ChannelAxis, name: String) -> Tensor {
    let channels = channelLayout(x.shape, axis).channels
    if let weight { precondition(weight.shape == [channels], "\(name): weight \(weight.shape) must be [\(channels)]") }
    if let bias { precondition(bias.shape == [channels], "\(name): bias \(bias.shape) must be [\(channels)]") }
    // Along the last axis the affine runs over the normalised elements themselves and fuses
    // into the normalisation pass; channels-first applies it per channel plane afterwards.
    let fused = axis == .last
    var (out, stats) = normalizeGroups(x, groups: groups, n: n, eps: eps,
                                       weight: fused ? weight?.pointer : nil, bias: fused ? bias?.pointer : nil)
    if !fused && (weight != nil || bias != nil) {
        let ones = weight == nil ? Tensor.ones([channels]) : nil
        out = channelAffine(out, (weight ?? ones!).pointer, bias?.pointer, axis)
    }
    if let tape = Tape.active(for: x, weight, bias) {
        let ux = x.untracked, uw = weight?.untracked
        out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
            let xh = recomputeNormalized(ux, stats, groups: groups, n: n)
            var gx: Tensor?
            if needs[0] {
                let gHat = uw.map { channelAffine(g, $0.pointer, nil, axis) } ?? g
                gx = normalizeGroupsBackward(gHat, xh, stats.rstd, groups: groups, n: n)
            }
            var gw: Tensor?, gb: Tensor?
            if needs[1] || needs[2] {
                let sums = channelGradientSums(g, needs[1] ? xh : nil, axis)
                gw = sums.gx; gb = sums.g
            }
            return [gx, needs[1] ? gw : nil, needs[2] ? gb : nil]
        }
    }
    return out
}

/// Layer normalisation over the last axis with optional affine weight and bias.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    OpProfile.run("layer norm") {
        let c = x.shape.last ?? 1
        return affineNormalization(x, weight: weight, bias: bias, groups: x.count / max(c, 1), n: c,
                                   eps: eps, axis: .last, name: "layerNorm")
    }
}

/// Group normalisation of an `[N, C, spatial…]` tensor: statistics over each group of
/// `C / groups` channels and all spatial positions; per-channel affine.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    OpProfile.run("layer norm") {
        let (n, c, _) = channelLayout(x.shape, .channelsFirst)
        precondition(groups > 0 && c % groups == 0, "groupNorm: \(c) channels do not split into \(groups) groups")
        return affineNormalization(x, weight: weight, bias: bias, groups: n * groups, n: x.count / max(n * groups, 1),
                                   eps: eps, axis: .channelsFirst, name: "groupNorm")
    }
}

/// Layer normalisation of an NCHW tensor over its channels at each pixel (timm's LayerNorm2d),
/// computed in place on the channels-first layout without transposing.
public func layerNorm2d(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-6) -> Tensor {
    OpProfile.run("layer norm") {
        let (batch, channels, pixels) = channelLayout(x.shape, .channelsFirst)
        if let weight { precondition(weight.shape == [channels], "layerNorm2d: weight \(weight.shape) must be [\(channels)]") }
        if let bias { precondition(bias.shape == [channels], "layerNorm2d: bias \(bias.shape) must be [\(channels)]") }
        // Statistics per (image, pixel), accumulated across channel planes with vectors along the pixels.
        var mean = Tensor(uninitializedShape: [batch, pixels]), rstd = Tensor(uninitializedShape: [batch, pixels])
        var xHat = Tensor(uninitializedShape: x.shape)
        let mp = mean.mutablePointer(), rp = rstd.mutablePointer(), hp = xHat.mutablePointer(), s = x.pointer
        let invC = Vec(repeating: 1 / Float(channels)), ve = Vec(repeating: eps)
        Threading.parallelFor(batch * ((pixels + 63) / 64)) { range in
            let tiles = (pixels + 63) / 64
            for t in range {
                let b = t / tiles, p0 = (t % tiles) * 64, width = min(64, pixels - p0)
                let base = s + b * channels * pixels + p0
                var j = 0
                while j < width {
                    let w = min(8, width - j)
                    var acc = Vec()
                    for c in 0..<channels { acc += loadVec(base + c * pixels + j, w) }
                    let mu = acc * invC
                    var sq = Vec()
                    for c in 0..<channels { let d = loadVec(base + c * pixels + j, w) - mu; sq.addProduct(d, d) }
                    let inv = Vec(repeating: 1) / (sq * invC + ve).squareRoot()
                    storeVec(mu, mp + b * pixels + p0 + j, w)
                    storeVec(inv, rp + b * pixels + p0 + j, w)
                    for c in 0..<channels {
                        let off = b * channels * pixels + c * pixels + p0 + j
                        storeVec((loadVec(s + off, w) - mu) * inv, hp + off, w)
                    }
                    j += w
                }
            }
        }
        var out = xHat
        if weight != nil || bias != nil {
            let ones = weight == nil ? Tensor.ones([channels]) : nil
            out = channelAffine(xHat, (weight ?? ones!).pointer, bias?.pointer, .channelsFirst)
        }
        if let tape = Tape.active(for: x, weight, bias) {
            let uw = weight?.untracked
            let xh = xHat
            out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
                var gx: Tensor?
                if needs[0] {
                    let gHat = uw.map { channelAffine(g, $0.pointer, nil, .channelsFirst) } ?? g
                    var dx = Tensor(uninitializedShape: g.shape)
                    let dp = dx.mutablePointer(), gp = gHat.pointer, xp = xh.pointer, rsp = rstd.pointer
                    Threading.parallelFor(batch * ((pixels + 63) / 64)) { range in
                        let tiles = (pixels + 63) / 64
                        for t in range {
                            let b = t / tiles, p0 = (t % tiles) * 64, width = min(64, pixels - p0)
                            var j = 0
                            while j < width {
                                let w = min(8, width - j)
                                let base = b * channels * pixels + p0 + j
                                var sg = Vec(), sgx = Vec()
                                for c in 0..<channels {
                                    let gv = loadVec(gp + base + c * pixels, w)
                                    sg += gv
                                    sgx.addProduct(gv, loadVec(xp + base + c * pixels, w))
                                }
                                let mg = sg * invC, mgx = sgx * invC
                                let inv = loadVec(rsp + b * pixels + p0 + j, w)
                                for c in 0..<channels {
                                    let off = base + c * pixels
                                    storeVec(inv * (loadVec(gp + off, w) - mg - loadVec(xp + off, w) * mgx), dp + off, w)
                                }
                                j += w
                            }
                        }
                    }
                    gx = dx
                }
                var gw: Tensor?, gb: Tensor?
                if needs[1] || needs[2] {
                    let sums = channelGradientSums(g, needs[1] ? xh : nil, .channelsFirst)
                    gw = sums.gx; gb = sums.g
                }
                return [gx, needs[1] ? gw : nil, needs[2] ? gb : nil]
            }
        }
        return out
    }
}

/// Batch normalisation in evaluation form on axis 1: `(x − mean)/√(var + eps)·w + b` with
/// fixed running statistics (no gradient flows to them).
public func batchNormInference(_ x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    OpProfile.run("batch norm") {
        let channels = channelLayout(x.shape, .channelsFirst).channels
        precondition(mean.shape == [channels] && variance.shape == [channels], "batchNorm: statistics must be [\(channels)]")
        var invStd = Tensor(uninitializedShape: [channels]), scale = Tensor(uninitializedShape: [channels]), shift = Tensor(uninitializedShape: [channels])
        let ip = invStd.mutablePointer(), sp = scale.mutablePointer(), tp = shift.mutablePointer()
        for c in 0..<channels {
            ip[c] = 1 / (variance.pointer[c] + eps).squareRoot()
            sp[c] = ip[c] * (weight?.pointer[c] ?? 1)
            tp[c] = (bias?.pointer[c] ?? 0) - mean.pointer[c] * sp[c]
        }
        var out = channelAffine(x, scale.pointer, shift.pointer, .channelsFirst)
        if let tape = Tape.active(for: x, weight, bias) {
            let ux = x.untracked, um = mean.untracked
            out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
                let gx = needs[0] ? channelAffine(g, scale.pointer, nil, .channelsFirst) : nil
                var gw: Tensor?, gb: Tensor?
                if needs[1] || needs[2] {
                    var xHat: Tensor?
                    if needs[1] {
                        var negMean = Tensor(uninitializedShape: [channels])
                        let np = negMean.mutablePointer()
                        for c in 0..<channels { np[c] = -um.pointer[c] * invStd.pointer[c] }
                        xHat = channelAffine(ux, invStd.pointer, negMean.pointer, .channelsFirst)
                    }
                    let sums = channelGradientSums(g, xHat, .channelsFirst)
                    gw = sums.gx; gb = sums.g
                }
                return [gx, needs[1] ? gw : nil, needs[2] ? gb : nil]
            }
        }
        return out
    }
}

/// Layer normalisation over the last axis followed by an SSF scale-shift, in one pass:
/// `y = (x̂ · w + b) · γ + β`, the same values as `scaleShift(layerNorm(x, …), …)`.
///
/// The backward keeps only the output and the row statistics: x̂ is recovered as
/// `(y − (b·γ + β)) / (w·γ)`. Unfused, the normalisation would keep its input and the scale-shift
/// its output, two activations of this size. When some |w·γ| is too small for the inversion to be
/// accurate, the input is kept instead.
public func layerNormScaleShift(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float = 1e-5,
                                scale: Tensor, shift: Tensor) -> Tensor {
    OpProfile.run("layer norm") {
        let c = x.shape.last ?? 1
        for (name, t) in [("weight", weight), ("bias", bias), ("scale", scale), ("shift", shift)] {
            precondition(t.shape == [c], "layerNormScaleShift: \(name) \(t.shape) must be [\(c)]")
        }
        let groups = x.count / max(c, 1)
        // The combined affine: a = w·γ, k = b·γ + β.
        var a = Tensor(uninitializedShape: [c]), k = Tensor(uninitializedShape: [c])
        let ap = a.mutablePointer(), kp = k.mutablePointer()
        let wp = weight.pointer, bp = bias.pointer, sp = scale.pointer, hp = shift.pointer
        for j in 0..<c { ap[j] = wp[j] * sp[j]; kp[j] = bp[j] * sp[j] + hp[j] }
        let combinedScale = a, combinedShift = k
        var (out, stats) = normalizeGroups(x, groups: groups, n: c, eps: eps, weight: a.pointer, bias: k.pointer)
        if let tape = Tape.active(for: x, weight, bias, scale, shift) {
            let largest = max(1, combinedShift.scalars.map(abs).max() ?? 0)
            let invertible = combinedScale.scalars.allSatisfy { abs($0) > 1e-3 * largest }
            let keptInput: Tensor? = invertible ? nil : x.untracked
            let y = out.untracked, uw = weight.untracked, ub = bias.untracked, us = scale.untracked
            out = tape.record(out, inputs: [x, weight, bias, scale, shift]) { g, needs in
                // Without a kept input, x̂ comes from inverting the output's affine.
                let inversion = keptInput == nil ? outputInversion(scale: combinedScale, shift: combinedShift) : nil
                if let inversion, !needs[1] && !needs[2] {
                    // SSF tuning (the normalisation frozen): x̂, the input gradient and γ's and β's
                    // sums in one pass over g and y.
                    let sums = layerNormScaleShiftBackward(g, output: y, rstd: stats.rstd, combinedScale: combinedScale,
                                                           inversion: inversion, weight: uw, bias: ub,
                                                           inputGradient: needs[0], scaleShiftSums: needs[3] || needs[4])
                    return [sums.gx, nil, nil, needs[3] ? sums.gScale : nil, needs[4] ? sums.gShift : nil]
                }
                let xh = inversion.map { channelAffine(y, $0.inverse.pointer, $0.offset.pointer, .last) }
                    ?? recomputeNormalized(keptInput!, stats, groups: groups, n: c)
                var gx: Tensor?, gw: Tensor?, gb: Tensor?, gScale: Tensor?, gShift: Tensor?
                if needs[0] { gx = normalizeGroupsBackward(channelAffine(g, combinedScale.pointer, nil, .last), xh, stats.rstd, groups: groups, n: c) }
                if needs[1] || needs[2] {
                    // dL/d(LN output) = g·γ.
                    let sums = channelGradientSums(channelAffine(g, us.pointer, nil, .last), needs[1] ? xh : nil, .last)
                    gw = sums.gx; gb = sums.g
                }
                if needs[3] || needs[4] {
                    // The LN output z = x̂·w + b is what γ scales.
                    let z = needs[3] ? channelAffine(xh, uw.pointer, ub.pointer, .last) : nil
                    let sums = channelGradientSums(g, z, .last)
                    gScale = sums.gx; gShift = sums.g
                }
                return [gx, needs[1] ? gw : nil, needs[2] ? gb : nil, needs[3] ? gScale : nil, needs[4] ? gShift : nil]
            }
        }
        return out
    }
}

/// The per-channel affine that undoes `y = x̂·a + k`: x̂ = y·(1/a) + (−k/a).
private func outputInversion(scale a: Tensor, shift k: Tensor) -> (inverse: Tensor, offset: Tensor) {
    var inverse = Tensor(uninitializedShape: a.shape), offset = Tensor(uninitializedShape: a.shape)
    let ip = inverse.mutablePointer(), op = offset.mutablePointer(), ap = a.pointer, kp = k.pointer
    for j in 0..<a.count { ip[j] = 1 / ap[j]; op[j] = -kp[j] / ap[j] }
    return (inverse, offset)
}

/// The backward of `layerNormScaleShift` for a frozen normalisation, from its output y and upstream
/// g, row by row while the row is in L1: x̂ = (y − k)/a (a = w·γ, k = b·γ + β; `inversion` holds
/// 1/a and −k/a), ĝ = g·a, then
/// dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), dγ = Σ g·(x̂·w + b) and dβ = Σ g over the rows. The
/// unfused sequence makes five passes over tensors of the input's size and writes four of them.
/// Not recorded.
func layerNormScaleShiftBackward(_ g: Tensor, output y: Tensor, rstd: Tensor, combinedScale: Tensor,
                                 inversion: (inverse: Tensor, offset: Tensor),
                                 weight: Tensor, bias: Tensor, inputGradient: Bool, scaleShiftSums: Bool)
    -> (gx: Tensor?, gScale: Tensor?, gShift: Tensor?) {
    let c = g.shape.last ?? 1
    let rows = g.count / max(c, 1)
    let ap = combinedScale.pointer
    let workers = max(1, min(Threading.threads, rows))
    var partialG = Tensor.zeros([workers, c]), partialGZ = Tensor.zeros([workers, c])
    var gx: Tensor? = inputGradient ? Tensor(uninitializedShape: g.shape) : nil
    let pg = partialG.mutablePointer(), pgz = partialGZ.mutablePointer()
    let gp = g.pointer, yp = y.pointer, rp = rstd.pointer, wp = weight.pointer, bp = bias.pointer
    let dp = gx?.mutablePointer(), inv = inversion.inverse.pointer, off = inversion.offset.pointer
    let scale = 1 / Float(c)
    Threading.parallelFor(workers) { ws in
        for w in ws {
            let accG = pg + w * c, accGZ = pgz + w * c
            for r in (rows * w / workers)..<(rows * (w + 1) / workers) {
                let gr = gp + r * c, yr = yp + r * c
                var sumG0 = Vec(), sumG1 = Vec(), sumGX0 = Vec(), sumGX1 = Vec()
                // One vector of `n` lanes at `j` (n = 8 but in a row's last vector, so the loads
                // in the main loop compile to plain vector loads).
                @inline(__always) func sums(_ j: Int, _ n: Int, _ sumG: inout Vec, _ sumGX: inout Vec) {
                    let gv = loadVec(gr + j, n)
                    let xh = fma(loadVec(yr + j, n), loadVec(inv + j, n), loadVec(off + j, n))
                    let gh = gv * loadVec(ap + j, n)
                    sumG += gh; sumGX.addProduct(gh, xh)
                    if scaleShiftSums {
                        let z = fma(xh, loadVec(wp + j, n), loadVec(bp + j, n))
                        storeVec(loadVec(accG + j, n) + gv, accG + j, n)
                        storeVec(fma(gv, z, loadVec(accGZ + j, n)), accGZ + j, n)
                    }
                }
                var j = 0
                while j + 16 <= c { sums(j, 8, &sumG0, &sumGX0); sums(j + 8, 8, &sumG1, &sumGX1); j += 16 }
                if j + 8 <= c { sums(j, 8, &sumG0, &sumGX0); j += 8 }
                if j < c { sums(j, c - j, &sumG1, &sumGX1) }
                guard let dp else { continue }
                let mg = Vec(repeating: (sumG0 + sumG1).sum() * scale), mgx = Vec(repeating: (sumGX0 + sumGX1).sum() * scale)
                let vr = Vec(repeating: rp[r])
                let dr = dp + r * c
                @inline(__always) func inputGradient(_ j: Int, _ n: Int) {
                    let xh = fma(loadVec(yr + j, n), loadVec(inv + j, n), loadVec(off + j, n))
                    let gh = loadVec(gr + j, n) * loadVec(ap + j, n)
                    storeVec(vr * (gh - mg - xh * mgx), dr + j, n)
                }
                j = 0
                while j + 8 <= c { inputGradient(j, 8); j += 8 }
                if j < c { inputGradient(j, c - j) }
            }
        }
    }
    guard scaleShiftSums else { return (gx, nil, nil) }
    return (gx, partialGZ.sum(axes: [0]), partialG.sum(axes: [0]))
}

/// `layerNormScaleShift` with one SSF vector pair per sample: `scale`, `shift` are `[N, C]` for an
/// input `[N, …, C]`, so each sample of a batch can carry another task's SSF site. Without a
/// recording tape it is one pass (the per-sample combined affine); under a tape it is the
/// differentiable composition of `layerNorm` and `scaleShiftPerSample`.
public func layerNormScaleShiftPerSample(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float = 1e-5,
                                         scale: Tensor, shift: Tensor) -> Tensor {
    OpProfile.run("layer norm") {
        let c = x.shape.last ?? 1, samples = scale.shape.first ?? 1
        precondition(weight.shape == [c] && bias.shape == [c], "layerNormScaleShiftPerSample: weight/bias must be [\(c)]")
        precondition(scale.rank == 2 && scale.shape == [samples, c] && shift.shape == [samples, c] && (x.shape.first ?? 0) % max(samples, 1) == 0,
                     "layerNormScaleShiftPerSample: scale \(scale.shape) and shift \(shift.shape) must be [samples, \(c)] with samples dividing \(x.shape)")
        if Tape.active(for: x, weight, bias, scale, shift) != nil {
            return scaleShiftPerSample(layerNorm(x, weight: weight, bias: bias, eps: eps), scale: scale, shift: shift)
        }
        let groups = x.count / max(c, 1)
        var a = Tensor(uninitializedShape: [samples, c]), k = Tensor(uninitializedShape: [samples, c])
        let ap = a.mutablePointer(), kp = k.mutablePointer()
        let wp = weight.pointer, bp = bias.pointer, sp = scale.pointer, hp = shift.pointer
        for s in 0..<samples {
            for j in 0..<c { ap[s * c + j] = wp[j] * sp[s * c + j]; kp[s * c + j] = bp[j] * sp[s * c + j] + hp[s * c + j] }
        }
        return normalizeGroups(x, groups: groups, n: c, eps: eps, weight: a.pointer, bias: k.pointer,
                               groupsPerAffine: groups / max(samples, 1)).0
    }
}
