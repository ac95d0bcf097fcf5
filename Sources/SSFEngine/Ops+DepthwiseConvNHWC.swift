// Depthwise 2-D convolution on channels-last (NHWC) tensors, stride 1: ConvNeXt's 7×7 mixing
// between its channels-last norm and MLP, with no NCHW ↔ NHWC permutes around it.
//
// The kernel vectorises over channels. For a band of four output rows and 32 channels it gathers
// the k + 3 input rows they read into zero-padded panels of contiguous 8-float pixels (so every
// tap is a whole-vector load with no bounds test), then accumulates eight output pixels at a time:
// per tap one filter vector and eight input vectors feed eight FMAs. The input gradient is the
// same kernel over the output gradient with the filter flipped and the padding mirrored
// (k − 1 − padding); the filter gradient sums gradient rows against the same panels.

/// The channel-block width of the kernel.
private let nhwcLanes = 8
/// Output rows computed from one filling of the panel (k + 3 input rows for 4 output rows instead
/// of 4·k).
private let nhwcBandRows = 4
/// Output pixels accumulated together: eight independent FMA chains, enough to cover the FMA
/// latency on two pipes.
private let nhwcBlock = 8

/// A `[C, 1, k, k]` filter as `[C/8][k·k][8]`: for each block of eight channels its taps in
/// row-major order, eight lanes each (zero past C), so that a block's filter is one contiguous
/// run (taps C floats apart would fall into a few L1 sets when C is a multiple of 512); mirrored
/// in both spatial axes when `flipped` (the input gradient's filter).
private func blockedFilter(_ w: UnsafePointer<Float>, channels c: Int, kernel k: Int, flipped: Bool) -> UnsafeMutablePointer<Float> {
    let taps = k * k, blocks = (c + nhwcLanes - 1) / nhwcLanes
    let out = UnsafeMutablePointer<Float>.allocate(capacity: blocks * taps * nhwcLanes)
    out.initialize(repeating: 0, count: blocks * taps * nhwcLanes)
    for ch in 0..<c {
        let (block, lane) = ch.quotientAndRemainder(dividingBy: nhwcLanes)
        for t in 0..<taps { out[(block * taps + (flipped ? taps - 1 - t : t)) * nhwcLanes + lane] = w[ch * taps + t] }
    }
    return out
}

/// Channel blocks filled together: four blocks of 8 floats are two whole cache lines of a pixel,
/// so each line is fetched once. Filled a block at a time, pixels `C` floats apart (2 KiB at
/// C = 512) fall into two L1 sets and their lines are evicted before the next block reads their
/// other half.
private let nhwcGroup = 4

/// Zero-padded copies of input rows for up to four channel blocks: per block `rows` rows of
/// `width` pixels of 8 floats, pixel `j` of row `r` holding input pixel (`top + r`, `j − padding`);
/// rows and columns outside the input, and lanes past the channels, are zero.
private struct ChannelPanel {
    let pixels: UnsafeMutablePointer<Float>
    let rows: Int, width: Int

    init(rows: Int, width: Int) {
        self.rows = rows; self.width = width
        pixels = .allocate(capacity: nhwcGroup * rows * width * nhwcLanes)
        pixels.initialize(repeating: 0, count: nhwcGroup * rows * width * nhwcLanes)
    }

    func deallocate() { pixels.deallocate() }

    /// Block `b`'s rows.
    @inline(__always) func block(_ b: Int) -> UnsafeMutablePointer<Float> { pixels + b * rows * width * nhwcLanes }

    /// Fills the blocks of channels `c0 ..< c0 + channels` (at most 32) from `image` (`[h, w, c]`).
    @inline(__always)
    func fill(_ image: UnsafePointer<Float>, h: Int, w: Int, c: Int, top: Int, padding: Int, c0: Int, channels: Int) {
        let blocks = (channels + nhwcLanes - 1) / nhwcLanes, rowFloats = width * nhwcLanes
        for r in 0..<rows {
            let iy = top + r
            guard iy >= 0 && iy < h else {
                for b in 0..<blocks { (block(b) + r * rowFloats).update(repeating: 0, count: rowFloats) }
                continue
            }
            let src = image + iy * w * c + c0
            let dst = pixels + (r * width + padding) * nhwcLanes, blockFloats = rows * rowFloats
            if channels == nhwcGroup * nhwcLanes {
                for ix in 0..<w {
                    let s = src + ix * c, d = dst + ix * nhwcLanes
                    storeVec(loadVec(s, 8), d, 8)
                    storeVec(loadVec(s + 8, 8), d + blockFloats, 8)
                    storeVec(loadVec(s + 16, 8), d + 2 * blockFloats, 8)
                    storeVec(loadVec(s + 24, 8), d + 3 * blockFloats, 8)
                }
            } else {
                for ix in 0..<w {
                    for b in 0..<blocks {
                        storeVec(loadVec(src + ix * c + b * nhwcLanes, min(nhwcLanes, channels - b * nhwcLanes)),
                                 dst + ix * nhwcLanes + b * blockFloats, 8)
                    }
                }
            }
        }
    }
}

