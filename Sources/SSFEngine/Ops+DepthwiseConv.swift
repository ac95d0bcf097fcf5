// Depthwise 2-D convolution (one k×k filter per channel, NCHW) with a direct SIMD kernel.
// Each plane is first copied into a zero-padded scratch whose columns are split into `stride`
// phases, so every filter tap reads contiguous vectors along an output row; the input
// gradient is the same kernel run over the (zero-dilated, padded) output gradient with the
// filter flipped.

/// Sizes of a k×k window sliding over the planes of an NCHW tensor (depthwise convolution,
/// pooling) and of the padded, phase-split scratch copy of one input plane.
struct WindowGeometry {
    let height, width, kernel, stride, padding: Int
    /// Extra zero rows at the bottom and columns at the right, beyond `padding`.
    var extraH = 0, extraW = 0

    init(height: Int, width: Int, kernel: Int, stride: Int, padding: Int, extraH: Int = 0, extraW: Int = 0) {
        self.height = height; self.width = width; self.kernel = kernel; self.stride = stride; self.padding = padding
        self.extraH = extraH; self.extraW = extraW
    }

    var outHeight: Int { (height + 2 * padding + extraH - kernel) / stride + 1 }
    var outWidth: Int { (width + 2 * padding + extraW - kernel) / stride + 1 }
    /// Rows of the padded input.
    var paddedHeight: Int { height + 2 * padding + extraH }
    /// Columns of one phase (padded columns r, r + stride, r + 2·stride, …).
    var phaseWidth: Int { (width + 2 * padding + extraW + stride - 1) / stride }
    var phaseSize: Int { paddedHeight * phaseWidth }
    /// Floats of the input scratch, with room for whole-vector reads past the last row.
    var inputScratchCount: Int { stride * phaseSize + depthwiseSlack }

    /// Offset of each tap (ky, kx), row-major, in the input scratch relative to output pixel (0, 0).
    var inputTapOffsets: [Int] {
        (0..<kernel * kernel).map { t in
            let (ky, kx) = t.quotientAndRemainder(dividingBy: kernel)
            return (kx % stride) * phaseSize + ky * phaseWidth + kx / stride
        }
    }

    /// Copies one input plane into the scratch interior; the padding keeps its initial value.
    func fillInput(_ x: UnsafePointer<Float>, _ scratch: UnsafeMutablePointer<Float>) {
        for y in 0..<height {
            let row = x + y * width
            let dst = scratch + (y + padding) * phaseWidth
            if stride == 1 {
                (dst + padding).update(from: row, count: width)
                continue
            }
            // Phase r, column m holds input column m·stride + r − padding.
            for r in 0..<stride {
                let phase = dst + r * phaseSize
                let first = max(0, (padding - r + stride - 1) / stride)
                var ix = first * stride + r - padding
                var m = first
                while ix < width {
                    phase[m] = row[ix]
                    m += 1
                    ix += stride
                }
            }
        }
    }

    // The output-gradient scratch: the gradient plane dilated by `stride` and padded by
    // k − 1 on the top and left, so the input gradient is a stride-1 correlation with the
    // flipped filter.
    var gradientMargin: Int { kernel - 1 }
    var gradientHeight: Int { gradientMargin + max(height + padding, (outHeight - 1) * stride + 1) }
    var gradientWidth: Int { gradientMargin + max(width + padding, (outWidth - 1) * stride + 1) }
    var gradientScratchCount: Int { gradientHeight * gradientWidth + depthwiseSlack }

    /// Offset of each flipped tap (ky, kx), row-major, in the gradient scratch relative to input pixel (0, 0).
    var gradientTapOffsets: [Int] {
        (0..<kernel * kernel).map { t in
            let (ky, kx) = t.quotientAndRemainder(dividingBy: kernel)
            return (padding - ky + gradientMargin) * gradientWidth + (padding - kx + gradientMargin)
        }
    }

    /// Copies one output-gradient plane into the dilated scratch; the gaps stay zero.
    func fillGradient(_ g: UnsafePointer<Float>, _ scratch: UnsafeMutablePointer<Float>) {
        for oy in 0..<outHeight {
            let row = g + oy * outWidth
            let dst = scratch + (gradientMargin + oy * stride) * gradientWidth + gradientMargin
            if stride == 1 {
                dst.update(from: row, count: outWidth)
            } else {
                for ox in 0..<outWidth { dst[ox * stride] = row[ox] }
            }
        }
    }
}

