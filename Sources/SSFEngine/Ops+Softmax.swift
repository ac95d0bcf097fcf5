// Differentiable softmax and log-softmax over the last axis.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax of one row of `n` elements, written to `dst` (which may alias `src`). Two independent
/// accumulators in each reduction keep the max and sum dependency chains short, and a row whose
/// length is not a multiple of 8 ends with one full vector that overlaps the previous one (its
/// repeated lanes masked out of the sum and kept from being scaled twice) instead of a scalar tail.
@inline(__always)
func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    guard n >= 8 else { softmaxShortRow(src, dst, n); return }
    let body = n & ~7, overlap = 8 - (n - body)  // lanes of the last vector already covered
    var best0 = Vec(repeating: -.infinity), best1 = best0
    var j = 0
    while j + 16 <= n {
        best0 = vmax(best0, loadVec(src + j, 8))
        best1 = vmax(best1, loadVec(src + j + 8, 8))
        j += 16
    }
    if j + 8 <= n { best0 = vmax(best0, loadVec(src + j, 8)) }
    best1 = vmax(best1, loadVec(src + n - 8, 8))
    var m = hmax(vmax(best0, best1))
    if m == -.infinity { m = 0 }
    let vm = Vec(repeating: m)
    var acc0 = Vec(), acc1 = Vec()
    j = 0
    while j + 16 <= body {
        let e0 = vexp(loadVec(src + j, 8) - vm), e1 = vexp(loadVec(src + j + 8, 8) - vm)
        acc0 += e0; acc1 += e1
        storeVec(e0, dst + j, 8); storeVec(e1, dst + j + 8, 8)
        j += 16
    }
    if j < body {
        let e = vexp(loadVec(src + j, 8) - vm)
        acc0 += e
        storeVec(e, dst + j, 8)
    }
    let fresh = tailMask(overlap)
    if body < n {
        // With dst aliasing src the repeated lanes already hold their results: keep them.
        let e = vexp(loadVec(src + n - 8, 8) - vm)
        acc1 += e.replacing(with: 0, where: .!fresh)
        storeVec(e.replacing(with: loadVec(dst + n - 8, 8), where: .!fresh), dst + n - 8, 8)
    }
    let inv = Vec(repeating: 1 / (acc0 + acc1).sum())
    j = 0
    while j < body { storeVec(loadVec(dst + j, 8) * inv, dst + j, 8); j += 8 }
    if body < n {
        let v = loadVec(dst + n - 8, 8)
        storeVec((v * inv).replacing(with: v, where: .!fresh), dst + n - 8, 8)
    }
}

/// Softmax of a row shorter than one vector.
private func softmaxShortRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var m = -Float.infinity
    for j in 0..<n { m = max(m, src[j]) }
    if m == -.infinity { m = 0 }
    let e = vexp(loadVec(src, n) - Vec(repeating: m)).replacing(with: 0, where: tailMask(n))
    storeVec(e * Vec(repeating: 1 / e.sum()), dst, n)
}

/// Lanes at or beyond `valid` (for partial vectors at the end of a row).
@inline(__always)
func tailMask(_ valid: Int) -> SIMDMask<SIMD8<Int32>> {
    SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(valid))
}

/// Row-wise `f(row)` over the last axis, rows split across threads. Not recorded.
@inline(__always)
func mapRows(_ x: Tensor, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
    let n = x.shape.last ?? 1
    let rows = x.count / max(n, 1)
    var out = Tensor(uninitializedShape: x.shape)
    let d = out.mutablePointer(), s = x.pointer
    Threading.parallelFor(rows, minimumPerThread: max(1, 8192 / max(n, 1))) { range in
        for r in range { body(s + r * n, d + r * n, n) }
    }
    return out
}

/// Softmax over the last axis.
public func softmax(_ x: Tensor) -> Tensor {
    OpProfile.run("softmax") {
        var out = mapRows(x, softmaxRow)
        if let tape = Tape.active(for: x) {
            let y = out.untracked
            out = tape.record(out, inputs: [x]) { g, _ in
                // dx = y ⊙ (g − Σ g⊙y)
                var dx = Tensor(uninitializedShape: g.shape)
                let n = g.shape.last ?? 1, rows = g.count / max(n, 1)
                let gp = g.pointer, yp = y.pointer, dp = dx.mutablePointer()
                Threading.parallelFor(rows, minimumPerThread: max(1, 8192 / max(n, 1))) { range in
                    for r in range {
                        let dot = Vec(repeating: dotVec(gp + r * n, yp + r * n, n))
                        zipVec(gp + r * n, yp + r * n, dp + r * n, n) { ($0 - dot) * $1 }
                    }
                }
                return [dx]
            }
        }
        return out
    }
}

/// Log-softmax over the last axis.
public func logSoftmax(_ x: Tensor) -> Tensor {
    OpProfile.run("softmax") {
        var out = mapRows(x) { src, dst, n in
            var m = -Float.infinity
            for j in 0..<n { m = max(m, src[j]) }
            if m == -.infinity { m = 0 }
            let vm = Vec(repeating: m)
            var acc = Vec()
            var j = 0
            while j < n {
                let w = min(8, n - j)
                let e = vexp(loadVec(src + j, w) - vm)
                acc += w == 8 ? e : e.replacing(with: 0, where: tailMask(w))
                j += w
            }
            let shift = Vec(repeating: m + logf(acc.sum()))
            mapVec(src, dst, n) { $0 - shift }
        }
        if let tape = Tape.active(for: x) {
            let y = out.untracked
            out = tape.record(out, inputs: [x]) { g, _ in
                // dx = g − softmax(x) · Σ g
                var dx = Tensor(uninitializedShape: g.shape)
                let n = g.shape.last ?? 1, rows = g.count / max(n, 1)
                let gp = g.pointer, yp = y.pointer, dp = dx.mutablePointer()
                Threading.parallelFor(rows, minimumPerThread: max(1, 8192 / max(n, 1))) { range in
                    for r in range {
                        let total = Vec(repeating: sumVec(gp + r * n, n))
                        zipVec(gp + r * n, yp + r * n, dp + r * n, n) { $0 - vexp($1) * total }
                    }
                }
                return [dx]
            }
        }
        return out
    }
}
