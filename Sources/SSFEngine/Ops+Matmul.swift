// Differentiable matrix products through BLAS: matmul, batched matmul and linear (x·Wᵀ + b).

extension Tensor {
    /// Rows and columns of the trailing matrix of this tensor.
    var matrixShape: (rows: Int, cols: Int) { (shape[rank - 2], shape[rank - 1]) }
    /// The leading (batch) dimensions before the trailing matrix.
    var batchShape: [Int] { Array(shape.dropLast(2)) }
}

/// op(A)·op(B) without recording. A is `[batch…, M, K]` (or `[batch…, K, M]` when transposed);
/// B is either one matrix shared by every batch item or has the same batch dimensions as A.
func matmulRaw(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
    let (ar, ac) = a.matrixShape, (br, bc) = b.matrixShape
    let m = transposeA ? ac : ar, k = transposeA ? ar : ac
    let kb = transposeB ? bc : br, n = transposeB ? br : bc
    precondition(k == kb, "matmul: inner dimensions differ (\(a.shape)\(transposeA ? "ᵀ" : "") × \(b.shape)\(transposeB ? "ᵀ" : ""))")
    let sharedA = a.rank == 2, sharedB = b.rank == 2
    let batch = sharedA ? b.batchShape : a.batchShape
    precondition(sharedA || sharedB || b.batchShape == batch, "matmul: batch dimensions \(a.batchShape) and \(b.batchShape) differ")
    let batchCount = batch.reduce(1, *)
    FlopCounter.add(batchCount * m * n * k)
    var out = Tensor(uninitializedShape: batch + [m, n])
    let c = out.mutablePointer()
    let pa = a.pointer, pb = b.pointer
    if sharedB && !transposeA {
        BLAS.sgemm(transposeA: false, transposeB: transposeB, m: batchCount * m, n: n, k: k,
                   a: pa, lda: ac, b: pb, ldb: bc, c: c, ldc: n)
        return out
    }
    let strideA = sharedA ? 0 : ar * ac, strideB = sharedB ? 0 : br * bc
    Threading.parallelFor(batchCount) { range in
        for i in range {
            BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                       a: pa + i * strideA, lda: ac, b: pb + i * strideB, ldb: bc, c: c + i * m * n, ldc: n)
        }
    }
    return out
}

/// Matrix product op(a)·op(b), batched over leading dimensions; `b` may be a single matrix
/// shared by every batch item. Differentiable in both operands.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    OpProfile.run("matmul") {
        var out = matmulRaw(a, b, transposeA: transposeA, transposeB: transposeB)
        if let tape = Tape.active(for: a, b) {
            let ua = a.untracked, ub = b.untracked
            out = tape.record(out, inputs: [a, b]) { g, needs in
                var ga: Tensor?, gb: Tensor?
                if needs[0] {
                    ga = (transposeA
                        ? matmulRaw(ub, g, transposeA: transposeB, transposeB: true)
                        : matmulRaw(g, ub, transposeA: false, transposeB: !transposeB)).summed(toShape: ua.shape)
                }
                if needs[1] {
                    if ub.rank == 2 && !transposeA {
                        // Shared weight: fold the batch into the rows and use one GEMM.
                        let k = ua.shape[ua.rank - 1], n = g.shape[g.rank - 1]
                        let a2 = ua.reshaped([-1, k]), g2 = g.reshaped([-1, n])
                        gb = transposeB ? matmulRaw(g2, a2, transposeA: true, transposeB: false)
                                        : matmulRaw(a2, g2, transposeA: true, transposeB: false)
                    } else {
                        let per = transposeB
                            ? matmulRaw(g, ua, transposeA: true, transposeB: transposeA)
                            : matmulRaw(ua, g, transposeA: !transposeA, transposeB: false)
                        gb = per.summed(toShape: ub.shape)
                    }
                }
                return [ga, gb]
            }
        }
        return out
    }
}

