// Direct kernels for attention over small windows: one (window, head) of at most 56 tokens with
// 32 channels per head, Swin's shape (7×7 windows, 32-channel heads at every stage).
//
// At that size a BLAS call spends more time entering, packing and leaving than multiplying
// (49×49×32 products: ~35–55 GFLOP/s on an AVX2 core, against ~100 for large GEMMs). These kernels
// keep a head's operands in L1: keys (and, for the backward, values) are transposed once into a
// 32×56 panel, so q·kᵀ is rows of q times the panel with two rows and seven vectors of scores in
// registers, scale, bias, mask and softmax run over the row while it is in L1, and P·V (and every
// product of the backward) accumulates two output rows of 32 channels at a time.

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

    static func apply(tokens: Int, headDim: Int) -> Bool {
        enabled && tokens <= windowKernelTokens && headDim == windowKernelHeadDim
    }
}

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }
@inline(__always) private func store8(_ v: Vec, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self) }

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
                var k = load8(p); x0 = x0.addingProduct(s0, k); y0 = y0.addingProduct(s1, k)
                k = load8(p + 8); x1 = x1.addingProduct(s0, k); y1 = y1.addingProduct(s1, k)
                k = load8(p + 16); x2 = x2.addingProduct(s0, k); y2 = y2.addingProduct(s1, k)
                k = load8(p + 24); x3 = x3.addingProduct(s0, k); y3 = y3.addingProduct(s1, k)
            }
            store8(x0, o0); store8(x1, o0 + 8); store8(x2, o0 + 16); store8(x3, o0 + 24)
            store8(y0, o1); store8(y1, o1 + 8); store8(y2, o1 + 16); store8(y3, o1 + 24)
        }
        do {
            var x4 = Vec(), x5 = Vec(), x6 = Vec()
            var y4 = Vec(), y5 = Vec(), y6 = Vec()
            for c in 0..<windowKernelHeadDim {
                let p = panel + c * windowKernelTokens + 32
                let s0 = Vec(repeating: a0[c]), s1 = Vec(repeating: a1[c])
                var k = load8(p); x4 = x4.addingProduct(s0, k); y4 = y4.addingProduct(s1, k)
                k = load8(p + 8); x5 = x5.addingProduct(s0, k); y5 = y5.addingProduct(s1, k)
                k = load8(p + 16); x6 = x6.addingProduct(s0, k); y6 = y6.addingProduct(s1, k)
            }
            store8(x4, o0 + 32); store8(x5, o0 + 40); store8(x6, o0 + 48)
            store8(y4, o1 + 32); store8(y5, o1 + 40); store8(y6, o1 + 48)
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
            var v = load8(s); x0 = x0.addingProduct(w0, v); y0 = y0.addingProduct(w1, v)
            v = load8(s + 8); x1 = x1.addingProduct(w0, v); y1 = y1.addingProduct(w1, v)
            v = load8(s + 16); x2 = x2.addingProduct(w0, v); y2 = y2.addingProduct(w1, v)
            v = load8(s + 24); x3 = x3.addingProduct(w0, v); y3 = y3.addingProduct(w1, v)
        }
        let o0 = out + r * ldo, o1 = out + r1 * ldo
        store8(x0 * scale, o0); store8(x1 * scale, o0 + 8); store8(x2 * scale, o0 + 16); store8(x3 * scale, o0 + 24)
        store8(y0 * scale, o1); store8(y1 * scale, o1 + 8); store8(y2 * scale, o1 + 16); store8(y3 * scale, o1 + 24)
        r += 2
    }
}

/// Bias and mask laid out for the kernels' 56-float rows: `bias` ([heads, T, T], or none) as
/// [heads, T, 56] with −∞ past the T columns, so the padding's probabilities come out 0, and `mask`
/// ([nW, T, T]) as [nW, T, 56] with zeros there.
struct WindowAddends {
    let bias: UnsafeMutablePointer<Float>
    let mask: UnsafeMutablePointer<Float>?
    let heads: Int, tokens: Int

    init(bias: UnsafePointer<Float>?, heads: Int, mask: UnsafePointer<Float>?, windows: Int, tokens: Int) {
        self.heads = heads
        self.tokens = tokens
        let row = windowKernelTokens
        self.bias = .allocate(capacity: heads * tokens * row)
        for r in 0..<(heads * tokens) {
            let dst = self.bias + r * row
            if let bias { dst.update(from: bias + r * tokens, count: tokens) } else { dst.update(repeating: 0, count: tokens) }
            (dst + tokens).update(repeating: -.infinity, count: row - tokens)
        }
        if let mask {
            let m = UnsafeMutablePointer<Float>.allocate(capacity: windows * tokens * row)
            for r in 0..<(windows * tokens) {
                let dst = m + r * row
                dst.update(from: mask + r * tokens, count: tokens)
                (dst + tokens).update(repeating: 0, count: row - tokens)
            }
            self.mask = m
        } else {
            self.mask = nil
        }
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
                var v = load8(row + 8 * t) * scale + load8(br + 8 * t)
                if let mr { v += load8(mr + 8 * t) }
                store8(v, row + 8 * t)
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
                let e = vexp(load8(row + 8 * t) - vm)
                total += e
                store8(e, row + 8 * t)
            }
            sums[i] = total.sum()
        }
        for i in 0..<tokens {
            let row = s + i * windowKernelTokens
            let inverse = Vec(repeating: 1 / sums[i])
            for t in 0..<7 { store8(load8(row + 8 * t) * inverse, row + 8 * t) }
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
        for t in 0..<7 { dot = dot.addingProduct(load8(row + 8 * t), load8(pr + 8 * t)) }
        let d = Vec(repeating: dot.sum())
        for t in 0..<7 { store8(load8(pr + 8 * t) * (load8(row + 8 * t) - d), row + 8 * t) }
        if let biasGrad {
            let g = biasGrad + i * windowKernelTokens
            for t in 0..<7 { store8(load8(g + 8 * t) + load8(row + 8 * t), g + 8 * t) }
        }
    }
}
