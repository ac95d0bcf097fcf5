// Pooling over NCHW planes: average (zero padding counted, PyTorch's default), max (gradient
// to the first maximum of each window) and global average to [N, C].

/// Checks the arguments shared by the pooling ops and returns their geometry.
private func poolGeometry(_ op: String, _ x: Tensor, kernel: Int, stride: Int?, padding: Int) -> WindowGeometry {
    precondition(x.rank == 4, "\(op): input must be NCHW, got \(x.shape)")
    let s = stride ?? kernel
    precondition(kernel >= 1 && s >= 1, "\(op): kernel \(kernel) and stride \(s) must be positive")
    precondition(padding >= 0 && padding <= kernel / 2, "\(op): padding \(padding) must be between 0 and half the kernel \(kernel)")
    let geo = WindowGeometry(height: x.shape[2], width: x.shape[3], kernel: kernel, stride: s, padding: padding)
    precondition(geo.outHeight > 0 && geo.outWidth > 0, "\(op): kernel \(kernel) does not fit input \(x.shape)")
    return geo
}

/// Average pooling with a `kernel`×`kernel` window over NCHW `x`; `stride` defaults to the
/// kernel. Zero padding counts towards the average (PyTorch's `count_include_pad=True`), which
/// makes it a depthwise convolution with a constant filter 1/k²: it runs on that kernel.
/// Differentiable in `x`.
public func avgPool2d(_ x: Tensor, kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    OpProfile.run("pool") {
        let geo = poolGeometry("avgPool2d", x, kernel: kernel, stride: stride, padding: padding)
        let filter = Tensor(shape: [x.shape[1], 1, kernel, kernel], repeating: 1 / Float(kernel * kernel))
        return depthwiseConv2d(x, weight: filter, stride: geo.stride, padding: padding)
    }
}

/// Window maxima of one output row, eight columns at a time, read from the −∞-padded,
/// phase-split scratch of its plane. The input row of tap (0, 0) starts at plane index
/// `rowBase` (negative inside the top padding); the first image row the window covers starts
/// at `firstRowIndex`. The plane index of each maximum (the first in row-major order; NaN
/// wins as in PyTorch; the window's first pixel when all are −∞) goes to `argmax` when given.
private func maxPoolRow(
    source: UnsafePointer<Float>, offsets: UnsafePointer<Int>, tapIndex: UnsafePointer<Int32>, taps: Int,
    out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?,
    width: Int, geo: WindowGeometry, rowBase: Int, firstRowIndex: Int
) {
    let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    var ox = 0
    while ox < width {
        let column = (lane &+ Int32(ox)) &* Int32(geo.stride) &- Int32(geo.padding)
        let tapBase = column &+ Int32(rowBase)
        var index = column.replacing(with: 0, where: column .< 0) &+ Int32(firstRowIndex)
        var best = Vec(repeating: -.infinity)
        for t in 0..<taps {
            let v = loadVec(source + offsets[t] + ox, 8)
            let wins = (v .> best) .| (v .!= v)
            best.replace(with: v, where: wins)
            index.replace(with: tapBase &+ tapIndex[t], where: wins)
        }
        let lanes = min(8, width - ox)
        storeVec(best, out + ox, lanes)
        if let argmax { for l in 0..<lanes { argmax[ox + l] = index[l] } }
        ox += 8
    }
}

