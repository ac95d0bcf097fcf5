// Seeded dropout and drop-path (stochastic depth) with their backward passes.

/// Multiplies `x` by a mask tensor that broadcasts over it; records `g ⊙ mask`.
private func applyMask(_ x: Tensor, _ mask: Tensor) -> Tensor {
    var out = broadcastBinary(x, mask, "dropout", VecMul())
    if let tape = Tape.active(for: x) {
        let shape = x.shape
        out = tape.record(out, inputs: [x]) { g, _ in [broadcastBinary(g, mask, "dropout", VecMul()).summed(toShape: shape)] }
    }
    return out
}

/// Zeroes each element with `probability` and scales the survivors by 1/(1 − probability).
/// The mask is drawn from `rng`, so a seed reproduces it exactly.
public func dropout(_ x: Tensor, probability: Float, using rng: inout RandomGenerator) -> Tensor {
    OpProfile.run("dropout") {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        if probability == 0 { return x }
        let keep = 1 - probability
        var mask = Tensor(uninitializedShape: x.shape)
        let m = mask.mutablePointer()
        for i in 0..<mask.count { m[i] = rng.nextUniform() < keep ? 1 / keep : 0 }
        return applyMask(x, mask)
    }
}

/// Drops whole samples (dimension 0) with `probability`, scaling kept samples by
/// 1/(1 − probability), as timm's `drop_path`.
public func dropPath(_ x: Tensor, probability: Float, using rng: inout RandomGenerator) -> Tensor {
    OpProfile.run("dropout") {
        precondition(probability >= 0 && probability < 1, "drop-path probability must be in [0, 1)")
        if probability == 0 || x.rank == 0 { return x }
        let keep = 1 - probability
        var maskShape = [Int](repeating: 1, count: x.rank)
        maskShape[0] = x.shape[0]
        var mask = Tensor(uninitializedShape: maskShape)
        let m = mask.mutablePointer()
        for i in 0..<mask.count { m[i] = rng.nextUniform() < keep ? 1 / keep : 0 }
        return applyMask(x, mask)
    }
}
