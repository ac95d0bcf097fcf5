// PyTorch parity for every engine op: each case of the fixtures written by
// tools/gen_engine_fixtures.py is run forward on a tape with its differentiable inputs watched,
// back-propagated with the stored cotangent R, and compared with PyTorch's float64 results.
import Foundation
import XCTest
@testable import SSFEngine
import SSFNN
import SSFTestSupport

/// A case's `__metadata__` entry: the op, its differentiable inputs in argument order, and
/// its scalar arguments (only those the op takes are present).
private struct CaseConfig: Decodable {
    let op: String
    let inputs: [String]
    var axes: [Int]?
    var axis: Int?
    var channelAxis: String?
    var dilation: Int?
    var dilationHW: [Int]?
    var end: Int?
    var eps: Float?
    var groups: Int?
    var heads: Int?
    var height: Int?
    var kernel: Int?
    var keepDims: Bool?
    var labelSmoothing: Float?
    var padding: Int?
    var paddingHW: [Int]?
    var perm: [Int]?
    var scalar: Float?
    var scale: Float?
    var shape: [Int]?
    var shifts: [Int]?
    var start: Int?
    var stride: Int?
    var strideHW: [Int]?
    var transposeA: Bool?
    var transposeB: Bool?
    var width: Int?
    var windowSize: Int?
}

private struct ParityError: Error, CustomStringConvertible {
    let description: String
}

/// The tensors and scalar arguments of one case, with throwing accessors.
private struct CaseArguments {
    let config: CaseConfig
    let tensors: [String: Tensor]

    func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else { throw ParityError(description: "missing tensor \(name)") }
        return t
    }

    func optional(_ name: String) -> Tensor? { tensors[name] }

    /// An integer argument stored as a float tensor (labels, indices).
    func integers(_ name: String) throws -> [Int] { try tensor(name).scalars.map { Int($0) } }

    func value<T>(_ key: KeyPath<CaseConfig, T?>, _ name: String) throws -> T {
        guard let v = config[keyPath: key] else { throw ParityError(description: "missing argument \(name)") }
        return v
    }

    func pair(_ key: KeyPath<CaseConfig, [Int]?>, _ name: String) throws -> (Int, Int) {
        let v = try value(key, name)
        guard v.count == 2 else { throw ParityError(description: "\(name) must have two entries") }
        return (v[0], v[1])
    }
}