/// Sums the rows of an M×N matrix into N columns (bias gradients), with vector accumulators.
func columnSums(_ p: UnsafePointer<Float>, rows: Int, cols: Int) -> Tensor {
    var out = Tensor.zeros([cols])
    let d = out.mutablePointer()
    let blocks = (cols + 63) / 64
    Threading.parallelFor(blocks, minimumPerThread: 4) { range in
        for blk in range {
            let c0 = blk * 64, width = min(64, cols - c0)
            if width == 64 {
                // A full block keeps its 64 running sums in registers (same order of additions).
                var s0 = Vec(), s1 = Vec(), s2 = Vec(), s3 = Vec(), s4 = Vec(), s5 = Vec(), s6 = Vec(), s7 = Vec()
                for r in 0..<rows {
                    let row = p + r * cols + c0
                    s0 += loadVec(row, 8); s1 += loadVec(row + 8, 8); s2 += loadVec(row + 16, 8); s3 += loadVec(row + 24, 8)
                    s4 += loadVec(row + 32, 8); s5 += loadVec(row + 40, 8); s6 += loadVec(row + 48, 8); s7 += loadVec(row + 56, 8)
                }
                let o = d + c0
                storeVec(s0, o, 8); storeVec(s1, o + 8, 8); storeVec(s2, o + 16, 8); storeVec(s3, o + 24, 8)
                storeVec(s4, o + 32, 8); storeVec(s5, o + 40, 8); storeVec(s6, o + 48, 8); storeVec(s7, o + 56, 8)
                continue
            }
            for r in 0..<rows {
                let row = p + r * cols + c0
                var j = 0
                while j < width {
                    let n = min(8, width - j)
                    storeVec(loadVec(UnsafePointer(d + c0 + j), n) + loadVec(row + j, n), d + c0 + j, n)
                    j += n
                }
            }
        }
    }
    return out
}

/// A fully connected layer: `x·Wᵀ + b` over the last axis of `x`, with `W` of shape
/// `[out, in]` as in PyTorch. The bias is written into the output before the GEMM, which
/// then accumulates onto it. A frozen (untracked) weight gets no weight-gradient GEMM.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    OpProfile.run("linear") {
        precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF)")
        if let bias { precondition(bias.shape == [outF], "linear: bias \(bias.shape) must be [\(outF)]") }
        let rows = x.count / max(inF, 1)
        FlopCounter.add(rows * inF * outF)
        var out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])
        let c = out.mutablePointer()
        BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: outF, k: inF,
                   a: x.pointer, lda: inF, b: weight.pointer, ldb: inF, c: c, ldc: outF, columnBias: bias?.pointer)
        if let tape = Tape.active(for: x, weight, bias) {
            // The input is kept only for the weight gradient: a frozen layer keeps no activation.
            let ux = tape.tracks(weight) ? x.untracked : nil, uw = weight.untracked, xShape = x.shape
            out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
                var gx: Tensor?, gw: Tensor?, gb: Tensor?
                if needs[0] {
                    var t = Tensor(uninitializedShape: xShape)
                    BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: inF, k: outF,
                               a: g.pointer, lda: outF, b: uw.pointer, ldb: inF, c: t.mutablePointer(), ldc: inF)
                    gx = t
                }
                if needs[1], let ux {
                    var t = Tensor(uninitializedShape: [outF, inF])
                    BLAS.sgemm(transposeA: true, transposeB: false, m: outF, n: inF, k: rows,
                               a: g.pointer, lda: outF, b: ux.pointer, ldb: inF, c: t.mutablePointer(), ldc: inF)
                    gw = t
                }
                if needs[2] { gb = columnSums(g.pointer, rows: rows, cols: outF) }
                return [gx, gw, gb]
            }
        }
        return out
    }
}

