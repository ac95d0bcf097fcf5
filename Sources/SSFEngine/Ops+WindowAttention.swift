// Direct kernels for attention over small windows: one (window, head) of at most 56 tokens with
// 32 channels per head, Swin's shape (7×7 windows, 32-channel heads at every stage).
//
// At that size a BLAS call spends more time entering, packing and leaving than multiplying
// (49×49×32 products: ~35–55 GFLOP/s on an AVX2 core, against ~100 for large GEMMs). These kernels
// keep a head's operands in L1: keys (and, for the backward, values) are transposed once into a
// 32×56 panel, so q·kᵀ is rows of q times the panel, two rows at a time; scale, bias, mask and
// softmax run in three passes over the head's block of scores; and P·V (and every product of the
// backward) accumulates two output rows of 32 channels at a time. The next head's (or window's)
// rows are prefetched while one computes.

import CBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Spreads the prefetching of the next (window, head)'s rows (its q, k, v slices and output rows)
/// over this one's kernel work: a few 64-byte lines per pair of rows, so they arrive while this
/// head computes. Issued all at once, the requests would stall on the cache's miss buffers; not
/// issued, these small products wait on memory for about as long as they compute.
struct WindowPrefetch {
    /// `rows` rows of `floats` floats, `stride` floats apart.
    struct Rows {
        let base: UnsafePointer<Float>
        let rows: Int, stride: Int, floats: Int
        let write: Bool
    }
    private var ranges: [Rows] = []
    private var range = 0, row = 0, offset = 0, perIssue = 0

    /// Starts on `list`, at a rate that covers it within `pairs` calls of `issue()`.
    mutating func start(_ list: [Rows], pairs: Int) {
        ranges.removeAll(keepingCapacity: true)
        ranges.append(contentsOf: list)
        let lines = list.reduce(0) { $0 + $1.rows * (($1.floats + 15) / 16) }
        perIssue = (lines + pairs - 1) / max(pairs, 1)
        range = 0; row = 0; offset = 0
    }

    @inline(__always) mutating func issue() {
        var n = perIssue
        while n > 0 && range < ranges.count {
            let r = ranges[range]
            let p = r.base + row * r.stride + offset
            if r.write { ssf_prefetch_write(p) } else { ssf_prefetch(p) }
            n -= 1
            offset += 16
            if offset >= r.floats {
                offset = 0
                row += 1
                if row == r.rows { row = 0; range += 1 }
            }
        }
    }
}

/// Tokens a direct window kernel holds per row (seven 8-lane vectors).
let windowKernelTokens = 56
/// Channels per head the direct window kernels are written for.
let windowKernelHeadDim = 32

/// Whether `scaledDotProductAttention` uses the direct window kernels where they apply (tokens ≤ 56,
/// 32 channels per head). Off, every product goes through BLAS; tests compare the two, and
/// `SSF_WINDOW_ATTENTION=blas` turns them off for a whole process (to measure one against the other).
public enum WindowAttentionKernels {
    nonisolated(unsafe) public static var enabled = getenv("SSF_WINDOW_ATTENTION").map { String(cString: $0) != "blas" } ?? true

    static func applies(tokens: Int, headDim: Int) -> Bool {
        enabled && tokens <= windowKernelTokens && headDim == windowKernelHeadDim
    }
}

/// Per-thread scratch of the window kernels: two 32×56 panels (zero beyond the tokens) and two
/// 56×56 score blocks.
struct WindowScratch {
    let panelK: UnsafeMutablePointer<Float>
    let panelV: UnsafeMutablePointer<Float>
    let scores: UnsafeMutablePointer<Float>
    let grads: UnsafeMutablePointer<Float>

    init() {
        let panel = windowKernelHeadDim * windowKernelTokens, block = windowKernelTokens * windowKernelTokens
        panelK = .allocate(capacity: panel); panelK.initialize(repeating: 0, count: panel)
        panelV = .allocate(capacity: panel); panelV.initialize(repeating: 0, count: panel)
        scores = .allocate(capacity: block); scores.initialize(repeating: 0, count: block)
        grads = .allocate(capacity: block); grads.initialize(repeating: 0, count: block)
    }

    func deallocate() { panelK.deallocate(); panelV.deallocate(); scores.deallocate(); grads.deallocate() }
}

/// `panel[c·56 + j] = src[j·ld + c]` for the `rows` tokens j and 32 channels c (columns past `rows`
/// keep the zeros the scratch was made with).
@inline(__always)
func windowTranspose(_ src: UnsafePointer<Float>, ld: Int, rows: Int, _ panel: UnsafeMutablePointer<Float>) {
    for j in 0..<rows {
        let s = src + j * ld
        for c in 0..<windowKernelHeadDim { panel[c * windowKernelTokens + j] = s[c] }
    }
}

