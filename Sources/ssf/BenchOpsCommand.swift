// `ssf bench ops`: GFLOP/s and bandwidth of the engine's kernels at ViT-B/16 batch-8 shapes.
import ArgumentParser
import Foundation
import SSFEngine
import SSFFormats

struct BenchOpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Benchmark the FMA peak, sgemm, linear forward+backward, layer norm, softmax, GELU, attention, depthwise conv and memory copy.",
        discussion: """
        Shapes are those of ViT-B/16 at batch 8 (1576 tokens of width 768). Every figure is the
        median of timed repetitions after a warm-up. Bandwidth counts bytes read plus bytes written.
        """
    )
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object per line.") var json = false
    @Option(help: "Timed repetitions per measurement.") var repeats = 7
    @Option(help: "Run only these groups (repeatable): \(Group.allCases.map(\.rawValue).joined(separator: ", ")).") var only: [Group] = []

    enum Group: String, CaseIterable, ExpressibleByArgument {
        case copy, memory, gemm, attention, depthwise
    }

    private func runs(_ group: Group) -> Bool { only.isEmpty || only.contains(group) }

    func run() throws {
        threadOptions.apply()
        let report = BenchReport(json: json)
        report.header("ssf bench ops — \(Threading.threads) thread(s), BLAS kernels: \(BLAS.coreName)\(BLAS.replacedCoreName.map { " (OpenBLAS detected \($0))" } ?? "")")
        var rng = RandomGenerator(seed: 0)

        // Memory copy bandwidth on a buffer larger than the caches (the bandwidth-bound kernels' reference).
        if runs(.copy) || runs(.memory) { copyAndMemory(report, &rng) }
        if runs(.gemm) { fmaAndGemm(report, &rng) }
        if runs(.attention) { attention(report, &rng) }
        if runs(.depthwise) { depthwise(report, &rng) }
    }

    private func copyAndMemory(_ report: BenchReport, _ rng: inout RandomGenerator) {
        let tokens = 8 * 197
        let copyCount = 16 << 20
        let copySource = Tensor.randomUniform([copyCount], using: &rng)
        var copyTarget = Tensor.zeros([copyCount])
        let copyMs = median(repeats) {
            let dst = copyTarget.mutablePointer(), src = copySource.pointer
            Threading.parallelFor(64) { r in
                let lo = copyCount * r.lowerBound / 64, hi = copyCount * r.upperBound / 64
                (dst + lo).update(from: src + lo, count: hi - lo)
            }
        }
        let copyGBps = gbps(bytes: 8 * copyCount, ms: copyMs)
        report.line(op: "copy", shape: "\(copyCount)", ms: copyMs, extra: ["gbps": copyGBps])
        guard runs(.memory) else { return }

        // Bandwidth-bound kernels.
        let ln = Tensor.randomNormal([tokens, 768], using: &rng)
        let lnW = Tensor.ones([768]), lnB = Tensor.zeros([768])
        let lnMs = median(repeats) { _ = layerNorm(ln, weight: lnW, bias: lnB, eps: 1e-6) }
        let lnGBps = gbps(bytes: 8 * ln.count, ms: lnMs)
        report.line(op: "layer_norm", shape: "\(tokens)x768", ms: lnMs, extra: ["gbps": lnGBps, "ratio_to_copy": lnGBps / copyGBps])

        let scores = Tensor.randomNormal([8 * 12 * 197, 197], using: &rng)
        let smMs = median(repeats) { _ = softmax(scores) }
        let smGBps = gbps(bytes: 8 * scores.count, ms: smMs)
        report.line(op: "softmax", shape: "\(8 * 12 * 197)x197", ms: smMs, extra: ["gbps": smGBps, "ratio_to_copy": smGBps / copyGBps])

        let hidden = Tensor.randomNormal([tokens, 3072], using: &rng)
        let geluMs = median(repeats) { _ = gelu(hidden) }
        let geluGBps = gbps(bytes: 8 * hidden.count, ms: geluMs)
        report.line(op: "gelu", shape: "\(tokens)x3072", ms: geluMs, extra: ["gbps": geluGBps, "ratio_to_copy": geluGBps / copyGBps])

        // SSF's scale-shift, forward and backward (input, γ and β gradients), at the MLP width.
        let gamma = Tensor.randomNormal([3072], mean: 1, std: 0.02, using: &rng)
        let betaVector = Tensor.randomNormal([3072], std: 0.02, using: &rng)
        let ssfSeed = Tensor.randomNormal([tokens, 3072], using: &rng)
        let ssfMs = median(repeats) {
            let tape = Tape()
            let (xw, gw, bw) = (tape.watch(hidden), tape.watch(gamma), tape.watch(betaVector))
            let y = tape.recording { scaleShift(xw, scale: gw, shift: bw) }
            _ = tape.backward(from: y, seed: ssfSeed)
        }
        // Bytes: forward reads x, writes y; backward reads y and g (twice) and writes dx.
        report.line(op: "scale_shift_fwd_bwd", shape: "\(tokens)x3072", ms: ssfMs, extra: ["gbps": gbps(bytes: 4 * 6 * hidden.count, ms: ssfMs)])

    }

    private func fmaAndGemm(_ report: BenchReport, _ rng: inout RandomGenerator) {
        let tokens = 8 * 197
        // The cores' FMA peak (all threads at once), the ceiling for the GEMM rates below.
        var peakRate: Double?
        if FMAPeak.available {
            let rounds = 4_000_000
            var flops = 0.0
            let peakMs = median(repeats) { flops = FMAPeak.run(roundsPerThread: rounds) }
            let rate = flops / peakMs / 1e6
            report.line(op: "fma_peak", shape: "\(Threading.threads)x12x8", ms: peakMs, extra: ["gflops": rate])
            peakRate = rate
        }

        // Raw sgemm and linear forward+backward at the four ViT-B projection shapes.
        var sgemmFlops = 0.0, sgemmMs = 0.0, linearFlops = 0.0, linearMs = 0.0
        var roof = SgemmRoof(using: &rng)
        for i in roof.products.indices {
            let (x, w, k, n, flops) = (roof.products[i].x, roof.products[i].w, roof.products[i].k, roof.products[i].n, roof.products[i].flops)
            let b = Tensor.zeros([n])
            let gemm = median(repeats) { roof.products[i].run() }
            let seed = Tensor.randomNormal([tokens, n], using: &rng)
            let lin = median(repeats) {
                let tape = Tape()
                let (xw, ww, bw) = (tape.watch(x), tape.watch(w), tape.watch(b))
                let y = tape.recording { linear(xw, weight: ww, bias: bw) }
                let g = tape.backward(from: y, seed: seed)
                precondition(g[xw] != nil && g[ww] != nil && g[bw] != nil)
            }
            report.line(op: "sgemm", shape: "\(tokens)x\(k)x\(n)", ms: gemm, extra: ["gflops": flops / gemm / 1e6])
            report.line(op: "linear_fwd_bwd", shape: "\(tokens)x\(k)x\(n)", ms: lin, extra: ["gflops": 3 * flops / lin / 1e6])
            sgemmFlops += flops; sgemmMs += gemm
            linearFlops += 3 * flops; linearMs += lin
        }
        let sgemmRate = sgemmFlops / sgemmMs / 1e6, linearRate = linearFlops / linearMs / 1e6
        var sgemmFigures = ["gflops": sgemmRate]
        if let peakRate { sgemmFigures["ratio_to_fma_peak"] = sgemmRate / peakRate }
        report.line(op: "sgemm_all", shape: "vit-b", ms: sgemmMs, extra: sgemmFigures)
        report.line(op: "linear_fwd_bwd_all", shape: "vit-b", ms: linearMs, extra: ["gflops": linearRate, "ratio_to_sgemm": linearRate / sgemmRate])

        // SSF tuning's frozen linear layer and its trained site, forward and backward (x, γ, β), with
        // the site folded into the product and as linear then scaleShift, in alternation: Swin-B's
        // first-stage qkv (8 images of 3136 tokens, 128 → 384) and third-stage fc1 (1568, 512 → 2048).
        for (rows, inF, outF) in [(8 * 3136, 128, 384), (8 * 196, 512, 2048)] {
            let x = Tensor.randomNormal([rows, inF], using: &rng)
            let w = Tensor.randomNormal([outF, inF], std: 0.05, using: &rng), b = Tensor.randomNormal([outF], std: 0.02, using: &rng)
            let gamma = Tensor.randomNormal([outF], mean: 1, std: 0.02, using: &rng), beta = Tensor.randomNormal([outF], std: 0.02, using: &rng)
            let seed = Tensor.randomNormal([rows, outF], using: &rng)
            func step(_ folded: Bool) {
                let tape = Tape()
                let (xw, gw, bw) = (tape.watch(x), tape.watch(gamma), tape.watch(beta))
                let y = tape.recording {
                    folded ? linearFoldedScaleShift(xw, weight: w, bias: b, scale: gw, shift: bw)
                           : scaleShift(linear(xw, weight: w, bias: b), scale: gw, shift: bw)
                }
                let g = tape.backward(from: y, seed: seed)
                precondition(g[xw] != nil && g[gw] != nil && g[bw] != nil)
            }
            let ms = TurnTimer.medianSeconds([{ step(true) }, { step(false) }], rounds: repeats).map { $0 * 1e3 }
            let flops = 2.0 * 2 * Double(rows * inF * outF)
            let shape = "\(rows)x\(inF)x\(outF)"
            report.line(op: "ssf_linear_fold_fb", shape: shape, ms: ms[0], extra: ["gflops": flops / ms[0] / 1e6, "ratio_to_plain": ms[1] / ms[0]])
            report.line(op: "ssf_linear_plain_fb", shape: shape, ms: ms[1], extra: ["gflops": flops / ms[1] / 1e6])
        }

        // Forward products with K or N at most 512 (where `BLAS.ownKernelApplies`), bias in the
        // epilogue, on the engine's kernel and on BLAS in alternation: Swin-B's first-stage qkv and
        // ConvNeXt-B's first-stage MLP (8 images of 3136 tokens), and Swin-B's third-stage MLP (1568).
        for (rows, inF, outF) in [(8 * 3136, 128, 384), (8 * 3136, 128, 512), (8 * 3136, 512, 128), (8 * 196, 512, 2048), (8 * 196, 2048, 512)] {
            let x = Tensor.randomNormal([rows, inF], using: &rng)
            let w = Tensor.randomNormal([outF, inF], std: 0.05, using: &rng), b = Tensor.randomNormal([outF], std: 0.02, using: &rng)
            var y = Tensor.zeros([rows, outF])
            let out = y.mutablePointer()
            func product(own: Bool) -> () -> Void {
                {
                    let previous = BLAS.ownKernelEnabled
                    BLAS.ownKernelEnabled = own
                    defer { BLAS.ownKernelEnabled = previous }
                    BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: outF, k: inF, a: x.pointer, lda: inF,
                               b: w.pointer, ldb: inF, c: out, ldc: outF, columnBias: b.pointer)
                }
            }
            let ms = TurnTimer.medianSeconds([product(own: true), product(own: false)], rounds: repeats).map { $0 * 1e3 }
            let flops = 2.0 * Double(rows * inF * outF), shape = "\(rows)x\(inF)x\(outF)"
            report.line(op: "gemm_bias_own", shape: shape, ms: ms[0], extra: ["gflops": flops / ms[0] / 1e6, "ratio_to_blas": ms[1] / ms[0]])
            report.line(op: "gemm_bias_blas", shape: shape, ms: ms[1], extra: ["gflops": flops / ms[1] / 1e6])
        }
    }

    /// ViT-B's attention and Swin-B's window attention.
    private func attention(_ report: BenchReport, _ rng: inout RandomGenerator) {
        // ViT-B's attention, forward and forward + backward, with the per-head products on the
        // engine's small-product kernel and on BLAS, in alternation.
        let qkv = Tensor.randomNormal([8, 197, 2304], using: &rng)
        let attnSeed = Tensor.randomNormal([8, 197, 768], using: &rng)
        let attnFlops = 4.0 * Double(8 * 12 * 197 * 197 * 64)
        timeAgainstBLAS(report, op: "attention", shape: "8x197x12x64", flops: attnFlops, repeats: repeats,
                        switchTo: { let previous = BLAS.smallKernelEnabled; BLAS.smallKernelEnabled = $0; return previous },
                        forward: { _ = scaledDotProductAttention(qkv: qkv, heads: 12) },
                        backward: {
                            let tape = Tape()
                            let q = tape.watch(qkv)
                            let y = tape.recording { scaledDotProductAttention(qkv: q, heads: 12) }
                            _ = tape.backward(from: y, seed: attnSeed)
                        })

        // Swin-B's window attention at its first and third stages (8 images; 64 and 4 windows of 49
        // tokens per image; 4 and 16 heads of 32 channels), with the relative position bias and a
        // shifted-window mask: the direct window kernels and BLAS in alternation.
        for (windowsPerImage, heads) in [(64, 4), (4, 16)] {
            let batch = 8 * windowsPerImage, width = heads * 32
            let windows = Tensor.randomNormal([batch, 49, 3 * width], using: &rng)
            let relativeBias = Tensor.randomNormal([heads, 49, 49], using: &rng)
            let windowMask = Tensor.zeros([windowsPerImage, 49, 49])
            let windowSeed = Tensor.randomNormal([batch, 49, width], using: &rng)
            let windowFlops = 4.0 * Double(batch * heads * 49 * 49 * 32)
            timeAgainstBLAS(report, op: "window_attn", shape: "\(batch)x49x\(heads)x32", flops: windowFlops, repeats: repeats,
                            switchTo: { let previous = WindowAttentionKernels.enabled; WindowAttentionKernels.enabled = $0; return previous },
                            forward: { _ = scaledDotProductAttention(qkv: windows, heads: heads, bias: relativeBias, mask: windowMask) },
                            backward: {
                                let tape = Tape()
                                let (q, b) = (tape.watch(windows), tape.watch(relativeBias))
                                let y = tape.recording { scaledDotProductAttention(qkv: q, heads: heads, bias: b, mask: windowMask) }
                                _ = tape.backward(from: y, seed: windowSeed)
                            })
        }

    }

    /// The 7×7 depthwise convolution at ConvNeXt-B's first and third stages (batch 8), NCHW and
    /// channels-last, forward and forward + input gradient (a frozen filter, as in SSF training).
    private func depthwise(_ report: BenchReport, _ rng: inout RandomGenerator) {
        for (channels, side) in [(128, 56), (512, 14)] {
            let image = Tensor.randomNormal([8, channels, side, side], using: &rng)
            let imageNHWC = image.permuted([0, 2, 3, 1])
            let weight = Tensor.randomNormal([channels, 1, 7, 7], std: 0.1, using: &rng)
            let bias = Tensor.zeros([channels])
            let seed = Tensor.randomNormal(image.shape, using: &rng), seedNHWC = seed.permuted([0, 2, 3, 1])
            let flops = 2.0 * Double(8 * channels * side * side * 49)
            let shape = "8x\(channels)x\(side)x\(side)"
            func forwardBackward(_ x: Tensor, _ g: Tensor, _ conv: (Tensor) -> Tensor) {
                let tape = Tape()
                let xw = tape.watch(x)
                let y = tape.recording { conv(xw) }
                precondition(tape.backward(from: y, seed: g)[xw] != nil)
            }
            // The four in alternation, so that a change of clock speed falls on all of them.
            let ms = TurnTimer.medianSeconds([
                { _ = depthwiseConv2d(image, weight: weight, bias: bias, stride: 1, padding: 3) },
                { _ = depthwiseConv2dNHWC(imageNHWC, weight: weight, bias: bias, padding: 3) },
                { forwardBackward(image, seed) { depthwiseConv2d($0, weight: weight, bias: bias, stride: 1, padding: 3) } },
                { forwardBackward(imageNHWC, seedNHWC) { depthwiseConv2dNHWC($0, weight: weight, bias: bias, padding: 3) } },
            ], rounds: repeats).map { $0 * 1e3 }
            let (nchw, nhwc, nchwFB, nhwcFB) = (ms[0], ms[1], ms[2], ms[3])
            report.line(op: "depthwise_conv7x7", shape: shape, ms: nchw, extra: ["gflops": flops / nchw / 1e6])
            report.line(op: "depthwise_conv7x7_nhwc", shape: shape, ms: nhwc, extra: ["gflops": flops / nhwc / 1e6])
            report.line(op: "depthwise_conv7x7_fb", shape: shape, ms: nchwFB, extra: ["gflops": 2 * flops / nchwFB / 1e6])
            report.line(op: "depthwise_conv7x7_nhwc_fb", shape: shape, ms: nhwcFB, extra: ["gflops": 2 * flops / nhwcFB / 1e6])
        }
    }

    /// Times `forward` and `forward + backward` of an op with one of the engine's kernels switched on
    /// and off (`switchTo` sets the switch and returns its previous value), all four in alternation,
    /// and reports `op`, `op_blas`, `op_fb` and `op_fb_blas`. The backward recomputes the scores and
    /// runs four more products: 3.5× the forward's FLOPs.
    private func timeAgainstBLAS(_ report: BenchReport, op: String, shape: String, flops: Double, repeats: Int,
                                 switchTo: @escaping (Bool) -> Bool, forward: @escaping () -> Void, backward: @escaping () -> Void) {
        func turn(kernel: Bool, _ body: @escaping () -> Void) -> () -> Void {
            {
                let previous = switchTo(kernel)
                defer { _ = switchTo(previous) }
                body()
            }
        }
        let ms = TurnTimer.medianSeconds([turn(kernel: true, forward), turn(kernel: false, forward),
                                          turn(kernel: true, backward), turn(kernel: false, backward)],
                                         rounds: repeats, warmup: 1).map { $0 * 1e3 }
        for (i, suffix) in ["", "_blas", "_fb", "_fb_blas"].enumerated() {
            report.line(op: op + suffix, shape: shape, ms: ms[i], extra: ["gflops": flops * (i < 2 ? 1 : 3.5) / ms[i] / 1e6])
        }
    }

    /// Median wall time in milliseconds of `repeats` runs after one warm-up run.
    private func median(_ repeats: Int, _ body: () -> Void) -> Double {
        TurnTimer.medianSeconds(rounds: repeats, body) * 1e3
    }

    private func gbps(bytes: Int, ms: Double) -> Double { Double(bytes) / ms / 1e6 }
}

/// Prints benchmark lines as aligned text or as JSON objects.
struct BenchReport {
    let json: Bool

    func header(_ text: String) { if !json { print(text) } }

    func line(op: String, shape: String, ms: Double, extra: [String: Double]) {
        if json {
            let fixed = [JSONMember("op", JSONValue(op)), JSONMember("shape", JSONValue(shape)),
                         JSONMember("ms", JSONValue(ms, significantDigits: 4)), JSONMember("threads", JSONValue(Threading.threads))]
            let figures = extra.keys.sorted().map { JSONMember($0, JSONValue(extra[$0]!, significantDigits: 4)) }
            print(JSONValue.orderedObject(fixed + figures).serialized)
        } else {
            let figures = extra.keys.sorted().map { "\($0) \(String(format: "%.2f", extra[$0]!))" }.joined(separator: "  ")
            print("\(op.padding(toLength: 20, withPad: " ", startingAt: 0)) \(shape.padding(toLength: 16, withPad: " ", startingAt: 0)) \(String(format: "%9.3f", ms)) ms  \(figures)")
        }
    }
}