/// Whole-vector reads of a tile may run up to four vectors past the last pixel.
private let depthwiseSlack = 32

/// One tile of `rows` × `vectors` SIMD8 outputs: out = bias + Σₜ weights[t] · source[offsets[t] + …].
/// Row `r` of the tile reads `r · sourceRowStride` further on. The last vector of each row
/// stores only `lanes` elements. Inlined with constant `rows` and `vectors`, so the
/// accumulators stay in registers.
@inline(__always)
private func depthwiseTile(
    rows: Int, vectors: Int, lanes: Int,
    source: UnsafePointer<Float>, sourceRowStride: Int,
    weights: UnsafePointer<Float>, offsets: UnsafePointer<Int>, taps: Int,
    bias: Float, out: UnsafeMutablePointer<Float>, outRowStride: Int, map: TileMap
) {
    let n = rows * vectors
    func sourceOffset(_ j: Int) -> Int { (j / vectors) * sourceRowStride + (j % vectors) * 8 }
    let o1 = sourceOffset(1), o2 = sourceOffset(2), o3 = sourceOffset(3)
    let b = Vec(repeating: bias)
    var a0 = b, a1 = b, a2 = b, a3 = b
    for t in 0..<taps {
        let w = Vec(repeating: weights[t])
        let p = source + offsets[t]
        a0.addProduct(w, loadVec(p, 8))
        if n > 1 { a1.addProduct(w, loadVec(p + o1, 8)) }
        if n > 2 { a2.addProduct(w, loadVec(p + o2, 8)) }
        if n > 3 { a3.addProduct(w, loadVec(p + o3, 8)) }
    }
    func store(_ v: Vec, _ j: Int) {
        let last = j % vectors == vectors - 1
        let mapped = map.isIdentity ? v : vmin(vmax(fma(v, map.scale, map.shift), map.lower), map.upper)
        storeVec(mapped, out + (j / vectors) * outRowStride + (j % vectors) * 8, last ? lanes : 8)
    }
    store(a0, 0)
    if n > 1 { store(a1, 1) }
    if n > 2 { store(a2, 2) }
    if n > 3 { store(a3, 3) }
}

/// What a tile does to its sums before storing them: clamp(scale · v + shift), or nothing.
struct TileMap {
    let isIdentity: Bool
    let scale, shift, lower, upper: Vec
    static let identity = TileMap(isIdentity: true, scale: Vec(repeating: 1), shift: Vec(), lower: Vec(), upper: Vec())
    init(isIdentity: Bool, scale: Vec, shift: Vec, lower: Vec, upper: Vec) {
        self.isIdentity = isIdentity; self.scale = scale; self.shift = shift; self.lower = lower; self.upper = upper
    }
    init(_ epilogue: ChannelEpilogue, channel c: Int) {
        self.init(isIdentity: false, scale: Vec(repeating: epilogue.scale[c]), shift: Vec(repeating: epilogue.shift[c]),
                  lower: Vec(repeating: epilogue.lower), upper: Vec(repeating: epilogue.upper))
    }
}

/// out[y][x] = bias + Σₜ weights[t] · source[y · sourceRowStride + x + offsets[t]] over a
/// `height` × `width` plane. Wide rows go in blocks of up to four vectors; narrow planes
/// (≤ 16 columns) take several rows per tile instead.
private func depthwisePlane(
    source: UnsafePointer<Float>, sourceRowStride: Int,
    weights: UnsafePointer<Float>, offsets: UnsafePointer<Int>, taps: Int,
    bias: Float, out: UnsafeMutablePointer<Float>, height: Int, width: Int, map: TileMap = .identity
) {
    func tile(_ rows: Int, _ vectors: Int, _ lanes: Int, _ y: Int, _ x: Int) {
        depthwiseTile(rows: rows, vectors: vectors, lanes: lanes,
                      source: source + y * sourceRowStride + x, sourceRowStride: sourceRowStride,
                      weights: weights, offsets: offsets, taps: taps,
                      bias: bias, out: out + y * width + x, outRowStride: width, map: map)
    }
    if width > 16 {
        for y in 0..<height {
            var x = 0
            while width - x >= 32 {
                tile(1, 4, 8, y, x)
                x += 32
            }
            let rest = width - x
            let lanes = rest - (rest - 1) / 8 * 8
            switch (rest + 7) / 8 {
            case 1: tile(1, 1, lanes, y, x)
            case 2: tile(1, 2, lanes, y, x)
            case 3: tile(1, 3, lanes, y, x)
            case 4: tile(1, 4, lanes, y, x)
            default: break
            }
        }
    } else {
        let lanes = width - (width - 1) / 8 * 8
        var y = 0
        if width > 8 {
            while y + 2 <= height { tile(2, 2, lanes, y, 0); y += 2 }
            while y < height { tile(1, 2, lanes, y, 0); y += 1 }
        } else {
            while y + 4 <= height { tile(4, 1, lanes, y, 0); y += 4 }
            while y < height { tile(1, 1, lanes, y, 0); y += 1 }
        }
    }
}

