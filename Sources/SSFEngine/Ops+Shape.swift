// Differentiable layout operations: permute, transpose, slice, concat, stack, index-select, gather.
import CBLAS

/// Row-major strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for i in (0..<shape.count).reversed() { strides[i] = step; step *= shape[i] }
    return strides
}

/// Copies `x` into a new layout whose dimension `i` is `x`'s dimension `perm[i]`. Not recorded.
func permuteRaw(_ x: Tensor, _ perm: [Int]) -> Tensor {
    if let swap = GroupSwap(perm, shape: x.shape) { return swap.apply(x, shape: perm.map { x.shape[$0] }) }
    return permuteStrided(x, perm)
}

/// A permutation that swaps two adjacent groups of trailing axes, `[0..<i] + [j..<n] + [i..<j]`
/// (NCHW → NHWC is `[0, 2, 3, 1]`, the way back `[0, 3, 1, 2]`): the tensor is `P` matrices of
/// `R×Q`, each transposed to `Q×R`, in 8×8 tiles.
struct GroupSwap {
    let p: Int, r: Int, q: Int

    init?(_ perm: [Int], shape: [Int]) {
        let n = perm.count
        guard n >= 2, let i = perm.indices.first(where: { perm[$0] != $0 }) else { return nil }
        let j = perm[i]
        guard j > i, perm == Array(0..<i) + Array(j..<n) + Array(i..<j) else { return nil }
        p = shape[..<i].reduce(1, *); r = shape[i..<j].reduce(1, *); q = shape[j...].reduce(1, *)
        guard r >= 8 && q >= 8 else { return nil }
    }

    func apply(_ x: Tensor, shape: [Int]) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        let d = out.mutablePointer(), s = x.pointer
        // Work items: one matrix, or one band of 64 source rows of it when the matrices are few.
        let (r, q) = (r, q)
        let bandRows = p >= 2 * Threading.threads ? r : 64, bands = (r + bandRows - 1) / bandRows
        Threading.parallelFor(p * bands, minimumPerThread: max(1, 16384 / max(bandRows * q, 1))) { range in
            for item in range {
                let m = item / bands, lo = item % bands * bandRows, hi = min(r, lo + bandRows)
                ssf_transpose(s + m * r * q + lo * q, hi - lo, q, q, d + m * r * q + lo, r)
            }
        }
        return out
    }
}

/// The general permutation: rows of the output's last axis gathered with an odometer over the others.
func permuteStrided(_ x: Tensor, _ perm: [Int]) -> Tensor {
    let inStrides = contiguousStrides(x.shape)
    let outShape = perm.map { x.shape[$0] }
    let srcStrides = perm.map { inStrides[$0] }
    var out = Tensor(uninitializedShape: outShape)
    let d = out.mutablePointer(), s = x.pointer
    let inner = outShape.last ?? 1, innerStride = srcStrides.last ?? 1
    let outerShape = Array(outShape.dropLast()), outerStrides = Array(srcStrides.dropLast())
    let rows = outerShape.reduce(1, *)
    Threading.parallelFor(rows, minimumPerThread: max(1, 16384 / max(inner, 1))) { range in
        // Decompose the first row index, then walk with an odometer.
        var index = [Int](repeating: 0, count: outerShape.count)
        var rem = range.lowerBound, off = 0
        for k in (0..<outerShape.count).reversed() {
            index[k] = rem % outerShape[k]; rem /= outerShape[k]
            off += index[k] * outerStrides[k]
        }
        for row in range {
            let dst = d + row * inner
            if innerStride == 1 {
                dst.update(from: s + off, count: inner)
            } else {
                for j in 0..<inner { dst[j] = s[off + j * innerStride] }
            }
            var k = outerShape.count - 1
            while k >= 0 {
                index[k] += 1; off += outerStrides[k]
                if index[k] < outerShape[k] { break }
                off -= outerStrides[k] * outerShape[k]; index[k] = 0
                k -= 1
            }
        }
    }
    return out
}

extension Tensor {
    /// A copy with dimensions reordered: dimension `i` of the result is dimension `perm[i]` here.
    public func permuted(_ perm: [Int]) -> Tensor {
        OpProfile.run("shape") {
            precondition(perm.sorted() == Array(0..<rank), "permuted: \(perm) is not a permutation of \(rank) axes")
            if perm == Array(0..<rank) { return self }
            var out = permuteRaw(self, perm)
            if let tape = Tape.active(for: self) {
                var inverse = [Int](repeating: 0, count: perm.count)
                for (i, p) in perm.enumerated() { inverse[p] = i }
                out = tape.record(out, inputs: [self]) { g, _ in [permuteRaw(g, inverse)] }
            }
            return out
        }
    }