/// `out[i·56 + j] = Σ_c a[i·lda + c] · panel[c·56 + j]` for i < rows and all 56 columns j: two
/// rows at a time, columns 0–31 and then 32–55 (8 and 6 accumulators, so that they, the two
/// broadcasts and the panel vector fit in the 16 AVX2 registers).
@inline(__always)
func windowPanelProduct(_ a: UnsafePointer<Float>, lda: Int, rows: Int, _ panel: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        _ prefetch: inout WindowPrefetch) {
    var i = 0
    while i < rows {
        prefetch.issue()
        let i1 = min(i + 1, rows - 1)
        let a0 = a + i * lda, a1 = a + i1 * lda
        let o0 = out + i * windowKernelTokens, o1 = out + i1 * windowKernelTokens
        do {
            var x0 = Vec(), x1 = Vec(), x2 = Vec(), x3 = Vec()
            var y0 = Vec(), y1 = Vec(), y2 = Vec(), y3 = Vec()
            for c in 0..<windowKernelHeadDim {
                let p = panel + c * windowKernelTokens
                let s0 = Vec(repeating: a0[c]), s1 = Vec(repeating: a1[c])
                var k = loadVec(p, 8); x0 = x0.addingProduct(s0, k); y0 = y0.addingProduct(s1, k)
                k = loadVec(p + 8, 8); x1 = x1.addingProduct(s0, k); y1 = y1.addingProduct(s1, k)
                k = loadVec(p + 16, 8); x2 = x2.addingProduct(s0, k); y2 = y2.addingProduct(s1, k)
                k = loadVec(p + 24, 8); x3 = x3.addingProduct(s0, k); y3 = y3.addingProduct(s1, k)
            }
            storeVec(x0, o0, 8); storeVec(x1, o0 + 8, 8); storeVec(x2, o0 + 16, 8); storeVec(x3, o0 + 24, 8)
            storeVec(y0, o1, 8); storeVec(y1, o1 + 8, 8); storeVec(y2, o1 + 16, 8); storeVec(y3, o1 + 24, 8)
        }
        do {
            var x4 = Vec(), x5 = Vec(), x6 = Vec()
            var y4 = Vec(), y5 = Vec(), y6 = Vec()
            for c in 0..<windowKernelHeadDim {
                let p = panel + c * windowKernelTokens + 32
                let s0 = Vec(repeating: a0[c]), s1 = Vec(repeating: a1[c])
                var k = loadVec(p, 8); x4 = x4.addingProduct(s0, k); y4 = y4.addingProduct(s1, k)
                k = loadVec(p + 8, 8); x5 = x5.addingProduct(s0, k); y5 = y5.addingProduct(s1, k)
                k = loadVec(p + 16, 8); x6 = x6.addingProduct(s0, k); y6 = y6.addingProduct(s1, k)
            }
            storeVec(x4, o0 + 32, 8); storeVec(x5, o0 + 40, 8); storeVec(x6, o0 + 48, 8)
            storeVec(y4, o1 + 32, 8); storeVec(y5, o1 + 40, 8); storeVec(y6, o1 + 48, 8)
        }
        i += 2
    }
}

/// `out[r·ldo + c] = alpha · Σ_{j < inner} coef[r·cr + j·cc] · src[j·lds + c]` for r < rows and
/// the 32 channels c: P·V (cr 56, cc 1) or Pᵀ·dO (cr 1, cc 56) and the like.
@inline(__always)
func windowCombine(_ coef: UnsafePointer<Float>, cr: Int, cc: Int, rows: Int, inner: Int,
                   _ src: UnsafePointer<Float>, lds: Int, alpha: Float, _ out: UnsafeMutablePointer<Float>, ldo: Int,
                   _ prefetch: inout WindowPrefetch) {
    let scale = Vec(repeating: alpha)
    var r = 0
    while r < rows {
        prefetch.issue()
        let r1 = min(r + 1, rows - 1)
        let c0p = coef + r * cr, c1p = coef + r1 * cr
        var x0 = Vec(), x1 = Vec(), x2 = Vec(), x3 = Vec()
        var y0 = Vec(), y1 = Vec(), y2 = Vec(), y3 = Vec()
        for j in 0..<inner {
            let s = src + j * lds
            let w0 = Vec(repeating: c0p[j * cc]), w1 = Vec(repeating: c1p[j * cc])
            var v = loadVec(s, 8); x0 = x0.addingProduct(w0, v); y0 = y0.addingProduct(w1, v)
            v = loadVec(s + 8, 8); x1 = x1.addingProduct(w0, v); y1 = y1.addingProduct(w1, v)
            v = loadVec(s + 16, 8); x2 = x2.addingProduct(w0, v); y2 = y2.addingProduct(w1, v)
            v = loadVec(s + 24, 8); x3 = x3.addingProduct(w0, v); y3 = y3.addingProduct(w1, v)
        }
        let o0 = out + r * ldo, o1 = out + r1 * ldo
        storeVec(x0 * scale, o0, 8); storeVec(x1 * scale, o0 + 8, 8); storeVec(x2 * scale, o0 + 16, 8); storeVec(x3 * scale, o0 + 24, 8)
        storeVec(y0 * scale, o1, 8); storeVec(y1 * scale, o1 + 8, 8); storeVec(y2 * scale, o1 + 16, 8); storeVec(y3 * scale, o1 + 24, 8)
        r += 2
    }
}

