// Convolution and pooling ops: forward values against naive reference loops (in Double) and
// gradients of every input by central finite differences.
import XCTest
@testable import SSFEngine

final class ConvPoolTests: XCTestCase {
    private func normal(_ shape: [Int], _ seed: UInt64) -> Tensor { GradientCheck.normal(shape, seed: seed) }

    // MARK: - Reference loops

    /// Direct NCHW convolution with zero padding, dilation and groups, accumulated in Double.
    private func referenceConv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                               dilation: (Int, Int), groups: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let oh = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
        let ow = (w + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
        let xs = x.scalars, ws = weight.scalars, bs = bias?.scalars
        let og = o / groups
        var out = [Float](repeating: 0, count: n * o * oh * ow)
        for img in 0..<n {
            for oc in 0..<o {
                let grp = oc / og
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var s = Double(bs?[oc] ?? 0)
                        for ic in 0..<cg {
                            let ch = grp * cg + ic
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    let iy = oy * stride.0 - padding.0 + i * dilation.0
                                    let ix = ox * stride.1 - padding.1 + j * dilation.1
                                    guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                                    s += Double(xs[((img * c + ch) * h + iy) * w + ix]) * Double(ws[((oc * cg + ic) * kh + i) * kw + j])
                                }
                            }
                        }
                        out[((img * o + oc) * oh + oy) * ow + ox] = Float(s)
                    }
                }
            }
        }
        return Tensor(shape: [n, o, oh, ow], out)
    }

    /// Direct pooling: mean over the padded window (padding counted) or max (padding = −∞).
    private func referencePool(_ x: Tensor, kernel: Int, stride: Int, padding: Int, max isMax: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
        let xs = x.scalars
        var out = [Float]()
        for p in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = 0.0, best = -Double.infinity
                    for i in 0..<kernel {
                        for j in 0..<kernel {
                            let iy = oy * stride - padding + i, ix = ox * stride - padding + j
                            guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                            let v = Double(xs[(p * h + iy) * w + ix])
                            sum += v
                            best = Swift.max(best, v)
                        }
                    }
                    out.append(Float(isMax ? best : sum / Double(kernel * kernel)))
                }
            }
        }
        return Tensor(shape: [n, c, oh, ow], out)
    }

    private func assertClose(_ actual: Tensor, _ expected: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, message, file: file, line: line)
        guard actual.shape == expected.shape else { return }
        let scale = Swift.max(expected.scalars.map(abs).max() ?? 0, 1)
        let gap = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(gap, 1e-5 * scale, "\(message): max difference \(gap)", file: file, line: line)
    }

    // MARK: - conv2d forward

    func testConvForwardConfigurations() {
        // (input shape, weight shape, stride, padding, dilation, groups)
        let cases: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), Int)] = [
            ([2, 4, 7, 6], [5, 4, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([2, 3, 9, 8], [4, 3, 3, 3], (2, 2), (1, 1), (1, 1), 1),
            ([1, 3, 9, 10], [4, 3, 3, 3], (1, 1), (2, 2), (2, 2), 1),
            ([2, 4, 6, 7], [6, 2, 3, 3], (1, 1), (1, 1), (1, 1), 2),
            ([2, 3, 8, 9], [4, 3, 3, 2], (2, 1), (1, 0), (1, 2), 1),
            ([2, 3, 16, 16], [8, 3, 4, 4], (4, 4), (0, 0), (1, 1), 1),
            ([3, 8, 5, 5], [6, 8, 1, 1], (1, 1), (0, 0), (1, 1), 1),
            ([2, 8, 5, 5], [6, 4, 1, 1], (1, 1), (0, 0), (1, 1), 2),
            ([2, 8, 7, 7], [6, 8, 1, 1], (2, 2), (0, 0), (1, 1), 1),
            ([2, 6, 7, 7], [6, 2, 3, 3], (2, 2), (1, 1), (1, 1), 3),
        ]
        for (index, (xs, wsh, s, p, d, g)) in cases.enumerated() {
            let x = normal(xs, UInt64(10 + index)), w = normal(wsh, UInt64(40 + index)), b = normal([wsh[0]], UInt64(70 + index))
            let expected = referenceConv(x, w, b, stride: s, padding: p, dilation: d, groups: g)
            assertClose(conv2d(x, weight: w, bias: b, stride: s, padding: p, dilation: d, groups: g), expected, "conv case \(index)")
            let noBias = referenceConv(x, w, nil, stride: s, padding: p, dilation: d, groups: g)
            assertClose(conv2d(x, weight: w, stride: s, padding: p, dilation: d, groups: g), noBias, "conv case \(index) without bias")
        }
    }

    func testConvIntOverloadMatchesTuples() {
        let x = normal([1, 2, 8, 8], 1), w = normal([3, 2, 3, 3], 2)
        let a = conv2d(x, weight: w, stride: 2, padding: 2, dilation: 2)
        let b = conv2d(x, weight: w, stride: (2, 2), padding: (2, 2), dilation: (2, 2))
        XCTAssertEqual(a.scalars, b.scalars)
    }

    /// More images than threads: the images are split into parallel chunks.
    func testConvForwardManyImages() {
        let n = Threading.threads + 1
        let x = normal([n, 3, 6, 6], 3), w = normal([4, 3, 3, 3], 4), b = normal([4], 5)
        let expected = referenceConv(x, w, b, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
        assertClose(conv2d(x, weight: w, bias: b, padding: 1), expected, "many images")
    }

    // MARK: - Depthwise forward

    func testDepthwiseForwardConfigurations() {
        // Widths cover every tile shape: ≤ 8 and ≤ 16 columns (several rows per tile), and
        // wide rows with remainders of one to four vectors.
        for k in [3, 5, 7] {
            for stride in [1, 2] {
                for (h, w) in [(7, 5), (9, 12), (11, 20), (6, 40), (5, 70)] {
                    for padding in [0, k / 2] where (h + 2 * padding - k) >= 0 && (w + 2 * padding - k) >= 0 {
                        let x = normal([2, 3, h, w], UInt64(k * 100 + w)), wt = normal([3, 1, k, k], UInt64(k)), b = normal([3], 9)
                        let expected = referenceConv(x, wt, b, stride: (stride, stride), padding: (padding, padding),
                                                     dilation: (1, 1), groups: 3)
                        let label = "depthwise k=\(k) s=\(stride) p=\(padding) \(h)×\(w)"
                        assertClose(depthwiseConv2d(x, weight: wt, bias: b, stride: stride, padding: padding), expected, label)
                        assertClose(conv2d(x, weight: wt, bias: b, stride: stride, padding: padding, groups: 3), expected, label + " via conv2d")
                    }
                }
            }
        }
    }

    func testDepthwisePaddingBeyondKernel() {
        let x = normal([1, 2, 5, 6], 11), w = normal([2, 1, 3, 3], 12)
        let expected = referenceConv(x, w, nil, stride: (2, 2), padding: (3, 3), dilation: (1, 1), groups: 2)
        assertClose(depthwiseConv2d(x, weight: w, stride: 2, padding: 3), expected, "padding 3 > k − 1")
    }

    func testDepthwiseDilatedFallsBackToIm2col() {
        let x = normal([1, 4, 9, 9], 13), w = normal([4, 1, 3, 3], 14)
        let expected = referenceConv(x, w, nil, stride: (1, 1), padding: (2, 2), dilation: (2, 2), groups: 4)
        assertClose(conv2d(x, weight: w, padding: 2, dilation: 2, groups: 4), expected, "dilated depthwise")
    }

    // MARK: - Pooling forward

    func testPoolForward() {
        let x = normal([2, 3, 9, 8], 20)
        let windows: [(kernel: Int, stride: Int, padding: Int)] = [(2, 2, 0), (3, 2, 1), (3, 1, 1), (3, 3, 0), (5, 2, 2)]
        for (kernel, stride, padding) in windows {
            let label = "k=\(kernel) s=\(stride) p=\(padding)"
            assertClose(avgPool2d(x, kernel: kernel, stride: stride, padding: padding),
                        referencePool(x, kernel: kernel, stride: stride, padding: padding, max: false), "avg " + label)
            assertClose(maxPool2d(x, kernel: kernel, stride: stride, padding: padding),
                        referencePool(x, kernel: kernel, stride: stride, padding: padding, max: true), "max " + label)
        }
        XCTAssertEqual(avgPool2d(x, kernel: 2).shape, [2, 3, 4, 4], "stride defaults to the kernel")
    }

    func testGlobalAvgPoolForward() {
        let x = normal([2, 3, 5, 7], 21)
        let out = globalAvgPool2d(x)
        XCTAssertEqual(out.shape, [2, 3])
        let xs = x.scalars
        for p in 0..<6 {
            let mean = xs[(p * 35)..<((p + 1) * 35)].reduce(0, +) / 35
            XCTAssertEqual(out.scalars[p], mean, accuracy: 1e-5)
        }
    }

    func testMaxPoolGradientGoesToFirstMaximum() {
        let x = Tensor(shape: [1, 1, 2, 4], [1, 3, 3, 0,
                                            3, 2, 1, 3])
        let tape = Tape()
        let xw = tape.watch(x)
        let y = tape.recording { maxPool2d(xw, kernel: 2) }
        XCTAssertEqual(y.scalars, [3, 3])
        let g = tape.backward(from: y)
        XCTAssertEqual(g[xw]?.scalars, [0, 1, 1, 0,
                                        0, 0, 0, 0])
    }

    /// Like PyTorch: a window of −∞ sends its gradient to its first pixel inside the image, and NaN wins.
    func testMaxPoolInfinityAndNaN() {
        let x = Tensor(shape: [1, 1, 2, 2], repeating: -.infinity)
        let tape = Tape()
        let xw = tape.watch(x)
        let y = tape.recording { maxPool2d(xw, kernel: 2, stride: 1, padding: 1) }
        XCTAssertEqual(y.scalars, [Float](repeating: -.infinity, count: 9))
        XCTAssertEqual(tape.backward(from: y)[xw]?.scalars, [4, 2, 2, 1])

        let withNaN = Tensor(shape: [1, 1, 2, 4], [1, .nan, 5, 2,
                                                  0, 3, 4, 9])
        let pooled = maxPool2d(withNaN, kernel: 2)
        XCTAssertTrue(pooled.scalars[0].isNaN)
        XCTAssertEqual(pooled.scalars[1], 9)
    }

    // MARK: - Gradients

    func testConvGradients() {
        let cases: [(String, [Int], [Int], (Int, Int), (Int, Int), (Int, Int), Int)] = [
            ("3×3 padding 1", [2, 3, 5, 4], [4, 3, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ("stride 2", [1, 2, 7, 6], [3, 2, 3, 3], (2, 2), (1, 1), (1, 1), 1),
            ("dilation 2", [1, 2, 7, 7], [3, 2, 3, 3], (1, 1), (2, 2), (2, 2), 1),
            ("groups 2", [2, 4, 5, 5], [4, 2, 3, 3], (1, 1), (1, 1), (1, 1), 2),
            ("mixed pairs", [1, 2, 7, 6], [3, 2, 3, 2], (2, 1), (1, 0), (1, 2), 1),
            ("1×1", [2, 4, 3, 3], [3, 4, 1, 1], (1, 1), (0, 0), (1, 1), 1),
            ("1×1 groups 2", [2, 4, 3, 3], [6, 2, 1, 1], (1, 1), (0, 0), (1, 1), 2),
            ("1×1 stride 2", [1, 3, 5, 5], [2, 3, 1, 1], (2, 2), (0, 0), (1, 1), 1),
        ]
        for (index, (label, xs, wsh, s, p, d, g)) in cases.enumerated() {
            let x = normal(xs, UInt64(200 + index)), w = normal(wsh, UInt64(300 + index)), b = normal([wsh[0]], UInt64(400 + index))
            GradientCheck.check("conv2d " + label, [x, w, b]) {
                conv2d($0[0], weight: $0[1], bias: $0[2], stride: s, padding: p, dilation: d, groups: g)
            }
        }
    }

    /// More images than threads: weight gradients are summed over parallel chunks.
    func testConvGradientsManyImages() {
        let n = Threading.threads + 1
        let x = normal([n, 2, 4, 4], 30), w = normal([3, 2, 3, 3], 31), b = normal([3], 32)
        GradientCheck.check("conv2d many images", [x, w, b]) { conv2d($0[0], weight: $0[1], bias: $0[2], padding: 1) }
        let pw = normal([3, 2, 1, 1], 33)
        GradientCheck.check("pointwise conv many images", [x, pw]) { conv2d($0[0], weight: $0[1]) }
    }

    /// Tracking only one of input and weight gives that input the same gradient as tracking both.
    func testConvPartialTracking() {
        let x = normal([2, 3, 5, 5], 34), w = normal([4, 3, 3, 3], 35)
        let seed = normal([2, 4, 3, 3], 36)
        func gradients(trackX: Bool, trackW: Bool) -> (Tensor?, Tensor?) {
            let tape = Tape()
            let xw = trackX ? tape.watch(x) : x, ww = trackW ? tape.watch(w) : w
            let y = tape.recording { conv2d(xw, weight: ww, stride: 2, padding: 1) }
            let g = tape.backward(from: y, seed: seed)
            return (trackX ? g[xw] : nil, trackW ? g[ww] : nil)
        }
        let both = gradients(trackX: true, trackW: true)
        XCTAssertEqual(gradients(trackX: true, trackW: false).0?.scalars, both.0?.scalars)
        XCTAssertEqual(gradients(trackX: false, trackW: true).1?.scalars, both.1?.scalars)
    }

    func testDepthwiseGradients() {
        for (k, stride, padding, h, w) in [(3, 1, 1, 5, 6), (3, 2, 1, 7, 6), (5, 1, 2, 6, 9), (5, 2, 2, 7, 7),
                                             (7, 1, 3, 5, 18), (7, 2, 3, 8, 9), (3, 1, 0, 5, 5), (3, 2, 3, 4, 5)] {
            let x = normal([2, 2, h, w], UInt64(500 + k * 10 + stride)), wt = normal([2, 1, k, k], UInt64(600 + k)), b = normal([2], 7)
            GradientCheck.check("depthwise k=\(k) s=\(stride) p=\(padding) \(h)×\(w)", [x, wt, b]) {
                depthwiseConv2d($0[0], weight: $0[1], bias: $0[2], stride: stride, padding: padding)
            }
        }
    }

    func testPoolGradients() {
        let x = normal([2, 2, 6, 5], 40)
        let windows: [(kernel: Int, stride: Int, padding: Int)] = [(2, 2, 0), (3, 2, 1), (3, 1, 1)]
        for (kernel, stride, padding) in windows {
            GradientCheck.check("avgPool2d k=\(kernel) s=\(stride) p=\(padding)", [x]) {
                avgPool2d($0[0], kernel: kernel, stride: stride, padding: padding)
            }
        }
        // Distinct values 0.1 apart, so no perturbation changes a window's maximum.
        var rng = RandomGenerator(seed: 41)
        var values = (0..<60).map { Float($0) * 0.1 }
        for i in stride(from: values.count - 1, to: 0, by: -1) { values.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let distinct = Tensor(shape: [2, 2, 3, 5], values)
        for (kernel, stride, padding) in windows {
            GradientCheck.check("maxPool2d k=\(kernel) s=\(stride) p=\(padding)", [distinct]) {
                maxPool2d($0[0], kernel: kernel, stride: stride, padding: padding)
            }
        }
        GradientCheck.check("globalAvgPool2d", [x]) { globalAvgPool2d($0[0]) }
    }
}
