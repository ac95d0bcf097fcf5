// General 2-D convolution (NCHW, PyTorch semantics: zero padding, dilation, groups) through
// im2col + BLAS GEMM per image and group; 1×1 stride-1 unpadded convolutions use the input
// directly as the GEMM operand, and depthwise convolutions go to their dedicated kernel.

/// Sizes of a 2-D convolution over one image and one group of channels.
struct ConvGeometry {
    let channels, height, width: Int
    let kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW: Int
    /// Extra zero rows at the bottom and columns at the right, beyond `padH` and `padW`
    /// (TensorFlow's 'SAME' padding puts its odd pixel there).
    var extraH = 0, extraW = 0

    var outHeight: Int { (height + 2 * padH + extraH - dilationH * (kernelH - 1) - 1) / strideH + 1 }
    var outWidth: Int { (width + 2 * padW + extraW - dilationW * (kernelW - 1) - 1) / strideW + 1 }
    /// Rows of the column matrix: channels × kernel taps.
    var patchSize: Int { channels * kernelH * kernelW }
    /// Columns of the column matrix: output pixels.
    var outPixels: Int { outHeight * outWidth }
    /// Whether the column matrix is the input itself.
    var isPointwise: Bool { kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0 }

    /// The output columns `lo..<hi` whose input column `ox·strideW + x0` lies inside the image.
    private func validColumns(_ x0: Int) -> (lo: Int, hi: Int) {
        let lo = x0 < 0 ? (-x0 + strideW - 1) / strideW : 0
        let hi = width > x0 ? min(outWidth, (width - x0 + strideW - 1) / strideW) : 0
        return (min(lo, hi), hi)
    }

    /// Visits every (patch row, output row) pair: `body(patchRow, channel, iy, x0)` where the
    /// input row is `iy` (possibly outside the image) and output column `ox` reads input
    /// column `ox·strideW + x0`.
    @inline(__always)
    private func forEachPatchRow(channels range: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        for ch in range {
            for i in 0..<kernelH {
                for j in 0..<kernelW {
                    let row = (ch * kernelH + i) * kernelW + j
                    for oy in 0..<outHeight {
                        body(row * outPixels + oy * outWidth, ch, oy * strideH - padH + i * dilationH, j * dilationW - padW)
                    }
                }
            }
        }
    }

    /// Writes the `[patchSize, outPixels]` column matrix of one image's channel group.
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
        Threading.parallelFor(channels, minimumPerThread: max(1, 4096 / max(kernelH * kernelW * outPixels, 1))) { range in
            forEachPatchRow(channels: range) { start, ch, iy, x0 in
                let dst = col + start
                guard iy >= 0 && iy < height else {
                    dst.update(repeating: 0, count: outWidth)
                    return
                }
                let src = x + (ch * height + iy) * width + x0
                let (lo, hi) = validColumns(x0)
                dst.update(repeating: 0, count: lo)
                if strideW == 1 {
                    (dst + lo).update(from: src + lo, count: hi - lo)
                } else {
                    for ox in lo..<hi { dst[ox] = src[ox * strideW] }
                }
                (dst + hi).update(repeating: 0, count: outWidth - hi)
            }
        }
    }

    /// Adds the column matrix back onto the image it was gathered from (the transpose of im2col).
    func col2im(_ col: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        Threading.parallelFor(channels, minimumPerThread: max(1, 4096 / max(kernelH * kernelW * outPixels, 1))) { range in
            forEachPatchRow(channels: range) { start, ch, iy, x0 in
                guard iy >= 0 && iy < height else { return }
                let src = col + start
                let dst = dx + (ch * height + iy) * width + x0
                let (lo, hi) = validColumns(x0)
                if strideW == 1 {
                    for ox in lo..<hi { dst[ox] += src[ox] }
                } else {
                    for ox in lo..<hi { dst[ox * strideW] += src[ox] }
                }
            }
        }
    }
}

/// Number of contiguous chunks of images to run in parallel: one per thread when there are
/// enough images to occupy them all; otherwise a single chunk on the caller, so that BLAS and
/// the im2col loops use the threads instead.
private func imageChunkCount(_ images: Int) -> Int {
    images >= Threading.threads && !Threading.isInParallelRegion ? Threading.threads : 1
}