/// Bias and mask laid out for the kernels' 56-float rows: `bias` ([heads, T, T], or none) as
/// [heads, T, 56] with −∞ past the T columns, so the padding's probabilities come out 0, and `mask`
/// ([nW, T, T]) as [nW, T, 56] with zeros there.
struct WindowAddends {
    let bias: UnsafeMutablePointer<Float>
    let mask: UnsafeMutablePointer<Float>?

    init(bias: UnsafePointer<Float>?, heads: Int, mask: UnsafePointer<Float>?, windows: Int, tokens: Int) {
        self.bias = Self.padded(bias, rows: heads * tokens, tokens: tokens, fill: -.infinity)
        self.mask = mask.map { Self.padded($0, rows: windows * tokens, tokens: tokens, fill: 0) }
    }

    /// `rows` rows of `tokens` values (zeros without `source`) in rows of 56, `fill` past the tokens.
    private static func padded(_ source: UnsafePointer<Float>?, rows: Int, tokens: Int, fill: Float) -> UnsafeMutablePointer<Float> {
        let row = windowKernelTokens
        let out = UnsafeMutablePointer<Float>.allocate(capacity: rows * row)
        for r in 0..<rows {
            let dst = out + r * row
            if let source { dst.update(from: source + r * tokens, count: tokens) } else { dst.update(repeating: 0, count: tokens) }
            (dst + tokens).update(repeating: fill, count: row - tokens)
        }
        return out
    }

    func deallocate() { bias.deallocate(); mask?.deallocate() }
}

/// Rows of raw q·kᵀ in `s` (56 apart) become probabilities in place: softmax(raw·alpha + bias +
/// mask) with `bias` and `mask` in `WindowAddends`' layout (T rows of 56), zero past the T columns.
/// Three passes over the block (scores and row maxima, exponentials and row sums, scaling), so the
/// exponentials of all rows form one loop without a reduction between rows.
@inline(__always)
func windowSoftmax(_ s: UnsafeMutablePointer<Float>, tokens: Int, alpha: Float, bias: UnsafePointer<Float>, mask: UnsafePointer<Float>?) {
    let scale = Vec(repeating: alpha)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * windowKernelTokens) { buffer in
        let maxima = buffer.baseAddress!, sums = maxima + windowKernelTokens
        for i in 0..<tokens {
            let row = s + i * windowKernelTokens, br = bias + i * windowKernelTokens
            let mr = mask.map { $0 + i * windowKernelTokens }
            var best = Vec(repeating: -.infinity)
            for t in 0..<7 {
                var v = loadVec(row + 8 * t, 8) * scale + loadVec(br + 8 * t, 8)
                if let mr { v += loadVec(mr + 8 * t, 8) }
                storeVec(v, row + 8 * t, 8)
                best = vmax(best, v)
            }
            let m = hmax(best)
            maxima[i] = m == -.infinity ? 0 : m
        }
        for i in 0..<tokens {
            let row = s + i * windowKernelTokens
            let vm = Vec(repeating: maxima[i])
            var total = Vec()
            for t in 0..<7 {
                let e = vexp(loadVec(row + 8 * t, 8) - vm)
                total += e
                storeVec(e, row + 8 * t, 8)
            }
            sums[i] = total.sum()
        }
        for i in 0..<tokens {
            let row = s + i * windowKernelTokens
            let inverse = Vec(repeating: 1 / sums[i])
            for t in 0..<7 { storeVec(loadVec(row + 8 * t, 8) * inverse, row + 8 * t, 8) }
        }
    }
}

/// The softmax backward over rows: `ds = P ⊙ (dP − Σ_j dP·P)` in place of dP (56 apart), and, with
/// `biasGrad` (T rows of 56), `biasGrad += ds`.
@inline(__always)
func windowSoftmaxBackward(_ ds: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, tokens: Int,
                           biasGrad: UnsafeMutablePointer<Float>?) {
    for i in 0..<tokens {
        let row = ds + i * windowKernelTokens, pr = p + i * windowKernelTokens
        var dot = Vec()
        for t in 0..<7 { dot = dot.addingProduct(loadVec(row + 8 * t, 8), loadVec(pr + 8 * t, 8)) }
        let d = Vec(repeating: dot.sum())
        for t in 0..<7 { storeVec(loadVec(pr + 8 * t, 8) * (loadVec(row + 8 * t, 8) - d), row + 8 * t, 8) }
        if let biasGrad {
            let g = biasGrad + i * windowKernelTokens
            for t in 0..<7 { storeVec(loadVec(g + 8 * t, 8) + loadVec(row + 8 * t, 8), g + 8 * t, 8) }
        }
    }
}