/// Output rows `oy ..< oy + rows` of image `image` (`[h, w, c]`) into `out` (`[rows, ow, c]`): for
/// every channel, `bias + Σ_{ky, kx} x[oy + ky − padding, ox + kx − padding] · filter[ky·k + kx]`
/// (`filter` blocked). The panel holds the band's k + rows − 1 input rows, filled once per group.
@inline(__always)
private func depthwiseBandNHWC(_ image: UnsafePointer<Float>, h: Int, w: Int, c: Int, oy: Int, rows: Int, padding: Int, k: Int,
                               filter: UnsafePointer<Float>, bias: UnsafePointer<Float>?, panel: ChannelPanel,
                               out: UnsafeMutablePointer<Float>, ow: Int) {
    // One channel block of one output row from its panel rows; `lanes` is a constant 8 in the main
    // path, so its loads and stores are whole vectors.
    @inline(__always) func channelBlock(_ c0: Int, _ lanes: Int, _ source: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        let rowFloats = panel.width * nhwcLanes
        let b = bias.map { loadVec($0 + c0, lanes) } ?? Vec()
        var ox = 0
        while ox < ow {
            var a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b
            for ky in 0..<k {
                let row = source + ky * rowFloats + ox * nhwcLanes
                let taps = filter + c0 * k * k + ky * k * nhwcLanes
                for kx in 0..<k {
                    let f = loadVec(taps + kx * nhwcLanes, 8)
                    let p = row + kx * nhwcLanes
                    a0 = a0.addingProduct(loadVec(p, 8), f)
                    a1 = a1.addingProduct(loadVec(p + 8, 8), f)
                    a2 = a2.addingProduct(loadVec(p + 16, 8), f)
                    a3 = a3.addingProduct(loadVec(p + 24, 8), f)
                    a4 = a4.addingProduct(loadVec(p + 32, 8), f)
                    a5 = a5.addingProduct(loadVec(p + 40, 8), f)
                    a6 = a6.addingProduct(loadVec(p + 48, 8), f)
                    a7 = a7.addingProduct(loadVec(p + 56, 8), f)
                }
            }
            let dst = out + ox * c + c0
            let count = min(nhwcBlock, ow - ox)
            if count == nhwcBlock {
                storeVec(a0, dst, lanes); storeVec(a1, dst + c, lanes); storeVec(a2, dst + 2 * c, lanes); storeVec(a3, dst + 3 * c, lanes)
                storeVec(a4, dst + 4 * c, lanes); storeVec(a5, dst + 5 * c, lanes); storeVec(a6, dst + 6 * c, lanes); storeVec(a7, dst + 7 * c, lanes)
            } else {
                storeVec(a0, dst, lanes)
                if count > 1 { storeVec(a1, dst + c, lanes) }
                if count > 2 { storeVec(a2, dst + 2 * c, lanes) }
                if count > 3 { storeVec(a3, dst + 3 * c, lanes) }
                if count > 4 { storeVec(a4, dst + 4 * c, lanes) }
                if count > 5 { storeVec(a5, dst + 5 * c, lanes) }
                if count > 6 { storeVec(a6, dst + 6 * c, lanes) }
            }
            ox += nhwcBlock
        }
    }
    let rowFloats = panel.width * nhwcLanes
    forEachChannelGroup(c) { g0, channels in
        panel.fill(image, h: h, w: w, c: c, top: oy - padding, padding: padding, c0: g0, channels: channels)
        for r in 0..<rows {
            forEachBlock(channels) { b, lanes in
                channelBlock(g0 + b * nhwcLanes, lanes, panel.block(b) + r * rowFloats, out + r * ow * c)
            }
        }
    }
}