/// `linear` followed by SSF's scale-shift, for inference: `(x·Wᵀ + b) ⊙ γ + β` with one pass after
/// the matrix product (no bias pre-fill, no second output). `scale` and `shift` are `[S, out]`: S = 1
/// for one task, or one row per sample, the rows of `x` (`[N, …, in]`, N a multiple of S) split
/// evenly among them. Records nothing: callers run it only when no tape tracks its inputs.
public func linearScaleShift(_ x: Tensor, weight: Tensor, bias: Tensor?, scale: Tensor, shift: Tensor) -> Tensor {
    OpProfile.run("linear") {
        precondition(weight.rank == 2, "linearScaleShift: weight must be [out, in], got \(weight.shape)")
        let inF = weight.shape[1], outF = weight.shape[0]
        let samples = scale.shape.first ?? 1
        precondition(x.shape.last == inF, "linearScaleShift: input \(x.shape) does not end in \(inF)")
        precondition(scale.rank == 2 && scale.shape == [samples, outF] && shift.shape == scale.shape && (bias?.shape ?? [outF]) == [outF],
                     "linearScaleShift: scale \(scale.shape), shift \(shift.shape) must be [samples, \(outF)], bias [\(outF)]")
        let rows = x.count / max(inF, 1)
        precondition(samples > 0 && rows % samples == 0 && (samples == 1 || x.shape[0] % samples == 0),
                     "linearScaleShift: \(samples) vector rows do not divide the input \(x.shape)")
        FlopCounter.add(rows * inF * outF)
        // The bias folded into the shift: (y + b)·γ + β = y·γ + (b·γ + β).
        var combined = Tensor(uninitializedShape: [samples, outF])
        let cp = combined.mutablePointer(), sp = scale.pointer, hp = shift.pointer
        for i in 0..<(samples * outF) { cp[i] = hp[i] + (bias.map { $0.pointer[i % outF] } ?? 0) * sp[i] }
        var out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])
        let c = out.mutablePointer()
        if samples == 1 {
            // One task: the site is the product's epilogue.
            BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: outF, k: inF,
                       a: x.pointer, lda: inF, b: weight.pointer, ldb: inF, c: c, ldc: outF,
                       columnScale: sp, columnBias: UnsafePointer(cp))
            return out
        }
        BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: outF, k: inF,
                   a: x.pointer, lda: inF, b: weight.pointer, ldb: inF, beta: 0, c: c, ldc: outF)
        let rowsPerSample = rows / samples
        let shiftPointer = UnsafePointer(cp)
        Threading.parallelFor(rows, minimumPerThread: max(1, 8192 / max(outF, 1))) { range in
            for r in range {
                let n = r / rowsPerSample
                let a = sp + n * outF, b = shiftPointer + n * outF, row = c + r * outF
                for j in 0..<outF { row[j] = row[j] * a[j] + b[j] }
            }
        }
        return out
    }
}

/// SSF tuning's `scaleShift(linear(x, W, b), γ, β)` over a frozen layer, as one product with the
/// site folded into the layer, the way `ssf merge` folds it for deployment: `x·(γ⊙W)ᵀ + (γ⊙b + β)`,
/// γ scaling W's output rows. No pass over the output applies the site, and the backward needs no
/// g·γ pass either: dx = g·(γ⊙W), and Σ g·(xWᵀ + b) = (Σ g·y − β·Σ g)/γ comes from the output y
/// in one reading pass. Differentiable in `x`, `scale` and `shift` only (`weight` and `bias` must
/// be untracked); every |γ| must exceed 1e-3 (callers check `foldsScaleShift`). Where the engine's
/// GEMM runs the product, γ is its per-column scale forward and its inner-dimension scale backward,
/// so no folded weight exists; elsewhere the folded weight is built, and rebuilt in the backward.
public func linearFoldedScaleShift(_ x: Tensor, weight: Tensor, bias: Tensor?, scale: Tensor, shift: Tensor) -> Tensor {
    foldedScaleShiftLinear(x, throughGELU: false, weight: weight, bias: bias, scale: scale, shift: shift)
}

/// `linearFoldedScaleShift(gelu(u), …)` as one op, the second half of a transformer MLP under SSF
/// tuning: the backward's input-gradient product multiplies by GELU′(u) as it stores, so the
/// gradient through the GELU costs no pass of its own, and GELU's output is not kept (the frozen
/// layer needs no weight gradient). Differentiable in `u`, `scale` and `shift`.
public func geluLinearFoldedScaleShift(_ u: Tensor, weight: Tensor, bias: Tensor?, scale: Tensor, shift: Tensor) -> Tensor {
    foldedScaleShiftLinear(u, throughGELU: true, weight: weight, bias: bias, scale: scale, shift: shift)
}

