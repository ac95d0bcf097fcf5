// Differentiable pointwise activations: GELU (exact erf), ReLU, ReLU6, SiLU, hard-swish, sigmoid.

/// Applies `forward` elementwise and records `g · derivative(x)` as the backward.
@inline(__always)
private func pointwise(_ x: Tensor, _ forward: (Vec) -> Vec, _ derivative: @escaping (Vec) -> Vec) -> Tensor {
    var out = Tensor(uninitializedShape: x.shape)
    mapVec(x.pointer, out.mutablePointer(), x.count, forward)
    if let tape = Tape.active(for: x) {
        let ux = x.untracked
        out = tape.record(out, inputs: [x]) { g, _ in
            var dx = Tensor(uninitializedShape: g.shape)
            zipVec(g.pointer, ux.pointer, dx.mutablePointer(), g.count) { $0 * derivative($1) }
            return [dx]
        }
    }
    return out
}

private let half = Vec(repeating: 0.5), one = Vec(repeating: 1), zero = Vec()
private let invSqrt2 = Vec(repeating: 0.707_106_781_186_547_5)
private let invSqrt2Pi = Vec(repeating: 0.398_942_280_401_432_7)

@inline(__always) private func sigmoidVec(_ x: Vec) -> Vec { one / (one + vexp(zero - x)) }

/// GELU with the exact error function: `x · Φ(x)`.
public func gelu(_ x: Tensor) -> Tensor {
    pointwise(x, { v in half * v * (one + verf(v * invSqrt2)) },
              { v in half * (one + verf(v * invSqrt2)) + v * invSqrt2Pi * vexp(zero - half * v * v) })
}

/// max(x, 0).
public func relu(_ x: Tensor) -> Tensor {
    pointwise(x, { pointwiseMax($0, zero) }, { v in one.replacing(with: 0, where: v .<= 0) })
}

/// min(max(x, 0), 6).
public func relu6(_ x: Tensor) -> Tensor {
    let six = Vec(repeating: 6)
    return pointwise(x, { pointwiseMin(pointwiseMax($0, zero), six) },
                     { v in one.replacing(with: 0, where: (v .<= 0) .| (v .>= six)) })
}

/// Logistic sigmoid 1 / (1 + e^(−x)).
public func sigmoid(_ x: Tensor) -> Tensor {
    pointwise(x, sigmoidVec, { v in let s = sigmoidVec(v); return s * (one - s) })
}

/// SiLU (swish): x · sigmoid(x).
public func silu(_ x: Tensor) -> Tensor {
    pointwise(x, { $0 * sigmoidVec($0) }, { v in let s = sigmoidVec(v); return s * (one + v * (one - s)) })
}

/// Hard-swish: x · relu6(x + 3) / 6 (PyTorch's definition and gradient).
public func hardSwish(_ x: Tensor) -> Tensor {
    let three = Vec(repeating: 3), six = Vec(repeating: 6), sixth = Vec(repeating: 1.0 / 6.0)
    return pointwise(x, { v in v * pointwiseMin(pointwiseMax(v + three, zero), six) * sixth },
                     { v in
                         let mid = (v + v) * sixth + half
                         return mid.replacing(with: 0, where: v .< -three).replacing(with: 1, where: v .> three)
                     })
}