    /// A copy with two dimensions swapped.
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        OpProfile.run("shape") {
            var perm = Array(0..<rank)
            perm.swapAt(normalizedAxis(a), normalizedAxis(b))
            return permuted(perm)
        }
    }

    /// The elements whose index along `axis` lies in `range` (a copy).
    public func slice(axis: Int, range: Range<Int>) -> Tensor {
        OpProfile.run("shape") {
            let ax = normalizedAxis(axis)
            precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax], "slice \(range) out of bounds for axis \(ax) of \(shape)")
            let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
            var outShape = shape
            outShape[ax] = range.count
            var out = Tensor(uninitializedShape: outShape)
            let d = out.mutablePointer(), s = pointer
            let n = shape[ax], chunk = range.count * inner
            for o in 0..<outer { (d + o * chunk).update(from: s + (o * n + range.lowerBound) * inner, count: chunk) }
            if let tape = Tape.active(for: self) {
                let inShape = shape
                out = tape.record(out, inputs: [self]) { g, _ in
                    var gx = Tensor.zeros(inShape)
                    let gp = gx.mutablePointer()
                    for o in 0..<outer { (gp + (o * n + range.lowerBound) * inner).update(from: g.pointer + o * chunk, count: chunk) }
                    return [gx]
                }
            }
            return out
        }
    }

    /// The slices at `indices` along `axis`, in that order (indices may repeat).
    public func indexSelect(axis: Int, indices: [Int]) -> Tensor {
        OpProfile.run("shape") {
            let ax = normalizedAxis(axis)
            let n = shape[ax]
            precondition(indices.allSatisfy { $0 >= 0 && $0 < n }, "indexSelect: index out of range 0..<\(n)")
            let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
            var outShape = shape
            outShape[ax] = indices.count
            var out = Tensor(uninitializedShape: outShape)
            let d = out.mutablePointer(), s = pointer
            for o in 0..<outer {
                for (k, i) in indices.enumerated() {
                    (d + (o * indices.count + k) * inner).update(from: s + (o * n + i) * inner, count: inner)
                }
            }
            if let tape = Tape.active(for: self) {
                let inShape = shape
                out = tape.record(out, inputs: [self]) { g, _ in
                    var gx = Tensor.zeros(inShape)
                    let gp = gx.mutablePointer()
                    for o in 0..<outer {
                        for (k, i) in indices.enumerated() {
                            let dst = gp + (o * n + i) * inner
                            zipVec(UnsafePointer(dst), g.pointer + (o * indices.count + k) * inner, dst, inner) { $0 + $1 }
                        }
                    }
                    return [gx]
                }
            }
            return out
        }
    }

    /// torch.gather: `out[…, j, …] = self[…, indices[…, j, …], …]` along `axis`, where
    /// `indices` is a row-major index tensor of shape `indexShape` (equal to this shape except along `axis`).
    public func gather(axis: Int, indices: [Int], indexShape: [Int]) -> Tensor {
        OpProfile.run("shape") {
            let ax = normalizedAxis(axis)
            precondition(indexShape.count == rank && indices.count == Tensor.elementCount(indexShape),
                         "gather: index shape \(indexShape) does not fit \(indices.count) indices for rank \(rank)")
            for (i, e) in indexShape.enumerated() where i != ax {
                precondition(e == shape[i], "gather: index shape \(indexShape) differs from \(shape) outside axis \(ax)")
            }
            let n = shape[ax], m = indexShape[ax]
            precondition(indices.allSatisfy { $0 >= 0 && $0 < n }, "gather: index out of range 0..<\(n)")
            let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
            var out = Tensor(uninitializedShape: indexShape)
            let d = out.mutablePointer(), s = pointer
            for o in 0..<outer { for k in 0..<m { for i in 0..<inner {
                let at = (o * m + k) * inner + i
                d[at] = s[(o * n + indices[at]) * inner + i]
            } } }
            if let tape = Tape.active(for: self) {
                let inShape = shape
                out = tape.record(out, inputs: [self]) { g, _ in
                    var gx = Tensor.zeros(inShape)
                    let gp = gx.mutablePointer()
                    for o in 0..<outer { for k in 0..<m { for i in 0..<inner {
                        let at = (o * m + k) * inner + i
                        gp[(o * n + indices[at]) * inner + i] += g.pointer[at]
                    } } }
                    return [gx]
                }
            }
            return out
        }
    }
}

/// Joins tensors along `axis`; all other extents must agree.
public func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
    OpProfile.run("shape") {
        precondition(!tensors.isEmpty, "concat needs at least one tensor")
        let first = tensors[0]
        let ax = first.normalizedAxis(axis)
        for t in tensors {
            precondition(t.rank == first.rank && t.shape.enumerated().allSatisfy { $0.offset == ax || $0.element == first.shape[$0.offset] },
                         "concat: shape \(t.shape) does not match \(first.shape) outside axis \(ax)")
        }
        let outer = first.shape[..<ax].reduce(1, *), inner = first.shape[(ax + 1)...].reduce(1, *)
        let sizes = tensors.map { $0.shape[ax] }
        let total = sizes.reduce(0, +)
        var outShape = first.shape
        outShape[ax] = total
        var out = Tensor(uninitializedShape: outShape)
        let d = out.mutablePointer()
        var offset = 0
        for (t, n) in zip(tensors, sizes) {
            for o in 0..<outer { (d + (o * total + offset) * inner).update(from: t.pointer + o * n * inner, count: n * inner) }
            offset += n
        }
        if let tape = Tape.current, tensors.contains(where: tape.tracks) {
            out = tape.record(out, inputs: tensors) { g, needs in
                var start = 0
                return zip(sizes, needs).map { n, need in
                    defer { start += n }
                    return need ? g.slice(axis: ax, range: start..<(start + n)) : nil
                }
            }
        }
        return out
    }
}

/// Stacks equally shaped tensors along a new dimension `axis`.
public func stack(_ tensors: [Tensor], axis: Int) -> Tensor {
    OpProfile.run("shape") {
        precondition(!tensors.isEmpty, "stack needs at least one tensor")
        let shape = tensors[0].shape
        let ax = axis < 0 ? axis + shape.count + 1 : axis
        precondition(ax >= 0 && ax <= shape.count, "stack: axis \(axis) out of range")
        var expanded = shape
        expanded.insert(1, at: ax)
        return concat(tensors.map { t in
            precondition(t.shape == shape, "stack: shape \(t.shape) differs from \(shape)")
            return t.reshaped(expanded)
        }, axis: ax)
    }
}