private func foldedScaleShiftLinear(_ input: Tensor, throughGELU: Bool, weight: Tensor, bias: Tensor?, scale: Tensor,
                                    shift: Tensor) -> Tensor {
    let name = throughGELU ? "geluLinearFoldedScaleShift" : "linearFoldedScaleShift"
    // The GELU's forward is timed as an activation of its own.
    let x = throughGELU ? gelu(input.untracked) : input
    return OpProfile.run("linear") {
        precondition(weight.rank == 2, "\(name): weight must be [out, in], got \(weight.shape)")
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(x.shape.last == inF, "\(name): input \(x.shape) does not end in \(inF)")
        precondition(scale.shape == [outF] && shift.shape == [outF] && (bias?.shape ?? [outF]) == [outF],
                     "\(name): scale \(scale.shape), shift \(shift.shape) and bias must be [\(outF)]")
        precondition(foldsScaleShift(scale), "\(name): some |γ| ≤ 1e-3; use linear then scaleShift")
        let rows = x.count / max(inF, 1)
        FlopCounter.add(rows * inF * outF)
        var out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])
        let c = out.mutablePointer(), sp = scale.pointer, hp = shift.pointer
        // The folded bias is the product's epilogue; so is γ where the engine's kernel runs it
        // (elsewhere γ is folded into a copy of the weight's rows, which costs no pass over C).
        var combined = Tensor(uninitializedShape: [outF])
        let cp = combined.mutablePointer()
        for j in 0..<outF { cp[j] = (bias.map { $0.pointer[j] } ?? 0) * sp[j] + hp[j] }
        if BLAS.ownKernelApplies(transposeA: false, n: outF, k: inF) {
            BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: outF, k: inF, a: x.pointer, lda: inF,
                       b: weight.pointer, ldb: inF, c: c, ldc: outF, columnScale: sp, columnBias: UnsafePointer(cp))
        } else {
            let folded = foldedRows(weight, scale)
            BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: outF, k: inF, a: x.pointer, lda: inF,
                       b: folded.pointer, ldb: inF, c: c, ldc: outF, columnBias: UnsafePointer(cp))
        }
        if let tape = Tape.active(for: input, scale, shift) {
            precondition(!tape.tracks(weight) && !(bias.map(tape.tracks) ?? false), "\(name): the layer must be frozen")
            let y = out.untracked, uw = weight.untracked, us = scale.untracked, uh = shift.untracked, xShape = x.shape
            // Through the GELU, the backward needs its input (not its output).
            let geluInput = throughGELU ? input.untracked : nil
            out = tape.record(out, inputs: [input, scale, shift]) { g, needs in
                var gx: Tensor?, gs: Tensor?, gb: Tensor?
                if needs[0] {
                    // g · diag(γ) · W (⊙ GELU′(u)): γ scales W's rows as the engine's kernel packs
                    // them, or a copy; the GELU factor is applied as the product is stored.
                    var t = Tensor(uninitializedShape: xShape)
                    let u = geluInput?.pointer
                    if BLAS.ownKernelApplies(transposeA: false, n: inF, k: outF) {
                        BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: inF, k: outF, a: g.pointer, lda: outF,
                                   b: uw.pointer, ldb: inF, c: t.mutablePointer(), ldc: inF, innerScale: us.pointer,
                                   geluInput: u, ldg: inF)
                    } else {
                        let w = foldedRows(uw, us)
                        BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: inF, k: outF, a: g.pointer, lda: outF,
                                   b: w.pointer, ldb: inF, c: t.mutablePointer(), ldc: inF, geluInput: u, ldg: inF)
                    }
                    withExtendedLifetime(geluInput) {}
                    gx = t
                }
                if needs[1] || needs[2] {
                    let sums = channelBackward(g, source: y, scale: nil, .last)
                    if needs[1] { gs = scaleGradientFromOutput(sums.gSource!, sums.g, scale: us, shift: uh) }
                    gb = sums.g
                }
                return [gx, gs, needs[2] ? gb : nil]
            }
        }
        return out
    }
}

/// `weight` (`[out, in]`) with output row o scaled by `scale[o]`.
private func foldedRows(_ weight: Tensor, _ scale: Tensor) -> Tensor {
    let outF = weight.shape[0], inF = weight.shape[1]
    var w = Tensor(uninitializedShape: [outF, inF])
    let d = w.mutablePointer(), s = weight.pointer, sp = scale.pointer
    Threading.parallelFor(outF, minimumPerThread: max(1, 16384 / max(inF, 1))) { range in
        for o in range { mapVecSerial(s + o * inF, d + o * inF, 0, inF, VecAffine(a: Vec(repeating: sp[o]), b: Vec())) }
    }
    return w
}