/// Runs the Swift op named by `args.config.op`.
private func apply(_ args: CaseArguments) throws -> Tensor {
    let c = args.config
    switch c.op {
    case "add": return try args.tensor("a") + args.tensor("b")
    case "sub": return try args.tensor("a") - args.tensor("b")
    case "mul": return try args.tensor("a") * args.tensor("b")
    case "div": return try args.tensor("a") / args.tensor("b")
    case "addScalar": return try args.tensor("a") + args.value(\.scalar, "scalar")
    case "subScalar": return try args.tensor("a") - args.value(\.scalar, "scalar")
    case "mulScalar": return try args.tensor("a") * args.value(\.scalar, "scalar")
    case "divScalar": return try args.tensor("a") / args.value(\.scalar, "scalar")
    case "neg": return try -args.tensor("a")
    case "matmul":
        return try matmul(args.tensor("a"), args.tensor("b"),
                          transposeA: args.value(\.transposeA, "transposeA"), transposeB: args.value(\.transposeB, "transposeB"))
    case "linear": return try linear(args.tensor("x"), weight: args.tensor("weight"), bias: args.optional("bias"))
    case "sum": return try args.tensor("x").sum(axes: args.value(\.axes, "axes"), keepDims: args.value(\.keepDims, "keepDims"))
    case "mean": return try args.tensor("x").mean(axes: args.value(\.axes, "axes"), keepDims: args.value(\.keepDims, "keepDims"))
    case "sumAll": return try args.tensor("x").sum()
    case "meanAll": return try args.tensor("x").mean()
    case "layerNorm":
        return try layerNorm(args.tensor("x"), weight: args.optional("weight"), bias: args.optional("bias"), eps: args.value(\.eps, "eps"))
    case "layerNorm2d":
        return try layerNorm2d(args.tensor("x"), weight: args.optional("weight"), bias: args.optional("bias"), eps: args.value(\.eps, "eps"))
    case "groupNorm":
        return try groupNorm(args.tensor("x"), groups: args.value(\.groups, "groups"),
                             weight: args.optional("weight"), bias: args.optional("bias"), eps: args.value(\.eps, "eps"))
    case "batchNorm":
        return try batchNormInference(args.tensor("x"), mean: args.tensor("mean"), variance: args.tensor("variance"),
                                      weight: args.optional("weight"), bias: args.optional("bias"), eps: args.value(\.eps, "eps"))
    case "scaleShift":
        let axis: ChannelAxis
        switch try args.value(\.channelAxis, "channelAxis") {
        case "last": axis = .last
        case "channelsFirst": axis = .channelsFirst
        case let other: throw ParityError(description: "unknown channel axis \(other)")
        }
        return try scaleShift(args.tensor("x"), scale: args.tensor("scale"), shift: args.tensor("shift"), axis: axis)
    case "softmax": return try softmax(args.tensor("x"))
    case "logSoftmax": return try logSoftmax(args.tensor("x"))
    case "gelu": return try gelu(args.tensor("x"))
    case "relu": return try relu(args.tensor("x"))
    case "relu6": return try relu6(args.tensor("x"))
    case "silu": return try silu(args.tensor("x"))
    case "hardSwish": return try hardSwish(args.tensor("x"))
    case "sigmoid": return try sigmoid(args.tensor("x"))
    case "conv2d":
        return try conv2d(args.tensor("x"), weight: args.tensor("weight"), bias: args.optional("bias"),
                          stride: args.value(\.stride, "stride"), padding: args.value(\.padding, "padding"),
                          dilation: args.value(\.dilation, "dilation"), groups: args.value(\.groups, "groups"))
    case "conv2dTuple":
        return try conv2d(args.tensor("x"), weight: args.tensor("weight"), bias: args.optional("bias"),
                          stride: args.pair(\.strideHW, "strideHW"), padding: args.pair(\.paddingHW, "paddingHW"),
                          dilation: args.pair(\.dilationHW, "dilationHW"))
    case "depthwiseConv2d":
        return try depthwiseConv2d(args.tensor("x"), weight: args.tensor("weight"), bias: args.optional("bias"),
                                   stride: args.value(\.stride, "stride"), padding: args.value(\.padding, "padding"))
    case "avgPool2d":
        return try avgPool2d(args.tensor("x"), kernel: args.value(\.kernel, "kernel"), stride: c.stride,
                             padding: args.value(\.padding, "padding"))
    case "maxPool2d":
        return try maxPool2d(args.tensor("x"), kernel: args.value(\.kernel, "kernel"), stride: c.stride,
                             padding: args.value(\.padding, "padding"))
    case "globalAvgPool2d": return try globalAvgPool2d(args.tensor("x"))
    case "roll":
        return try roll(args.tensor("x"), shifts: args.value(\.shifts, "shifts"), axes: args.value(\.axes, "axes"))
    case "windowPartition": return try windowPartition(args.tensor("x"), windowSize: args.value(\.windowSize, "windowSize"))
    case "windowReverse":
        return try windowReverse(args.tensor("windows"), windowSize: args.value(\.windowSize, "windowSize"),
                                 height: args.value(\.height, "height"), width: args.value(\.width, "width"))
    case "concat": return try concat(c.inputs.map(args.tensor), axis: args.value(\.axis, "axis"))
    case "stack": return try stack(c.inputs.map(args.tensor), axis: args.value(\.axis, "axis"))
    case "permute": return try args.tensor("x").permuted(args.value(\.perm, "perm"))
    case "transposed":
        let axes = try args.value(\.axes, "axes")
        return try args.tensor("x").transposed(axes[0], axes[1])
    case "slice":
        return try args.tensor("x").slice(axis: args.value(\.axis, "axis"), range: args.value(\.start, "start")..<args.value(\.end, "end"))
    case "indexSelect":
        return try args.tensor("x").indexSelect(axis: args.value(\.axis, "axis"), indices: args.integers("indices"))
    case "gather":
        return try args.tensor("x").gather(axis: args.value(\.axis, "axis"), indices: args.integers("index"),
                                           indexShape: args.tensor("index").shape)
    case "expanded": return try args.tensor("x").expanded(to: args.value(\.shape, "shape"))
    case "reshaped": return try args.tensor("x").reshaped(args.value(\.shape, "shape"))
    case "crossEntropy":
        return try crossEntropy(args.tensor("logits"), labels: args.integers("labels"),
                                labelSmoothing: args.value(\.labelSmoothing, "labelSmoothing"))
    case "crossEntropySoft": return try crossEntropy(args.tensor("logits"), softTargets: args.tensor("softTargets"))
    case "attention":
        return try scaledDotProductAttention(qkv: args.tensor("qkv"), heads: args.value(\.heads, "heads"), scale: c.scale,
                                             bias: args.optional("bias"), mask: args.optional("mask"))
    default: throw ParityError(description: "unknown op \(c.op)")
    }
}