/// Images `chunk` of `chunks` processes out of `images`.
private func imageRange(_ chunk: Int, of chunks: Int, images: Int) -> Range<Int> {
    (images * chunk / chunks)..<(images * (chunk + 1) / chunks)
}

/// Pointwise convolutions over planes of at most this many pixels run as one GEMM over the whole
/// batch (images side by side in the GEMM's columns) instead of one small GEMM per image.
let batchedPointwiseMaxPixels = 256

/// Copies `[n, rows, pixels]` into `[rows, n · pixels]` (`toBatched`) or back, applying `epilogue`
/// (row = channel) to what it writes.
private func repackPlanes(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, images n: Int, rows: Int, pixels: Int,
                          toBatched: Bool, epilogue: ChannelEpilogue? = nil) {
    Threading.parallelFor(rows, minimumPerThread: max(1, 16384 / max(n * pixels, 1))) { range in
        for r in range {
            for img in 0..<n {
                let perImage = (img * rows + r) * pixels, batched = r * n * pixels + img * pixels
                if toBatched {
                    (dst + batched).update(from: src + perImage, count: pixels)
                } else {
                    (dst + perImage).update(from: src + batched, count: pixels)
                }
                epilogue?.apply(channel: r, dst + (toBatched ? batched : perImage), pixels)
            }
        }
    }
}

/// 1×1 convolution of the whole batch as one GEMM: out[:, o, :] = W · x over `[C, N·P]`.
private func batchedPointwiseForward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                     out: UnsafeMutablePointer<Float>, n: Int, c: Int, o: Int, pixels: Int, epilogue: ChannelEpilogue?) {
    let columns = n * pixels
    let packed = UnsafeMutablePointer<Float>.allocate(capacity: c * columns)
    let result = UnsafeMutablePointer<Float>.allocate(capacity: o * columns)
    defer { packed.deallocate(); result.deallocate() }
    repackPlanes(x, packed, images: n, rows: c, pixels: pixels, toBatched: true)
    if let bias {
        for oc in 0..<o { (result + oc * columns).update(repeating: bias[oc], count: columns) }
    }
    BLAS.sgemm(transposeA: false, transposeB: false, m: o, n: columns, k: c, a: weight, lda: c, b: packed, ldb: columns,
               beta: bias == nil ? 0 : 1, c: result, ldc: columns)
    repackPlanes(result, out, images: n, rows: o, pixels: pixels, toBatched: false, epilogue: epilogue)
}

/// The batched 1×1 convolution's backward: dx = Wᵀ·g and dW = g·xᵀ over `[·, N·P]` operands.
private func batchedPointwiseBackward(_ g: UnsafePointer<Float>, x: UnsafePointer<Float>?, weight: UnsafePointer<Float>,
                                      dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                                      n: Int, c: Int, o: Int, pixels: Int) {
    let columns = n * pixels
    let packedG = UnsafeMutablePointer<Float>.allocate(capacity: o * columns)
    let packedX = UnsafeMutablePointer<Float>.allocate(capacity: c * columns)
    defer { packedG.deallocate(); packedX.deallocate() }
    repackPlanes(g, packedG, images: n, rows: o, pixels: pixels, toBatched: true)
    if let dw, let x {
        repackPlanes(x, packedX, images: n, rows: c, pixels: pixels, toBatched: true)
        BLAS.sgemm(transposeA: false, transposeB: true, m: o, n: c, k: columns, a: packedG, lda: columns, b: packedX, ldb: columns,
                   c: dw, ldc: c)
    }
    if let dx {
        BLAS.sgemm(transposeA: true, transposeB: false, m: c, n: columns, k: o, a: weight, lda: c, b: packedG, ldb: columns,
                   c: packedX, ldc: columns)
        repackPlanes(packedX, dx, images: n, rows: c, pixels: pixels, toBatched: false)
    }
}

/// 2-D convolution of NCHW `x` with `weight` `[O, C/groups, kh, kw]` and optional `bias` `[O]`,
/// with the same stride, padding and dilation along both axes (PyTorch's `conv2d`).
/// Differentiable in `x`, `weight` and `bias`.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1) -> Tensor {
    OpProfile.run("conv") {
        conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
               dilation: (dilation, dilation), groups: groups)
    }
}

