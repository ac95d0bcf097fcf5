// NumPy-style broadcasting: shape rules, row iteration over broadcast operands, and reduction back to a shape.

/// The broadcast result of two shapes, or nil when they are incompatible.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
    }
    return out
}

/// Element strides of `shape` viewed in the broadcast `outShape` (0 along broadcast dimensions).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let rank = outShape.count
    var strides = [Int](repeating: 0, count: rank)
    var step = 1
    for i in (0..<shape.count).reversed() {
        let o = i + rank - shape.count
        strides[o] = shape[i] == 1 && outShape[o] != 1 ? 0 : step
        step *= shape[i]
    }
    return strides
}

/// Calls `body(row, offsetA, offsetB)` for every row (all but the last dimension) of `outShape`,
/// with the starting element offsets of two operands that have the given strides.
@inline(__always)
func forEachRow(_ outShape: [Int], _ sa: [Int], _ sb: [Int], _ body: (Int, Int, Int) -> Void) {
    let rank = outShape.count
    if rank <= 1 { body(0, 0, 0); return }
    let rows = outShape[0..<(rank - 1)].reduce(1, *)
    var index = [Int](repeating: 0, count: rank - 1)
    var oa = 0, ob = 0
    for row in 0..<rows {
        body(row, oa, ob)
        var d = rank - 2
        while d >= 0 {
            index[d] += 1
            oa += sa[d]; ob += sb[d]
            if index[d] < outShape[d] { break }
            oa -= sa[d] * outShape[d]; ob -= sb[d] * outShape[d]
            index[d] = 0
            d -= 1
        }
    }
}

extension Tensor {
    /// Sum of this tensor over the dimensions that broadcasting expanded from `target`
    /// (the gradient of a broadcast operand). Not recorded.
    public func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return untracked }
        precondition(broadcastShape(target, shape) == shape, "cannot reduce \(shape) to \(target)")
        var out = Tensor.zeros(target)
        let dst = out.mutablePointer()
        let src = pointer
        let st = broadcastStrides(target, to: shape)
        let inner = shape.last ?? 1
        let innerStride = st.last ?? 0
        forEachRow(shape, st, st) { row, off, _ in
            let s = src + row * inner
            if innerStride == 0 {
                dst[off] += sumVec(s, inner)
            } else {
                zipVec(UnsafePointer(dst + off), s, dst + off, inner, VecAdd())
            }
        }
        return out
    }

    /// Adds `other` (same shape) into this tensor in place. Not recorded.
    public mutating func addInPlace(_ other: Tensor) {
        precondition(shape == other.shape, "addInPlace: shape \(other.shape) does not match \(shape)")
        let d = mutablePointer()
        zipVec(UnsafePointer(d), other.pointer, d, count, VecAdd())
    }

    /// Multiplies every element by `factor` in place. Not recorded.
    public mutating func scaleInPlace(_ factor: Float) {
        let d = mutablePointer()
        mapVec(UnsafePointer(d), d, count, VecAffine(a: Vec(repeating: factor), b: Vec()))
    }
}

/// `f(a, x)` with the left operand fixed.
struct BindLeft<F: VecBinary>: VecUnary {
    let f: F, a: Vec
    @inline(__always) func callAsFunction(_ v: Vec) -> Vec { f(a, v) }
}

/// `f(x, b)` with the right operand fixed.
struct BindRight<F: VecBinary>: VecUnary {
    let f: F, b: Vec
    @inline(__always) func callAsFunction(_ v: Vec) -> Vec { f(v, b) }
}

/// Elementwise `f(a, b)` with broadcasting; `f` sees eight lanes at a time.
@inline(__always)
func broadcastBinary<F: VecBinary>(_ a: Tensor, _ b: Tensor, _ name: String, _ f: F) -> Tensor {
    guard let outShape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape) else {
        preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    var out = Tensor(uninitializedShape: outShape)
    broadcastBinary(a, b, f, shape: outShape, into: out.mutablePointer())
    return out
}

/// `f(a, b)` with broadcasting into `dst` (`shape` elements, the broadcast shape). `dst` may be the
/// buffer of `a` or `b` when that operand has the result's shape: each element is read before it is
/// overwritten.
func broadcastBinary<F: VecBinary>(_ a: Tensor, _ b: Tensor, _ f: F, shape outShape: [Int], into dst: UnsafeMutablePointer<Float>) {
    if a.shape == b.shape {
        zipVec(a.pointer, b.pointer, dst, a.count, f)
        return
    }
    let pa = a.pointer, pb = b.pointer
    let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
    let inner = outShape.last ?? 1
    let ia = sa.last ?? 0, ib = sb.last ?? 0
    forEachRow(outShape, sa, sb) { row, oa, ob in
        let d = dst + row * inner
        switch (ia, ib) {
        case (0, 0):
            let v = f(Vec(repeating: pa[oa]), Vec(repeating: pb[ob]))[0]
            for j in 0..<inner { d[j] = v }
        case (0, _):
            mapVec(pb + ob, d, inner, BindLeft(f: f, a: Vec(repeating: pa[oa])))
        case (_, 0):
            mapVec(pa + oa, d, inner, BindRight(f: f, b: Vec(repeating: pb[ob])))
        default:
            zipVec(pa + oa, pb + ob, d, inner, f)
        }
    }
}
