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