final class TorchParityTests: XCTestCase {
    /// Output tolerance: max |Δ| ≤ 1e-4, relative to the largest magnitude once that exceeds 1.
    static let outputTolerance: Float = 1e-4
    /// Gradient tolerance: ‖Δ‖∞ / max(‖g‖∞, 1e-3) ≤ 1e-3.
    static let gradientTolerance: Float = 1e-3

    /// Runs every case of `ops_<family>.safetensors` and prints each case's errors.
    private func runFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "ops_\(family)", withExtension: "safetensors", subdirectory: "Fixtures"),
                                "fixture ops_\(family).safetensors is missing", file: file, line: line)
        let fixture = try SafeTensors.load(url)
        let cases = fixture.metadata.keys.sorted()
        XCTAssertFalse(cases.isEmpty, "ops_\(family) has no cases", file: file, line: line)
        for name in cases {
            let config = try JSONDecoder().decode(CaseConfig.self, from: Data(fixture.metadata[name]!.utf8))
            var tensors: [String: Tensor] = [:]
            for (key, t) in fixture.tensors where key.hasPrefix(name + ".") {
                tensors[String(key.dropFirst(name.count + 1))] = t
            }
            do {
                try runCase("\(family)/\(name)", config, tensors, file: file, line: line)
            } catch {
                XCTFail("\(family)/\(name): \(error)", file: file, line: line)
            }
        }
    }

    private func runCase(_ label: String, _ config: CaseConfig, _ stored: [String: Tensor], file: StaticString, line: UInt) throws {
        let isInput = { (k: String) in k != "out" && k != "R" && !k.hasPrefix("grad.") }
        var arguments = stored.filter { isInput($0.key) }
        let tape = Tape()
        for name in config.inputs {
            guard let t = arguments[name] else { throw ParityError(description: "missing input \(name)") }
            arguments[name] = tape.watch(t)
        }
        let args = CaseArguments(config: config, tensors: arguments)
        let out = try tape.recording { try apply(args) }
        guard let expected = stored["out"], let r = stored["R"] else { throw ParityError(description: "missing out or R") }

        var report = ["out \(format(checkClose(out, expected, floor: 1, tolerance: Self.outputTolerance, label: "\(label) out", file: file, line: line)))"]
        guard out.shape == expected.shape else { return }
        guard tape.tracks(out) else {
            XCTFail("\(label): output is not recorded on the tape", file: file, line: line)
            return
        }
        let grads = tape.backward(from: out, seed: r)
        for name in config.inputs {
            guard let expectedGrad = stored["grad.\(name)"] else { throw ParityError(description: "missing grad.\(name)") }
            guard let g = grads[arguments[name]!] else {
                XCTFail("\(label): no gradient reached \(name)", file: file, line: line)
                continue
            }
            let err = checkClose(g, expectedGrad, floor: 1e-3, tolerance: Self.gradientTolerance, label: "\(label) grad.\(name)", file: file, line: line)
            report.append("grad.\(name) \(format(err))")
        }
        print("parity \(label): " + report.joined(separator: ", "))
    }

    private func format(_ error: Float?) -> String {
        error.map { String(format: "%.2e", Double($0)) } ?? "FAILED"
    }

    func testArithmetic() throws { try runFamily("arith") }
    func testMatmul() throws { try runFamily("matmul") }
    func testReductions() throws { try runFamily("reduce") }
    func testNormalization() throws { try runFamily("norm") }
    func testActivations() throws { try runFamily("activation") }
    func testConvolutions() throws { try runFamily("conv") }
    func testPooling() throws { try runFamily("pool") }
    func testShapeOps() throws { try runFamily("shape") }
    func testLosses() throws { try runFamily("loss") }
    func testAttention() throws { try runFamily("attention") }
}