/// Σ over a plane of g[y][x] · source[y · sourceRowStride + x] (one weight-gradient tap).
/// The `height` rows of `g` are `rowLength` apart, a multiple of eight padded with zeros, and
/// are followed by one zero row, so every read is a whole vector and rows go in pairs.
private func depthwiseTapDot(
    _ g: UnsafePointer<Float>, rowLength: Int, height: Int, _ source: UnsafePointer<Float>, sourceRowStride: Int
) -> Float {
    var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
    var y = 0
    while y < height {
        let g0 = g + y * rowLength, g1 = g0 + rowLength
        let s0 = source + y * sourceRowStride, s1 = y + 1 < height ? s0 + sourceRowStride : s0
        var x = 0
        while x + 16 <= rowLength {
            a0.addProduct(loadVec(g0 + x, 8), loadVec(s0 + x, 8))
            a1.addProduct(loadVec(g1 + x, 8), loadVec(s1 + x, 8))
            a2.addProduct(loadVec(g0 + x + 8, 8), loadVec(s0 + x + 8, 8))
            a3.addProduct(loadVec(g1 + x + 8, 8), loadVec(s1 + x + 8, 8))
            x += 16
        }
        if x < rowLength {
            a0.addProduct(loadVec(g0 + x, 8), loadVec(s0 + x, 8))
            a1.addProduct(loadVec(g1 + x, 8), loadVec(s1 + x, 8))
        }
        y += 2
    }
    return ((a0 + a1) + (a2 + a3)).sum()
}

/// A scratch buffer for one worker, filled with `value`; the caller deallocates it.
func scratchBuffer(_ count: Int, filledWith value: Float = 0) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
    p.initialize(repeating: value, count: count)
    return p
}

/// Checks that `weight` is `[channels, 1, k, k]` and `bias`, if any, `[channels]`, naming `op`.
func checkDepthwiseFilter(_ weight: Tensor, bias: Tensor?, channels c: Int, op: String) {
    precondition(weight.rank == 4 && weight.shape[0] == c && weight.shape[1] == 1 && weight.shape[2] == weight.shape[3],
                 "\(op): weight must be [\(c), 1, k, k], got \(weight.shape)")
    if let bias { precondition(bias.shape == [c], "\(op): bias \(bias.shape) must be [\(c)]") }
}