/// Max-pools `planes` planes of `x` into `out`, and their argmax indices into `argmax` when given.
private func maxPoolPlanes(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           argmax: UnsafeMutablePointer<Int32>?, planes: Int, _ geo: WindowGeometry) {
    let (h, w, oh, ow, k) = (geo.height, geo.width, geo.outHeight, geo.outWidth, geo.kernel)
    let offsets = geo.inputTapOffsets
    let tapIndex = (0..<k * k).map { Int32($0 / k * w + $0 % k) }
    offsets.withUnsafeBufferPointer { offsets in
        tapIndex.withUnsafeBufferPointer { tapIndex in
            Threading.parallelFor(planes, minimumPerThread: 4) { range in
                let scratch = scratchBuffer(geo.inputScratchCount, filledWith: -.infinity)
                defer { scratch.deallocate() }
                for p in range {
                    geo.fillInput(x + p * h * w, scratch)
                    for oy in 0..<oh {
                        let top = oy * geo.stride - geo.padding
                        let o = (p * oh + oy) * ow
                        maxPoolRow(source: scratch + oy * geo.stride * geo.phaseWidth, offsets: offsets.baseAddress!,
                                   tapIndex: tapIndex.baseAddress!, taps: k * k, out: out + o, argmax: argmax.map { $0 + o },
                                   width: ow, geo: geo, rowBase: top * w, firstRowIndex: max(top, 0) * w)
                    }
                }
            }
        }
    }
}

/// Max pooling with a `kernel`×`kernel` window over NCHW `x`; `stride` defaults to the kernel
/// and padding acts as −∞. NaN propagates as in PyTorch. Differentiable in `x`: each output's
/// gradient goes to the first maximum of its window in row-major order.
public func maxPool2d(_ x: Tensor, kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    OpProfile.run("pool") {
        let geo = poolGeometry("maxPool2d", x, kernel: kernel, stride: stride, padding: padding)
        let (h, w, oh, ow) = (geo.height, geo.width, geo.outHeight, geo.outWidth)
        let planes = x.shape[0] * x.shape[1]
        var out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], oh, ow])
        let po = out.mutablePointer()
        guard let tape = Tape.active(for: x) else {
            maxPoolPlanes(x.pointer, po, argmax: nil, planes: planes, geo)
            return out
        }
        // Where each maximum came from, kept for the backward pass.
        var argmax = [Int32](repeating: 0, count: out.count)
        argmax.withUnsafeMutableBufferPointer { maxPoolPlanes(x.pointer, po, argmax: $0.baseAddress, planes: planes, geo) }
        let inShape = x.shape
        return tape.record(out, inputs: [x]) { g, _ in
            var dx = Tensor.zeros(inShape)
            let pdx = dx.mutablePointer(), pg = g.pointer
            argmax.withUnsafeBufferPointer { indices in
                Threading.parallelFor(planes, minimumPerThread: 4) { range in
                    for p in range {
                        for i in (p * oh * ow)..<((p + 1) * oh * ow) {
                            pdx[p * h * w + Int(indices[i])] += pg[i]
                        }
                    }
                }
            }
            return [dx]
        }
    }
}

/// Mean over the spatial axes of NCHW `x`, giving `[N, C]`. Differentiable in `x`.
public func globalAvgPool2d(_ x: Tensor) -> Tensor {
    OpProfile.run("pool") {
        precondition(x.rank == 4, "globalAvgPool2d: input must be NCHW, got \(x.shape)")
        let (n, c) = (x.shape[0], x.shape[1])
        let area = x.shape[2] * x.shape[3]
        precondition(area > 0, "globalAvgPool2d: empty spatial size in \(x.shape)")
        let scale = 1 / Float(area)
        var out = Tensor(uninitializedShape: [n, c])
        let po = out.mutablePointer(), px = x.pointer
        Threading.parallelFor(n * c, minimumPerThread: max(1, 16384 / area)) { range in
            for p in range { po[p] = sumVec(px + p * area, area) * scale }
        }
        if let tape = Tape.active(for: x) {
            let inShape = x.shape
            out = tape.record(out, inputs: [x]) { g, _ in
                var dx = Tensor(uninitializedShape: inShape)
                let pdx = dx.mutablePointer(), pg = g.pointer
                Threading.parallelFor(n * c, minimumPerThread: max(1, 16384 / area)) { range in
                    for p in range { (pdx + p * area).update(repeating: pg[p] * scale, count: area) }
                }
                return [dx]
            }
        }
        return out
    }
}
