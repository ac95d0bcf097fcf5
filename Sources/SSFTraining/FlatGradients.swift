// The trainable parameters' gradients in one contiguous buffer, so a single call can reduce,
// clip or scale all of them (data-parallel training reduces this buffer across processes).
import SSFEngine

/// Gradients of `counts.count` parameters laid end to end: parameter i occupies
/// `offsets[i] ..< offsets[i] + counts[i]`. A parameter that received no gradient since the
/// last `reset` is absent (`present[i] == false`, its span zero); the optimiser leaves it alone.
public final class FlatGradients {
    public let shapes: [[Int]]
    public let offsets: [Int]
    public let counts: [Int]
    /// Whether parameter i has a gradient. A reduction across processes ORs these.
    public var present: [Bool]
    private let storage: TensorStorage

    public init(shapes: [[Int]]) {
        self.shapes = shapes
        counts = shapes.map { $0.reduce(1, *) }
        var running = 0
        offsets = counts.map { c in defer { running += c }; return running }
        storage = TensorStorage(count: max(running, 1), repeating: 0)
        present = Array(repeating: false, count: shapes.count)
        total = running
    }

    /// Elements in the buffer.
    public let total: Int

    /// The whole buffer, for one reduction call.
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: storage.pointer, count: total) }

    /// Whether any parameter has a gradient.
    public var isEmpty: Bool { !present.contains(true) }

    /// Adds `gradient` (parameter i's shape) into parameter i's span.
    public func add(_ gradient: Tensor, at i: Int) {
        precondition(gradient.shape == shapes[i], "FlatGradients: gradient \(gradient.shape) for a parameter of shape \(shapes[i])")
        let d = storage.pointer + offsets[i], s = gradient.pointer
        if present[i] {
            for j in 0..<counts[i] { d[j] += s[j] }
        } else {
            d.update(from: s, count: counts[i])
            present[i] = true
        }
    }

    /// Σ g² over the present gradients, in Float64.
    public var squaredNorm: Double {
        var sum = 0.0
        for i in counts.indices where present[i] {
            let p = storage.pointer + offsets[i]
            for j in 0..<counts[i] { sum += Double(p[j]) * Double(p[j]) }
        }
        return sum
    }

    /// Multiplies every element by `factor`.
    public func scale(by factor: Float) {
        let p = storage.pointer
        for j in 0..<total { p[j] *= factor }
    }

    /// Parameter i's gradient as a tensor (a copy), nil when absent.
    public func tensor(at i: Int) -> Tensor? {
        guard present[i] else { return nil }
        return Tensor(shape: shapes[i], storage: TensorStorage(copying: storage.pointer + offsets[i], count: counts[i]))
    }

    /// Every gradient, index-aligned with the parameters, as an optimiser takes them.
    public var tensors: [Tensor?] { counts.indices.map(tensor(at:)) }

    /// Zeroes the buffer and marks every gradient absent.
    public func reset() {
        storage.pointer.update(repeating: 0, count: total)
        present = Array(repeating: false, count: counts.count)
    }
}
