// Cross-entropy losses: hard labels with label smoothing, and soft targets (mixup / cutmix).

/// Mean cross-entropy of `logits [N, C]` against class `labels`, with the target
/// distribution `(1 − ε)·onehot + ε/C` (PyTorch's `label_smoothing`, timm's smoothing loss).
public func crossEntropy(_ logits: Tensor, labels: [Int], labelSmoothing: Float = 0) -> Tensor {
    OpProfile.run("loss") {
        precondition(logits.rank == 2 && labels.count == logits.shape[0], "crossEntropy: logits \(logits.shape) and \(labels.count) labels")
        let classes = logits.shape[1]
        precondition(labels.allSatisfy { $0 >= 0 && $0 < classes }, "crossEntropy: label out of range 0..<\(classes)")
        var targets = Tensor.full(logits.shape, labelSmoothing / Float(classes))
        let tp = targets.mutablePointer()
        for (i, y) in labels.enumerated() { tp[i * classes + y] += 1 - labelSmoothing }
        return crossEntropy(logits, softTargets: targets)
    }
}

/// Mean over rows of `−Σ_c t[c] · log_softmax(logits)[c]` for soft targets `t [N, C]`.
public func crossEntropy(_ logits: Tensor, softTargets: Tensor) -> Tensor {
    OpProfile.run("loss") {
        precondition(logits.rank == 2 && softTargets.shape == logits.shape, "crossEntropy: logits \(logits.shape) and targets \(softTargets.shape)")
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        let logProbs = logSoftmax(logits.untracked)
        var total: Double = 0
        let lp = logProbs.pointer, tp = softTargets.pointer
        for r in 0..<rows { total -= Double(dotVec(lp + r * classes, tp + r * classes, classes)) }
        var out = Tensor(scalar: Float(total / Double(max(rows, 1))))
        if let tape = Tape.active(for: logits, softTargets) {
            let targets = softTargets.untracked
            out = tape.record(out, inputs: [logits, softTargets]) { g, needs in
                let scale = g.item / Float(max(rows, 1))
                var gl: Tensor?
                if needs[0] {
                    // d/dx = (softmax(x) · Σt − t) / N
                    var d = Tensor(uninitializedShape: [rows, classes])
                    let dp = d.mutablePointer()
                    let vs = Vec(repeating: scale)
                    for r in 0..<rows {
                        let mass = Vec(repeating: sumVec(tp + r * classes, classes))
                        zipVec(lp + r * classes, targets.pointer + r * classes, dp + r * classes, classes) { (l, t) in
                            (vexp(l) * mass - t) * vs
                        }
                    }
                    gl = d
                }
                return [gl, needs[1] ? logProbs * (-scale) : nil]
            }
        }
        return out
    }
}
