// The tensor comparison every test target uses: a scaled max-norm error that names the worst
// element with both values, and the tolerances the parity tests hold to.
import SSFEngine

/// How far `actual` is from `expected`: ‖actual − expected‖∞ / max(‖expected‖∞, floor).
///
/// With `floor` = 1 this is an absolute error for values up to 1 and a relative one above;
/// with a small floor it is relative to the largest expected magnitude.
public struct TensorDifference {
    /// The scaled error; infinite when shapes differ or `actual` holds NaN or infinity.
    public let error: Float
    /// Largest absolute difference and the flat index of the element where it occurs.
    public let maxAbsDiff: Float
    public let worstIndex: Int
    public let actualValue: Float
    public let expectedValue: Float
    public let shapeMismatch: String?

    public init(_ actual: Tensor, _ expected: Tensor, floor: Float) {
        guard actual.shape == expected.shape else {
            error = .infinity; maxAbsDiff = .infinity; worstIndex = 0; actualValue = .nan; expectedValue = .nan
            shapeMismatch = "shape \(actual.shape), expected \(expected.shape)"
            return
        }
        let a = actual.scalars, e = expected.scalars
        var worst = 0, diff: Float = 0, magnitude: Float = 0
        for i in a.indices {
            magnitude = max(magnitude, abs(e[i]))
            let d = abs(a[i] - e[i])
            if !(d <= diff) { // also catches NaN
                diff = d.isNaN ? .infinity : d
                worst = i
                if d.isNaN { break }
            }
        }
        maxAbsDiff = diff
        worstIndex = worst
        actualValue = a.isEmpty ? 0 : a[worst]
        expectedValue = e.isEmpty ? 0 : e[worst]
        error = diff / max(magnitude, floor)
        shapeMismatch = nil
    }

    /// The row-major multi-index of flat position `flat` in `shape`.
    public static func multiIndex(_ flat: Int, in shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for d in shape.indices.reversed() where shape[d] > 0 {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    /// A one-line account of the difference for `label` (a tensor of shape `shape`).
    public func describe(_ label: String, shape: [Int], tolerance: Float) -> String {
        if let shapeMismatch { return "\(label): \(shapeMismatch)" }
        let at = TensorDifference.multiIndex(worstIndex, in: shape)
        return "\(label): error \(error) (tolerance \(tolerance)), max |Δ| \(maxAbsDiff) at \(at): got \(actualValue), expected \(expectedValue)"
    }
}

/// ‖a − b‖∞ / max(‖b‖∞, floor); infinite when the shapes differ. With `floor` = 1 this is an
/// absolute error for values up to 1 and a relative one above.
public func relativeError(_ a: Tensor, _ b: Tensor, floor: Float) -> Float {
    TensorDifference(a, b, floor: floor).error
}

/// max over the elements of |a − b| / max(|b|, floor): each element relative to itself (for
/// tensors whose entries differ in scale by orders of magnitude, like running variances).
public func elementwiseRelativeError(_ a: Tensor, _ b: Tensor, floor: Float) -> Float {
    guard a.count == b.count, a.shape.filter({ $0 != 1 }) == b.shape.filter({ $0 != 1 }) else { return .infinity }
    return zip(a.scalars, b.scalars).map { abs($0 - $1) / max(abs($1), floor) }.max() ?? 0
}

/// ‖a − b‖∞ (infinite when the shapes differ).
public func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    TensorDifference(a, b, floor: 1).maxAbsDiff
}

/// The tolerances the parity tests hold to.
public enum Tolerance {
    /// Logits and outputs against PyTorch/timm fixtures (relative to the largest value, floor 1).
    public static let parity: Float = 1e-4
    /// Gradients against PyTorch fixtures.
    public static let gradient: Float = 1e-4
}