/// Every output row of a stride-1 depthwise correlation over NHWC `x` (`[n, h, w, c]`) into `out`
/// (`[n, h + 2·padding − k + 1, …, c]`), parallel over (image, band of four output rows).
private func depthwiseNHWC(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, k: Int, padding: Int,
                           filter: UnsafePointer<Float>, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
    let oh = h + 2 * padding - k + 1, ow = w + 2 * padding - k + 1
    // Room for the last block's pixels past the output's right edge.
    let panelWidth = (ow + nhwcBlock - 1) / nhwcBlock * nhwcBlock + k - 1
    let bands = (oh + nhwcBandRows - 1) / nhwcBandRows
    Threading.parallelFor(n * bands, minimumPerThread: 1) { items in
        let panel = ChannelPanel(rows: k + nhwcBandRows - 1, width: panelWidth)
        defer { panel.deallocate() }
        for item in items {
            let (img, band) = item.quotientAndRemainder(dividingBy: bands)
            let oy = band * nhwcBandRows, rows = min(nhwcBandRows, oh - oy)
            depthwiseBandNHWC(x + img * h * w * c, h: h, w: w, c: c, oy: oy, rows: rows, padding: padding, k: k,
                              filter: filter, bias: bias, panel: panel, out: out + (img * oh + oy) * ow * c, ow: ow)
        }
    }
}

/// Adds to `sums` (`[k·k, c]`, tap-major) the filter gradient of output rows `items` (image · oh + row):
/// `Σ_ox g[oy, ox] · x[oy + ky − padding, ox + kx − padding]` per tap and channel.
private func depthwiseFilterGradientNHWC(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, items: Range<Int>,
                                         h: Int, w: Int, c: Int, k: Int, padding: Int, sums: UnsafeMutablePointer<Float>) {
    let oh = h + 2 * padding - k + 1, ow = w + 2 * padding - k + 1
    let panel = ChannelPanel(rows: k, width: ow + k - 1)
    // The gradient row of a channel group, one block of ow pixels after another.
    let gRows = UnsafeMutablePointer<Float>.allocate(capacity: nhwcGroup * ow * nhwcLanes)
    defer { panel.deallocate(); gRows.deallocate() }

    /// Adds one channel block's tap sums for output row `oy` (its gradient `gRow`, its panel `source`).
    @inline(__always) func blockTaps(_ c0: Int, _ lanes: Int, _ oy: Int, _ gRow: UnsafePointer<Float>, _ source: UnsafePointer<Float>) {
        for ky in 0..<k {
            let iy = oy + ky - padding
            guard iy >= 0 && iy < h else { continue }
            let row = source + ky * panel.width * nhwcLanes
            for kx in 0..<k {
                let p = row + kx * nhwcLanes
                var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
                var ox = 0
                while ox + 4 <= ow {
                    let q = ox * nhwcLanes
                    a0 = a0.addingProduct(loadVec(gRow + q, 8), loadVec(p + q, 8))
                    a1 = a1.addingProduct(loadVec(gRow + q + 8, 8), loadVec(p + q + 8, 8))
                    a2 = a2.addingProduct(loadVec(gRow + q + 16, 8), loadVec(p + q + 16, 8))
                    a3 = a3.addingProduct(loadVec(gRow + q + 24, 8), loadVec(p + q + 24, 8))
                    ox += 4
                }
                while ox < ow {
                    let q = ox * nhwcLanes
                    a0 = a0.addingProduct(loadVec(gRow + q, 8), loadVec(p + q, 8))
                    ox += 1
                }
                let dst = sums + (ky * k + kx) * c + c0
                storeVec(loadVec(dst, lanes) + ((a0 + a1) + (a2 + a3)), dst, lanes)
            }
        }
    }

    for item in items {
        let (img, oy) = item.quotientAndRemainder(dividingBy: oh)
        let gSource = g + (img * oh + oy) * ow * c
        forEachChannelGroup(c) { g0, channels in
            for ox in 0..<ow {
                forEachBlock(channels) { b, lanes in
                    storeVec(loadVec(gSource + ox * c + g0 + b * nhwcLanes, lanes), gRows + (b * ow + ox) * nhwcLanes, 8)
                }
            }
            panel.fill(x + img * h * w * c, h: h, w: w, c: c, top: oy - padding, padding: padding, c0: g0, channels: channels)
            forEachBlock(channels) { b, lanes in
                blockTaps(g0 + b * nhwcLanes, lanes, oy, gRows + b * ow * nhwcLanes, panel.block(b))
            }
        }
    }
}

/// Calls `body(g0, channels)` for each group of up to 32 channels of `c`.
@inline(__always)
private func forEachChannelGroup(_ c: Int, _ body: (_ g0: Int, _ channels: Int) -> Void) {
    var g0 = 0
    while g0 < c {
        let channels = min(nhwcGroup * nhwcLanes, c - g0)
        body(g0, channels)
        g0 += channels
    }
}

