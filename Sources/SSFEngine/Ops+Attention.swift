// Fused multi-head scaled-dot-product attention on a packed qkv tensor, with optional additive bias and window mask.
import Synchronization

/// Multi-head attention over a packed `qkv` tensor `[B, T, 3·D]` laid out as timm's fused
/// `qkv` Linear output (`[B, T, 3, heads, D/heads]`). Returns `[B, T, D]` with the heads merged.
///
/// Scores are `q·kᵀ·scale + bias[h] + mask[b mod nW]`, where `bias` is `[heads, T, T]`
/// (Swin's relative position bias; differentiable) and `mask` is a constant `[nW, T, T]`
/// (Swin's shifted-window mask). Heads are read and written in place through BLAS leading
/// dimensions, so q, k and v are never split or transposed into copies. One head's T×T scores
/// exist at a time per thread; the backward recomputes them (one extra q·kᵀ GEMM per head)
/// instead of keeping B·heads·T² probabilities alive from the forward pass.
public func scaledDotProductAttention(qkv: Tensor, heads: Int, scale: Float? = nil, bias: Tensor? = nil, mask: Tensor? = nil) -> Tensor {
    OpProfile.run("attention") { GemmRecorder.excluding {
        precondition(qkv.rank == 3 && qkv.shape[2] % (3 * heads) == 0, "attention: qkv \(qkv.shape) is not [B, T, 3·heads·d]")
        let (batch, tokens, width) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
        let headDim = width / heads
        let alpha = scale ?? 1 / Float(headDim).squareRoot()
        if let bias { precondition(bias.shape == [heads, tokens, tokens], "attention: bias \(bias.shape) must be [\(heads), \(tokens), \(tokens)]") }
        let windows = mask?.shape[0] ?? 1
        if let mask {
            precondition(mask.shape == [windows, tokens, tokens] && batch % windows == 0,
                         "attention: mask \(mask.shape) must be [nW, \(tokens), \(tokens)] with nW dividing the batch \(batch)")
        }
        FlopCounter.add(2 * batch * heads * tokens * tokens * headDim)
        let tape = Tape.active(for: qkv, bias)
        let tt = tokens * tokens
        var out = Tensor(uninitializedShape: [batch, tokens, width])
        let o = out.mutablePointer(), src = qkv.pointer
        let biasPointer = bias?.pointer, maskPointer = mask?.pointer
        let rowStride = 3 * width
        /// softmax(q·kᵀ·scale + bias + mask) of head (b, h) into `s` (T×T).
        /// (`pack`: scratch of `packCount` floats for the per-head products.)
        /// The next head's rows are prefetched while the softmax runs (`prefetch`, started by the caller).
        func probabilities(_ q: UnsafePointer<Float>, _ b: Int, _ h: Int, _ s: UnsafeMutablePointer<Float>, _ pack: UnsafeMutablePointer<Float>,
                           _ prefetch: inout WindowPrefetch) {
            BLAS.smallSgemm(transposeA: false, transposeB: true, m: tokens, n: tokens, k: headDim, alpha: alpha,
                            a: q, lda: rowStride, b: q + width, ldb: rowStride, c: s, ldc: tokens, pack: pack)
            if let biasPointer { zipVec(UnsafePointer(s), biasPointer + h * tt, s, tt, VecAdd()) }
            if let maskPointer { zipVec(UnsafePointer(s), maskPointer + (b % windows) * tt, s, tt, VecAdd()) }
            for r in 0..<tokens {
                prefetch.issue()
                softmaxRow(s + r * tokens, s + r * tokens, tokens)
            }
        }
        let packCount = BLAS.smallPackCount(n: max(tokens, headDim), k: max(tokens, headDim))
        // Small windows (Swin's 49 tokens, 32 channels per head) run on the direct kernels.
        let direct = WindowAttentionKernels.applies(tokens: tokens, headDim: headDim)
        let paddedRows = tokens * windowKernelTokens
        let pairs = (tokens + 1) / 2
        // A window's rows (qkv and output) fetched ahead whole while they fit beside the current
        // window in L2 (Swin's first two stages); otherwise one head's slices at a time.
        let wholeWindows = tokens * (2 * rowStride + width) * MemoryLayout<Float>.size <= 256 << 10
        /// The direct kernels' softmax(q·kᵀ·scale + bias + mask) of head (b, h) into `w.scores`
        /// (rows 56 apart), its keys transposed into `w.panelK`.
        func windowProbabilities(_ q: UnsafePointer<Float>, _ b: Int, _ h: Int, _ w: WindowScratch, _ addends: WindowAddends,
                                 _ prefetch: inout WindowPrefetch) {
            windowTranspose(q + width, ld: rowStride, rows: tokens, w.panelK)
            windowPanelProduct(q, lda: rowStride, rows: tokens, w.panelK, w.scores, &prefetch)
            windowSoftmax(w.scores, tokens: tokens, alpha: alpha, bias: addends.bias + h * paddedRows,
                          mask: addends.mask.map { $0 + (b % windows) * paddedRows })
        }
        /// Starts prefetching what the head after `bh` reads and writes (with whole windows: the next
        /// window, when `bh` is its window's first head): rows of `packed` tensors ([B, T, 3·width],
        /// their q, k, v slices) and of `merged` ones ([B, T, width]), over `passes` kernel passes.
        func startPrefetch(_ prefetch: inout WindowPrefetch, after bh: Int, packed: [(UnsafePointer<Float>, write: Bool)],
                           merged: [(UnsafePointer<Float>, write: Bool)], passes: Int) {
            let b = bh / heads, h = bh % heads
            if wholeWindows {
                guard h == 0 && b + 1 < batch else { return }
                prefetch.start(packed.map { .init(base: $0.0 + (b + 1) * tokens * rowStride, rows: 1, stride: 0, floats: tokens * rowStride, write: $0.write) }
                               + merged.map { .init(base: $0.0 + (b + 1) * tokens * width, rows: 1, stride: 0, floats: tokens * width, write: $0.write) },
                               pairs: heads * passes * pairs)
            } else if bh + 1 < batch * heads {
                let (nb, nh) = ((bh + 1) / heads, (bh + 1) % heads)
                var list: [WindowPrefetch.Rows] = []
                for (p, write) in packed {
                    for slice in 0..<3 {
                        list.append(.init(base: p + nb * tokens * rowStride + slice * width + nh * headDim, rows: tokens, stride: rowStride,
                                          floats: headDim, write: write))
                    }
                }
                for (p, write) in merged {
                    list.append(.init(base: p + nb * tokens * width + nh * headDim, rows: tokens, stride: width, floats: headDim, write: write))
                }
                prefetch.start(list, pairs: passes * pairs)
            }
        }
        func windowAddends() -> WindowAddends {
            WindowAddends(bias: biasPointer, heads: heads, mask: maskPointer, windows: windows, tokens: tokens)
        }
        if direct {
            let addends = windowAddends()
            defer { addends.deallocate() }
            OpProfile.addFlops(4 * batch * heads * tokens * tokens * headDim)
            Threading.parallelFor(batch * heads) { range in
                let w = WindowScratch()
                defer { w.deallocate() }
                var prefetch = WindowPrefetch()
                for bh in range {
                    let b = bh / heads, h = bh % heads
                    startPrefetch(&prefetch, after: bh, packed: [(src, false)], merged: [(UnsafePointer(o), true)], passes: 2)
                    let q = src + b * tokens * rowStride + h * headDim
                    windowProbabilities(q, b, h, w, addends, &prefetch)
                    windowCombine(w.scores, cr: windowKernelTokens, cc: 1, rows: tokens, inner: tokens, q + 2 * width, lds: rowStride,
                                  alpha: 1, o + b * tokens * width + h * headDim, ldo: width, &prefetch)
                }
            }
        } else {
            Threading.parallelFor(batch * heads) { range in
                let s = UnsafeMutablePointer<Float>.allocate(capacity: tt)
                let pack = UnsafeMutablePointer<Float>.allocate(capacity: packCount)
                defer { s.deallocate(); pack.deallocate() }
                var prefetch = WindowPrefetch()
                for bh in range {
                    let b = bh / heads, h = bh % heads
                    startPrefetch(&prefetch, after: bh, packed: [(src, false)], merged: [(UnsafePointer(o), true)], passes: 2)
                    let q = src + b * tokens * rowStride + h * headDim
                    probabilities(q, b, h, s, pack, &prefetch)
                    BLAS.smallSgemm(transposeA: false, transposeB: false, m: tokens, n: headDim, k: tokens,
                                    a: s, lda: tokens, b: q + 2 * width, ldb: rowStride, c: o + b * tokens * width + h * headDim, ldc: width,
                                    pack: pack)
                }
            }
        }
        /// The backward on the direct kernels: per head, P is recomputed, then dV = Pᵀ·dO, dP = dO·Vᵀ,
        /// dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale·dS·K, dK = scale·dSᵀ·Q; the bias gradient
        /// (Σ over windows of dS) is summed per thread and then across threads.
        func windowBackward(_ g: Tensor, _ qp: UnsafePointer<Float>, _ dqkv: inout Tensor, needsInput: Bool, needsBias: Bool) -> [Tensor?] {
            OpProfile.addFlops(10 * batch * heads * tokens * tokens * headDim)
            var gBias: Tensor? = needsBias ? Tensor.zeros([heads, tokens, tokens]) : nil
            let dq = dqkv.mutablePointer(), gp = g.pointer
            let gb = gBias?.mutablePointer()
            let merge = Mutex(())
            let addends = windowAddends()
            defer { addends.deallocate() }
            Threading.parallelFor(batch * heads) { range in
                let w = WindowScratch()
                // This thread's share of the bias gradient, in rows of 56.
                let partial: UnsafeMutablePointer<Float>? = gb == nil ? nil : .allocate(capacity: heads * paddedRows)
                partial?.initialize(repeating: 0, count: heads * paddedRows)
                defer { w.deallocate(); partial?.deallocate() }
                var prefetch = WindowPrefetch()
                for bh in range {
                    let b = bh / heads, h = bh % heads
                    startPrefetch(&prefetch, after: bh, packed: [(qp, false), (UnsafePointer(dq), true)], merged: [(gp, false)], passes: 5)
                    let q = qp + b * tokens * rowStride + h * headDim
                    windowProbabilities(q, b, h, w, addends, &prefetch)
                    let go = gp + b * tokens * width + h * headDim
                    let dqh = dq + b * tokens * rowStride + h * headDim
                    windowCombine(w.scores, cr: 1, cc: windowKernelTokens, rows: tokens, inner: tokens, go, lds: width,
                                  alpha: 1, dqh + 2 * width, ldo: rowStride, &prefetch)
                    windowTranspose(q + 2 * width, ld: rowStride, rows: tokens, w.panelV)
                    windowPanelProduct(go, lda: width, rows: tokens, w.panelV, w.grads, &prefetch)
                    windowSoftmaxBackward(w.grads, probabilities: w.scores, tokens: tokens, biasGrad: partial.map { $0 + h * paddedRows })
                    windowCombine(w.grads, cr: windowKernelTokens, cc: 1, rows: tokens, inner: tokens, q + width, lds: rowStride,
                                  alpha: alpha, dqh, ldo: rowStride, &prefetch)
                    windowCombine(w.grads, cr: 1, cc: windowKernelTokens, rows: tokens, inner: tokens, q, lds: rowStride,
                                  alpha: alpha, dqh + width, ldo: rowStride, &prefetch)
                }
                if let partial, let gb {
                    merge.withLock { _ in
                        for r in 0..<(heads * tokens) {
                            let from = partial + r * windowKernelTokens, to = gb + r * tokens
                            for j in 0..<tokens { to[j] += from[j] }
                        }
                    }
                }
            }
            return [needsInput ? dqkv : nil, gBias]
        }
        if let tape {
            let uqkv = qkv.untracked
            // `probabilities` reads bias and mask through raw pointers: keep their storage alive.
            let kept = (bias?.untracked, mask?.untracked)
            out = tape.record(out, inputs: [qkv, bias]) { g, needs in GemmRecorder.excluding {
                withExtendedLifetime(kept) {}
                var dqkv = Tensor(uninitializedShape: uqkv.shape)
                if direct {
                    return windowBackward(g, uqkv.pointer, &dqkv, needsInput: needs[0], needsBias: needs[1])
                }
                var dScores: Tensor? = needs[1] ? Tensor(uninitializedShape: [batch, heads, tokens, tokens]) : nil
                let dq = dqkv.mutablePointer(), gp = g.pointer, qp = uqkv.pointer
                let dsAll = dScores?.mutablePointer()
                Threading.parallelFor(batch * heads) { range in
                    let dsScratch = UnsafeMutablePointer<Float>.allocate(capacity: tt)
                    let prob = UnsafeMutablePointer<Float>.allocate(capacity: tt)
                    let pack = UnsafeMutablePointer<Float>.allocate(capacity: packCount)
                    defer { dsScratch.deallocate(); prob.deallocate(); pack.deallocate() }
                    var prefetch = WindowPrefetch()
                    for bh in range {
                        let b = bh / heads, h = bh % heads
                        startPrefetch(&prefetch, after: bh, packed: [(qp, false), (UnsafePointer(dq), true)], merged: [(gp, false)], passes: 4)
                        let q = qp + b * tokens * rowStride + h * headDim
                        probabilities(q, b, h, prob, pack, &prefetch)
                        let go = gp + b * tokens * width + h * headDim
                        let dqh = dq + b * tokens * rowStride + h * headDim
                        let ds = dsAll.map { $0 + bh * tt } ?? dsScratch
                        // dV = Pᵀ·dO ; dP = dO·Vᵀ
                        BLAS.smallSgemm(transposeA: true, transposeB: false, m: tokens, n: headDim, k: tokens,
                                        a: prob, lda: tokens, b: go, ldb: width, c: dqh + 2 * width, ldc: rowStride, pack: pack)
                        BLAS.smallSgemm(transposeA: false, transposeB: true, m: tokens, n: tokens, k: headDim,
                                        a: go, lda: width, b: q + 2 * width, ldb: rowStride, c: ds, ldc: tokens, pack: pack)
                        // dS = P ⊙ (dP − rowsum(dP ⊙ P))
                        for r in 0..<tokens {
                            prefetch.issue()
                            let row = ds + r * tokens, pr = prob + r * tokens
                            let dot = Vec(repeating: dotVec(UnsafePointer(row), UnsafePointer(pr), tokens))
                            zipVecSerial(UnsafePointer(row), pr, row, 0, tokens, SoftmaxInputGradient(dot: dot))
                        }
                        // dQ = scale·dS·K ; dK = scale·dSᵀ·Q
                        BLAS.smallSgemm(transposeA: false, transposeB: false, m: tokens, n: headDim, k: tokens, alpha: alpha,
                                        a: ds, lda: tokens, b: q + width, ldb: rowStride, c: dqh, ldc: rowStride, pack: pack)
                        BLAS.smallSgemm(transposeA: true, transposeB: false, m: tokens, n: headDim, k: tokens, alpha: alpha,
                                        a: ds, lda: tokens, b: q, ldb: rowStride, c: dqh + width, ldc: rowStride, pack: pack)
                    }
                }
                let gBias = dScores.map { $0.sum(axes: [0]) }
                dScores = nil
                return [needs[0] ? dqkv : nil, gBias]
            } }
        }
        return out
    } }
}

/// (dP − rowsum(dP ⊙ P)) ⊙ P for one row's lanes: the softmax's input gradient from the gradient
/// of its output, `dot` being the row's dP·P (a value type, so the loop needs no closure call).
struct SoftmaxInputGradient: VecBinary {
    let dot: Vec
    @inline(__always) func callAsFunction(_ dp: Vec, _ p: Vec) -> Vec { (dp - dot) * p }
}