/// Depthwise 2-D convolution of NCHW `x` with one `k`×`k` filter per channel
/// (`weight` is `[C, 1, k, k]`, PyTorch's layout for `groups == C`), zero padding and an
/// optional bias `[C]`; `trailingPadding` adds (rows at the bottom, columns at the right) beyond
/// `padding`. Uses a direct vectorised kernel parallelised over (image, channel) planes.
/// Differentiable in `x`, `weight` and `bias`; an `epilogue` (inference only) maps each channel's
/// sums as the kernel stores them.
public func depthwiseConv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                            trailingPadding: (Int, Int) = (0, 0), epilogue: ChannelEpilogue? = nil) -> Tensor {
    OpProfile.run("depthwise conv") {
        precondition(x.rank == 4, "depthwiseConv2d: input must be NCHW, got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        checkDepthwiseFilter(weight, bias: bias, channels: c, op: "depthwiseConv2d")
        if let epilogue {
            precondition(epilogue.scale.count == c, "depthwiseConv2d: epilogue of \(epilogue.scale.count) channels for \(c)")
            precondition(Tape.active(for: x, weight, bias) == nil, "depthwiseConv2d: an epilogue is for inference (nothing may track the inputs)")
        }
        precondition(stride >= 1 && padding >= 0 && trailingPadding.0 >= 0 && trailingPadding.1 >= 0,
                     "depthwiseConv2d: stride \(stride), padding \(padding) or trailing padding \(trailingPadding) invalid")
        let k = weight.shape[2]
        let geo = WindowGeometry(height: h, width: w, kernel: k, stride: stride, padding: padding,
                                 extraH: trailingPadding.0, extraW: trailingPadding.1)
        let (oh, ow) = (geo.outHeight, geo.outWidth)
        precondition(oh > 0 && ow > 0, "depthwiseConv2d: kernel \(k) does not fit input \(h)×\(w) with padding \(padding)")
        let taps = k * k
        let inputOffsets = geo.inputTapOffsets

        FlopCounter.add(n * c * oh * ow * taps)
        OpProfile.addFlops(2 * n * c * oh * ow * taps)
        var out = Tensor(uninitializedShape: [n, c, oh, ow])
        let po = out.mutablePointer(), px = x.pointer, pw = weight.pointer, pb = bias?.pointer
        inputOffsets.withUnsafeBufferPointer { offsets in
            Threading.parallelFor(n * c, minimumPerThread: 2) { planes in
                let scratch = scratchBuffer(geo.inputScratchCount)
                defer { scratch.deallocate() }
                for plane in planes {
                    let ch = plane % c
                    geo.fillInput(px + plane * h * w, scratch)
                    depthwisePlane(source: scratch, sourceRowStride: stride * geo.phaseWidth,
                                   weights: pw + ch * taps, offsets: offsets.baseAddress!, taps: taps,
                                   bias: pb?[ch] ?? 0, out: po + plane * oh * ow, height: oh, width: ow,
                                   map: epilogue.map { TileMap($0, channel: ch) } ?? .identity)
                }
            }
        }

        if let tape = Tape.active(for: x, weight, bias) {
            // The input is kept only for the weight gradient: a frozen filter keeps no activation.
            let ux = tape.tracks(weight) ? x.untracked : nil, uw = weight.untracked
            out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
                var gx: Tensor?, gw: Tensor?, gb: Tensor?
                var planeWeightGrads = needs[1] ? Tensor(uninitializedShape: [n, c, taps]) : nil
                if needs[0] || needs[1] {
                    var dx = needs[0] ? Tensor(uninitializedShape: [n, c, h, w]) : nil
                    let gradientOffsets = geo.gradientTapOffsets
                    let pdx = dx?.mutablePointer(), pdw = planeWeightGrads?.mutablePointer()
                    let gData = g.pointer, xData = ux?.pointer ?? gData, wData = uw.pointer
                    let gRowLength = (ow + 7) / 8 * 8
                    gradientOffsets.withUnsafeBufferPointer { gOffsets in
                        inputOffsets.withUnsafeBufferPointer { xOffsets in
                            Threading.parallelFor(n * c, minimumPerThread: 2) { planes in
                                let gScratch = pdx == nil ? nil : scratchBuffer(geo.gradientScratchCount)
                                let xScratch = pdw == nil ? nil : scratchBuffer(geo.inputScratchCount)
                                let gRows = pdw == nil ? nil : scratchBuffer((oh + 1) * gRowLength)
                                defer { gScratch?.deallocate(); xScratch?.deallocate(); gRows?.deallocate() }
                                for plane in planes {
                                    let ch = plane % c, gPlane = gData + plane * oh * ow
                                    if let pdx, let gScratch {
                                        geo.fillGradient(gPlane, gScratch)
                                        depthwisePlane(source: gScratch, sourceRowStride: geo.gradientWidth,
                                                       weights: wData + ch * taps, offsets: gOffsets.baseAddress!, taps: taps,
                                                       bias: 0, out: pdx + plane * h * w, height: h, width: w)
                                    }
                                    if let pdw, let xScratch, let gRows {
                                        geo.fillInput(xData + plane * h * w, xScratch)
                                        for oy in 0..<oh { (gRows + oy * gRowLength).update(from: gPlane + oy * ow, count: ow) }
                                        for t in 0..<taps {
                                            pdw[plane * taps + t] = depthwiseTapDot(
                                                gRows, rowLength: gRowLength, height: oh,
                                                xScratch + xOffsets[t], sourceRowStride: stride * geo.phaseWidth)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    gx = dx
                }
                if let planeWeightGrads {
                    gw = planeWeightGrads.untracked.summed(toShape: [1, c, taps]).reshaped([c, 1, k, k])
                }
                if needs[2] {
                    var db = Tensor(uninitializedShape: [c])
                    let pdb = db.mutablePointer(), pg = g.pointer
                    for ch in 0..<c {
                        var s: Float = 0
                        for img in 0..<n { s += sumVec(pg + (img * c + ch) * oh * ow, oh * ow) }
                        pdb[ch] = s
                    }
                    gb = db
                }
                return [gx, gw, gb]
            }
        }
        return out
    }
}