/// Calls `body(b, lanes)` for each 8-channel block of a group of `channels`: whole blocks with the
/// literal 8 (so that, inlined, their loads and stores are whole vectors), then the partial one.
@inline(__always)
private func forEachBlock(_ channels: Int, _ body: (_ b: Int, _ lanes: Int) -> Void) {
    let whole = channels / nhwcLanes
    for b in 0..<whole { body(b, nhwcLanes) }
    if whole * nhwcLanes < channels { body(whole, channels - whole * nhwcLanes) }
}

/// Depthwise 2-D convolution of channels-last `x` (`[N, H, W, C]`) with one `k`×`k` filter per
/// channel (`weight` `[C, 1, k, k]`, PyTorch's layout), stride 1, zero `padding` on every side and
/// an optional `bias` `[C]`; the result is `[N, H + 2·padding − k + 1, W + 2·padding − k + 1, C]`.
/// The same sums as `depthwiseConv2d` on the NCHW permutation of `x` (up to rounding).
/// Differentiable in `x`, `weight` and `bias`; the input is kept only when the filter is trained.
public func depthwiseConv2dNHWC(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, padding: Int) -> Tensor {
    OpProfile.run("conv") {
        precondition(x.rank == 4, "depthwiseConv2dNHWC: input must be NHWC, got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        checkDepthwiseFilter(weight, bias: bias, channels: c, op: "depthwiseConv2dNHWC")
        let k = weight.shape[2]
        precondition(padding >= 0 && padding < k, "depthwiseConv2dNHWC: padding \(padding) must lie in 0..<\(k)")
        let oh = h + 2 * padding - k + 1, ow = w + 2 * padding - k + 1
        precondition(oh > 0 && ow > 0, "depthwiseConv2dNHWC: kernel \(k) does not fit input \(h)×\(w) with padding \(padding)")
        let taps = k * k
        FlopCounter.add(n * c * oh * ow * taps)
        OpProfile.addFlops(2 * n * c * oh * ow * taps)

        var out = Tensor(uninitializedShape: [n, oh, ow, c])
        let filter = blockedFilter(weight.pointer, channels: c, kernel: k, flipped: false)
        defer { filter.deallocate() }
        depthwiseNHWC(x.pointer, n: n, h: h, w: w, c: c, k: k, padding: padding, filter: filter, bias: bias?.pointer, out: out.mutablePointer())

        if let tape = Tape.active(for: x, weight, bias) {
            let ux = tape.tracks(weight) ? x.untracked : nil, uw = weight.untracked
            out = tape.record(out, inputs: [x, weight, bias]) { g, needs in
                var gx: Tensor?, gw: Tensor?, gb: Tensor?
                if needs[0] {
                    OpProfile.addFlops(2 * n * c * h * w * taps)
                    var dx = Tensor(uninitializedShape: [n, h, w, c])
                    let flipped = blockedFilter(uw.pointer, channels: c, kernel: k, flipped: true)
                    defer { flipped.deallocate() }
                    depthwiseNHWC(g.pointer, n: n, h: oh, w: ow, c: c, k: k, padding: k - 1 - padding,
                                  filter: flipped, bias: nil, out: dx.mutablePointer())
                    gx = dx
                }
                if needs[1], let ux {
                    OpProfile.addFlops(2 * n * c * oh * ow * taps)
                    // One partial sum per chunk of rows, added in chunk order (a fixed order at a given thread count).
                    let chunks = max(1, min(Threading.threads, n * oh / 2))
                    var partials = Tensor.zeros([chunks, taps * c])
                    let pp = partials.mutablePointer(), px = ux.pointer, pg = g.pointer
                    Threading.parallelFor(chunks) { range in
                        for chunk in range {
                            depthwiseFilterGradientNHWC(px, pg, items: (n * oh * chunk / chunks)..<(n * oh * (chunk + 1) / chunks),
                                                        h: h, w: w, c: c, k: k, padding: padding, sums: pp + chunk * taps * c)
                        }
                    }
                    let total = partials.untracked.summed(toShape: [1, taps * c])
                    var dw = Tensor(uninitializedShape: [c, 1, k, k])
                    let pdw = dw.mutablePointer(), pt = total.pointer
                    for ch in 0..<c { for t in 0..<taps { pdw[ch * taps + t] = pt[t * c + ch] } }
                    gw = dw
                }
                if needs[2] { gb = columnSums(g.pointer, rows: n * oh * ow, cols: c) }
                return [gx, gw, gb]
            }
        }
        return out
    }
}
