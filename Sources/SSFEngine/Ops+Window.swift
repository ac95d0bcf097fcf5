// Swin's layout operations: cyclic roll and window partition / reverse.

/// Cyclically shifts `x` by `shifts[i]` along `axes[i]` (torch.roll).
public func roll(_ x: Tensor, shifts: [Int], axes: [Int]) -> Tensor {
    OpProfile.run("window") {
        precondition(shifts.count == axes.count, "roll: \(shifts.count) shifts for \(axes.count) axes")
        var out = x.untracked
        for (shift, axis) in zip(shifts, axes) {
            let ax = x.normalizedAxis(axis)
            let n = x.shape[ax]
            guard n > 0 else { continue }
            let s = ((shift % n) + n) % n
            if s == 0 { continue }
            let outer = x.shape[..<ax].reduce(1, *), inner = x.shape[(ax + 1)...].reduce(1, *)
            var next = Tensor(uninitializedShape: x.shape)
            let d = next.mutablePointer(), src = out.pointer
            Threading.parallelFor(outer, minimumPerThread: max(1, 16384 / max(n * inner, 1))) { range in
                for o in range {
                    let base = o * n * inner
                    (d + base + s * inner).update(from: src + base, count: (n - s) * inner)
                    (d + base).update(from: src + base + (n - s) * inner, count: s * inner)
                }
            }
            out = next
        }
        if let tape = Tape.active(for: x) {
            let back = shifts.map { -$0 }
            out = tape.record(out, inputs: [x]) { g, _ in [roll(g, shifts: back, axes: axes)] }
        }
        return out
    }
}

/// Splits `[B, H, W, C]` into non-overlapping `windowSize × windowSize` windows:
/// `[B · (H/ws) · (W/ws), ws, ws, C]`, windows in row-major order per image (as timm).
public func windowPartition(_ x: Tensor, windowSize ws: Int) -> Tensor {
    OpProfile.run("window") {
        precondition(x.rank == 4, "windowPartition expects [B, H, W, C], got \(x.shape)")
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(h % ws == 0 && w % ws == 0, "windowPartition: \(h)×\(w) is not divisible by window \(ws)")
        return x.reshaped([b, h / ws, ws, w / ws, ws, c]).permuted([0, 1, 3, 2, 4, 5]).reshaped([-1, ws, ws, c])
    }
}

/// Inverse of `windowPartition`: windows `[B · nW, ws, ws, C]` back to `[B, H, W, C]`.
public func windowReverse(_ windows: Tensor, windowSize ws: Int, height h: Int, width w: Int) -> Tensor {
    OpProfile.run("window") {
        precondition(windows.rank == 4 && windows.shape[1] == ws && windows.shape[2] == ws, "windowReverse expects [B·nW, \(ws), \(ws), C], got \(windows.shape)")
        let c = windows.shape[3]
        let b = windows.shape[0] / ((h / ws) * (w / ws))
        return windows.reshaped([b, h / ws, w / ws, ws, ws, c]).permuted([0, 1, 3, 2, 4, 5]).reshaped([b, h, w, c])
    }
}

/// A reordering of the tokens of each image: output token `i` reads input token `order[i]`.
/// Swin's shifted-window partition (a cyclic roll, then windows in row-major order) is one such
/// reordering and its reverse is the inverse, so either takes one gather instead of a copy per
/// rolled axis plus one for the partition.
public struct TokenPermutation: Sendable, Equatable {
    public let order: [Int32]
    /// The inverse's order, built once with this one (the backward of every gather uses it).
    private let inverseOrder: [Int32]
    /// Whether `order[i] == i` everywhere (applying it is a no-op).
    public let isIdentity: Bool

    /// `order` must hold every index in `0..<order.count` exactly once.
    public init(order: [Int]) {
        var back = [Int32](repeating: -1, count: order.count)
        for (i, source) in order.enumerated() {
            precondition(source >= 0 && source < order.count && back[source] < 0,
                         "TokenPermutation: \(source) is out of range or repeated in \(order.count) tokens")
            back[source] = Int32(i)
        }
        self.init(order: order.map { Int32($0) }, inverseOrder: back,
                  isIdentity: order.enumerated().allSatisfy { $0.offset == $0.element })
    }

    private init(order: [Int32], inverseOrder: [Int32], isIdentity: Bool) {
        self.order = order
        self.inverseOrder = inverseOrder
        self.isIdentity = isIdentity
    }

    /// The reordering that undoes this one (no copy: both orders are shared).
    public var inverse: TokenPermutation { TokenPermutation(order: inverseOrder, inverseOrder: order, isIdentity: isIdentity) }

    /// `roll(x, shifts: [−shift, −shift], axes: [1, 2])` followed by `windowPartition` for an
    /// `height × width` map (both multiples of `windowSize`), as token indices into the map.
    public static func shiftedWindows(height: Int, width: Int, windowSize ws: Int, shift: Int) -> TokenPermutation {
        precondition(height % ws == 0 && width % ws == 0, "shiftedWindows: \(height)×\(width) is not divisible by window \(ws)")
        var order: [Int] = []
        order.reserveCapacity(height * width)
        for wy in 0..<(height / ws) {
            for wx in 0..<(width / ws) {
                for iy in 0..<ws {
                    for ix in 0..<ws {
                        let y = (wy * ws + iy + shift) % height, x = (wx * ws + ix + shift) % width
                        order.append(y * width + x)
                    }
                }
            }
        }
        return TokenPermutation(order: order)
    }
}

/// `x` (`[B, …, C]` with `permutation.order.count` tokens of `channels` values per image)
/// with each image's tokens reordered: `out[b, i] = x[b, order[i]]`, shaped `shape` (same count).
/// Differentiable: the gradient is gathered back through the inverse.
public func permuteTokens(_ x: Tensor, _ permutation: TokenPermutation, channels c: Int, shape: [Int]) -> Tensor {
    OpProfile.run("window") {
        let tokens = permutation.order.count
        precondition(Tensor.elementCount(shape) == x.count && c > 0 && tokens > 0 && x.count % (tokens * c) == 0,
                     "permuteTokens: \(x.shape) is not whole images of \(tokens) tokens × \(c) channels, or \(shape) holds another count")
        let images = x.count / (tokens * c)
        var out = Tensor(uninitializedShape: shape)
        let d = out.mutablePointer(), s = x.pointer
        permutation.order.withUnsafeBufferPointer { order in
            let rows = images * tokens
            Threading.parallelFor(rows, minimumPerThread: max(1, 16384 / c)) { range in
                for r in range {
                    let b = r / tokens, i = r - b * tokens
                    (d + r * c).update(from: s + (b * tokens + Int(order[i])) * c, count: c)
                }
            }
        }
        if let tape = Tape.active(for: x) {
            let back = permutation.inverse, inShape = x.shape
            out = tape.record(out, inputs: [x]) { g, _ in [permuteTokens(g, back, channels: c, shape: inShape)] }
        }
        return out
    }
}
