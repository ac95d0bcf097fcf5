// AS-MLP's axial shift: channel groups moved along one spatial axis, with zeros filling in.
import SSFEngine

/// Shifts NCHW `x` along `axis` (2: height, 3: width) one channel group at a time, as the
/// AS-MLP reference does (zero padding, `torch.chunk` over channels, `torch.roll`, crop).
///
/// Channels are grouped like `torch.chunk(x, shiftSize, 1)`: groups of ⌈C / shiftSize⌉
/// channels, the last one possibly smaller, so there can be fewer than `shiftSize` groups.
/// Group g moves by s = g − ⌊shiftSize / 2⌋ positions: `out[…, i, …] = x[…, i − s, …]`, and
/// zero where `i − s` falls outside the image. Differentiable in `x`: the gradient is the
/// output gradient shifted back.
func axialShifted(_ x: Tensor, axis: Int, shiftSize: Int) -> Tensor {
    precondition(x.rank == 4 && (axis == 2 || axis == 3), "axialShifted: needs NCHW input and axis 2 or 3, got \(x.shape), axis \(axis)")
    precondition(shiftSize >= 1, "axialShifted: shift size must be positive, got \(shiftSize)")
    let groupSize = (x.shape[1] + shiftSize - 1) / shiftSize
    let pad = shiftSize / 2
    var out = shiftedChannelGroups(x, axis: axis, groupSize: groupSize, pad: pad, direction: 1)
    if let tape = Tape.active(for: x) {
        out = tape.record(out, inputs: [x]) { g, _ in
            [shiftedChannelGroups(g, axis: axis, groupSize: groupSize, pad: pad, direction: -1)]
        }
    }
    return out
}

/// Moves channel c of every image by `direction · (c / groupSize − pad)` along `axis`, zero-filled.
/// Not recorded.
private func shiftedChannelGroups(_ x: Tensor, axis: Int, groupSize: Int, pad: Int, direction: Int) -> Tensor {
    let (channels, height, width) = (x.shape[1], x.shape[2], x.shape[3])
    // Each channel plane is `rows` lines of `length` positions of `step` floats; the shift
    // moves whole positions within a line, so every line is one or two contiguous copies.
    let (rows, length, step) = axis == 3 ? (height, width, 1) : (1, height, width)
    let line = length * step
    var out = Tensor(uninitializedShape: x.shape)
    let dst = out.mutablePointer(), src = x.pointer
    Threading.parallelFor(x.shape[0] * channels, minimumPerThread: max(1, 16384 / max(height * width, 1))) { planes in
        for plane in planes {
            let shift = direction * ((plane % channels) / groupSize - pad)
            let vacated = min(abs(shift), length) * step
            for r in 0..<rows {
                let offset = (plane * rows + r) * line
                if shift >= 0 {
                    (dst + offset).update(repeating: 0, count: vacated)
                    (dst + offset + vacated).update(from: src + offset, count: line - vacated)
                } else {
                    (dst + offset).update(from: src + offset + vacated, count: line - vacated)
                    (dst + offset + line - vacated).update(repeating: 0, count: vacated)
                }
            }
        }
    }
    return out
}