/// 2-D convolution of NCHW `x` with `weight` `[O, C/groups, kh, kw]` and optional `bias` `[O]`;
/// stride, zero padding and dilation are given as (vertical, horizontal) pairs as in PyTorch.
/// `trailingPadding` adds (rows at the bottom, columns at the right) beyond `padding`, so an
/// asymmetric padding such as TensorFlow's 'SAME' needs no padded copy of the input. An
/// `epilogue` (inference only: nothing may track the inputs) maps each output channel as it is
/// written, e.g. a frozen batch norm and ReLU6, instead of a second pass over the output.
/// Runs as im2col + GEMM per image and group; depthwise convolutions (groups == C == O,
/// square filter, equal strides and paddings, no dilation) use `depthwiseConv2d`.
/// Differentiable in `x`, `weight` and `bias`; a frozen weight costs no weight-gradient GEMM.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int),
                   padding: (Int, Int) = (0, 0), trailingPadding: (Int, Int) = (0, 0),
                   dilation: (Int, Int) = (1, 1), groups: Int = 1, epilogue: ChannelEpilogue? = nil) -> Tensor {
    OpProfile.run("conv") {
        precondition(x.rank == 4, "conv2d: input must be NCHW, got \(x.shape)")
        precondition(weight.rank == 4, "conv2d: weight must be [O, C/groups, kh, kw], got \(weight.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(groups >= 1 && c % groups == 0 && o % groups == 0 && cg == c / groups,
                     "conv2d: weight \(weight.shape) does not match input \(x.shape) with \(groups) group(s)")
        if let bias { precondition(bias.shape == [o], "conv2d: bias \(bias.shape) must be [\(o)]") }
        if let epilogue {
            precondition(epilogue.scale.count == o, "conv2d: epilogue of \(epilogue.scale.count) channels for \(o) outputs")
            precondition(Tape.active(for: x, weight, bias) == nil, "conv2d: an epilogue is for inference (nothing may track the inputs)")
        }
        let epilogue = epilogue?.absorbing(bias)
        let bias = epilogue == nil ? bias : nil
        precondition(stride.0 >= 1 && stride.1 >= 1 && padding.0 >= 0 && padding.1 >= 0 && dilation.0 >= 1 && dilation.1 >= 1
                     && trailingPadding.0 >= 0 && trailingPadding.1 >= 0,
                     "conv2d: invalid stride \(stride), padding \(padding), trailing padding \(trailingPadding) or dilation \(dilation)")

        if groups == c && o == c && cg == 1 && kh == kw && stride.0 == stride.1 && padding.0 == padding.1
            && (kh == 1 || dilation == (1, 1)) {
            return depthwiseConv2d(x, weight: weight, bias: bias, stride: stride.0, padding: padding.0, trailingPadding: trailingPadding,
                                   epilogue: epilogue)
        }

        var geo = ConvGeometry(channels: cg, height: h, width: w, kernelH: kh, kernelW: kw,
                               strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1,
                               dilationH: dilation.0, dilationW: dilation.1)
        (geo.extraH, geo.extraW) = trailingPadding
        let (oh, ow) = (geo.outHeight, geo.outWidth)
        precondition(oh > 0 && ow > 0, "conv2d: kernel \(kh)×\(kw) does not fit input \(h)×\(w) with padding \(padding)")
        let og = o / groups, pixels = geo.outPixels, patch = geo.patchSize, plane = h * w

        FlopCounter.add(n * o * pixels * patch)
        var out = Tensor(uninitializedShape: [n, o, oh, ow])
        let po = out.mutablePointer(), px = x.pointer, pw = weight.pointer, pb = bias?.pointer
        let chunks = imageChunkCount(n)
        let batched = geo.isPointwise && groups == 1 && n > 1 && pixels <= batchedPointwiseMaxPixels && !Threading.isInParallelRegion
        if batched {
            batchedPointwiseForward(px, weight: pw, bias: pb, out: po, n: n, c: c, o: o, pixels: pixels, epilogue: epilogue)
        } else { Threading.parallelFor(chunks) { range in
            let col = geo.isPointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: patch * pixels)
            defer { col?.deallocate() }
            for chunk in range {
                for img in imageRange(chunk, of: chunks, images: n) {
                    for grp in 0..<groups {
                        let xg = px + (img * c + grp * cg) * plane
                        var operand = xg
                        if let col {
                            geo.im2col(xg, col)
                            operand = UnsafePointer(col)
                        }
                        let dst = po + (img * o + grp * og) * pixels
                        if let pb {
                            for oc in 0..<og { (dst + oc * pixels).update(repeating: pb[grp * og + oc], count: pixels) }
                        }
                        BLAS.sgemm(transposeA: false, transposeB: false, m: og, n: pixels, k: patch,
                                   a: pw + grp * og * patch, lda: patch, b: operand, ldb: pixels,
                                   beta: pb == nil ? 0 : 1, c: dst, ldc: pixels)
                        if let epilogue {
                            for oc in 0..<og { epilogue.apply(channel: grp * og + oc, dst + oc * pixels, pixels) }
                        }
                    }
                }
            }
        } }

        if let tape = Tape.active(for: x, weight, bias) {
            // The input is kept only for the weight gradient: a frozen weight's conv keeps no activation.
            let ux = tape.tracks(weight) ? x.untracked : nil, uw = weight.untracked, xShape = x.shape
            out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
                var gx: Tensor?, gw: Tensor?, gb: Tensor?
                if (needs[0] || needs[1]) && batched {
                    var dx = needs[0] ? Tensor(uninitializedShape: xShape) : nil
                    var dw = needs[1] ? Tensor(uninitializedShape: uw.shape) : nil
                    batchedPointwiseBackward(g.pointer, x: ux?.pointer, weight: uw.pointer, dx: dx?.mutablePointer(), dw: dw?.mutablePointer(),
                                             n: n, c: c, o: o, pixels: pixels)
                    gx = dx
                    gw = dw
                } else if needs[0] || needs[1] {
                    let chunks = imageChunkCount(n)
                    var dx = needs[0] ? (geo.isPointwise ? Tensor(uninitializedShape: xShape) : Tensor.zeros(xShape)) : nil
                    // Chunk 0 accumulates its weight gradient in the result, the others in partial sums.
                    var dw = needs[1] ? Tensor(uninitializedShape: uw.shape) : nil
                    var partials = needs[1] && chunks > 1 ? Tensor(uninitializedShape: [chunks - 1, o * patch]) : nil
                    let pdx = dx?.mutablePointer(), pdw = dw?.mutablePointer(), ppart = partials?.mutablePointer()
                    let gData = g.pointer, xData = ux?.pointer ?? gData, wData = uw.pointer
                    Threading.parallelFor(chunks) { range in
                        let col = geo.isPointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: patch * pixels)
                        defer { col?.deallocate() }
                        for chunk in range {
                            let accumulator = chunk == 0 ? pdw : ppart.map { $0 + (chunk - 1) * o * patch }
                            for (index, img) in imageRange(chunk, of: chunks, images: n).enumerated() {
                                for grp in 0..<groups {
                                    let gg = gData + (img * o + grp * og) * pixels
                                    let xg = xData + (img * c + grp * cg) * plane
                                    let wg = wData + grp * og * patch
                                    if let accumulator {
                                        var operand = xg
                                        if let col {
                                            geo.im2col(xg, col)
                                            operand = UnsafePointer(col)
                                        }
                                        BLAS.sgemm(transposeA: false, transposeB: true, m: og, n: patch, k: pixels,
                                                   a: gg, lda: pixels, b: operand, ldb: pixels,
                                                   beta: index == 0 ? 0 : 1, c: accumulator + grp * og * patch, ldc: patch)
                                    }
                                    if let pdx {
                                        let dxg = pdx + (img * c + grp * cg) * plane
                                        BLAS.sgemm(transposeA: true, transposeB: false, m: patch, n: pixels, k: og,
                                                   a: wg, lda: patch, b: gg, ldb: pixels, c: col ?? dxg, ldc: pixels)
                                        if let col { geo.col2im(col, dxg) }
                                    }
                                }
                            }
                        }
                    }
                    if let pdw, let ppart {
                        for chunk in 0..<(chunks - 1) {
                            zipVec(UnsafePointer(pdw), ppart + chunk * o * patch, pdw, o * patch) { $0 + $1 }
                        }
                    }
                    gx = dx
                    gw = dw
                }
                if needs[2] {
                    var db = Tensor(uninitializedShape: [o])
                    let pdb = db.mutablePointer(), gData = g.pointer
                    for oc in 0..<o {
                        var s: Float = 0
                        for img in 0..<n { s += sumVec(gData + (img * o + oc) * pixels, pixels) }
                        pdb[oc] = s
                    }
                    gb = db
                }
                return [gx, gw, gb]
            }
        }
        return out
    }
}
