// Differentiable sums and means over axes, and broadcasting copies (expand).

/// Sums an `[outer, n, inner]` view over its middle dimension. Not recorded.
func sumMiddle(_ x: Tensor, outer: Int, n: Int, inner: Int) -> Tensor {
    var out = Tensor(uninitializedShape: [outer * inner])
    let d = out.mutablePointer(), s = x.pointer
    Threading.parallelFor(outer, minimumPerThread: max(1, 16384 / max(n * inner, 1))) { range in
        for o in range {
            let dst = d + o * inner
            if inner == 1 {
                dst[0] = sumVec(s + o * n, n)
                continue
            }
            dst.update(from: s + o * n * inner, count: inner)
            for k in 1..<max(n, 1) {
                zipVec(UnsafePointer(dst), s + (o * n + k) * inner, dst, inner) { $0 + $1 }
            }
            if n == 0 { dst.update(repeating: 0, count: inner) }
        }
    }
    return out
}

extension Tensor {
    /// Sum over `axes` (negative axes count from the end); `keepDims` keeps them with extent 1.
    public func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        OpProfile.run("reduce") {
            let axesSet = Set(axes.map { normalizedAxis($0) })
            var result = self.untracked
            var currentShape = shape
            for axis in axesSet.sorted(by: >) {
                let outer = currentShape[..<axis].reduce(1, *)
                let inner = currentShape[(axis + 1)...].reduce(1, *)
                result = sumMiddle(result, outer: outer, n: currentShape[axis], inner: inner)
                currentShape[axis] = 1
            }
            let keptShape = currentShape
            let finalShape = keepDims ? keptShape : shape.enumerated().filter { !axesSet.contains($0.offset) }.map(\.element)
            var out = Tensor(shape: finalShape, storage: result.storage)
            if let tape = Tape.active(for: self) {
                let inShape = shape
                out = tape.record(out, inputs: [self]) { g, _ in
                    [Tensor(shape: keptShape, storage: g.storage).expanded(to: inShape)]
                }
            }
            return out
        }
    }

    /// Mean over `axes`.
    public func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        OpProfile.run("reduce") {
            let n = Set(axes.map { normalizedAxis($0) }).reduce(1) { $0 * shape[$1] }
            return sum(axes: axes, keepDims: keepDims) * (1 / Float(max(n, 1)))
        }
    }

    /// Sum of all elements (a scalar tensor).
    public func sum() -> Tensor { reshaped([count]).sum(axes: [0]) }

    /// Mean of all elements (a scalar tensor).
    public func mean() -> Tensor { sum() * (1 / Float(max(count, 1))) }

    /// A copy broadcast to `target` (NumPy rules); the backward sums over the broadcast axes.
    public func expanded(to target: [Int]) -> Tensor {
        OpProfile.run("broadcast") {
            precondition(broadcastShape(shape, target) == target, "cannot expand \(shape) to \(target)")
            var out: Tensor
            if shape == target {
                out = untracked
            } else {
                out = Tensor(uninitializedShape: target)
                let dst = out.mutablePointer(), src = pointer
                let st = broadcastStrides(shape, to: target)
                let inner = target.last ?? 1, innerStride = st.last ?? 0
                forEachRow(target, st, st) { row, off, _ in
                    let d = dst + row * inner
                    if innerStride == 0 { d.update(repeating: src[off], count: inner) } else { d.update(from: src + off, count: inner) }
                }
            }
            if let tape = Tape.active(for: self) {
                let inShape = shape
                out = tape.record(out, inputs: [self]) { g, _ in [g.summed(toShape: inShape)] }
            }
            return out
        }
    }
}
