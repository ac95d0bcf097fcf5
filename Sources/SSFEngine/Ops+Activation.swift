// Differentiable pointwise activations: GELU (exact erf), ReLU, ReLU6, SiLU, hard-swish, sigmoid.

/// An activation as a pair of vector functions: the value and the derivative at x.
protocol Activation {
    associatedtype Forward: VecUnary
    associatedtype Derivative: VecUnary
    static var forward: Forward { get }
    static var derivative: Derivative { get }
}

/// g ⊙ f′(x), with the derivative inlined into the vector loop.
struct ChainRule<D: VecUnary>: VecBinary {
    let derivative: D
    @inline(__always) func callAsFunction(_ g: Vec, _ x: Vec) -> Vec { g * derivative(x) }
}

/// Applies activation `A` elementwise and records `g ⊙ A′(x)` as the backward. Untracked input that
/// nothing else holds (an inference pass's intermediate) is overwritten in place: no second buffer.
@inline(__always)
private func pointwise<A: Activation>(_ input: consuming Tensor, _: A.Type) -> Tensor {
    var x = consume input
    return OpProfile.run("activation") {
        if Tape.active(for: x) == nil && x.isUniquelyOwned() {
            let p = x.mutablePointer()
            mapVec(UnsafePointer(p), p, x.count, A.forward)
            return x
        }
        var out = Tensor(uninitializedShape: x.shape)
        mapVec(x.pointer, out.mutablePointer(), x.count, A.forward)
        if let tape = Tape.active(for: x) {
            let ux = x.untracked
            out = tape.record(out, inputs: [x]) { g, _ in
                var dx = Tensor(uninitializedShape: g.shape)
                zipVec(g.pointer, ux.pointer, dx.mutablePointer(), g.count, ChainRule(derivative: A.derivative))
                return [dx]
            }
        }
        return out
    }
}

@inline(__always) private func splat(_ v: Float) -> Vec { Vec(repeating: v) }
@inline(__always) private func sigmoidVec(_ x: Vec) -> Vec { splat(1) / (splat(1) + vexp(Vec() - x)) }

private enum GELU: Activation {
    struct F: VecUnary {
        @inline(__always) func callAsFunction(_ v: Vec) -> Vec {
            let h = splat(0.5) * v
            return fma(h, verf(v * splat(0.707_106_781_186_547_5)), h)
        }
    }
    struct D: VecUnary {
        @inline(__always) func callAsFunction(_ v: Vec) -> Vec {
            let cdf = fma(splat(0.5), verf(v * splat(0.707_106_781_186_547_5)), splat(0.5))
            return fma(v * splat(0.398_942_280_401_432_7), vexp(splat(-0.5) * v * v), cdf)
        }
    }
    static var forward: F { F() }
    static var derivative: D { D() }
}

private enum ReLU: Activation {
    struct F: VecUnary { @inline(__always) func callAsFunction(_ v: Vec) -> Vec { vmax(v, Vec()) } }
    struct D: VecUnary { @inline(__always) func callAsFunction(_ v: Vec) -> Vec { splat(1).replacing(with: 0, where: v .<= 0) } }
    static var forward: F { F() }
    static var derivative: D { D() }
}

private enum ReLU6: Activation {
    struct F: VecUnary { @inline(__always) func callAsFunction(_ v: Vec) -> Vec { vmin(vmax(v, Vec()), splat(6)) } }
    struct D: VecUnary {
        @inline(__always) func callAsFunction(_ v: Vec) -> Vec { splat(1).replacing(with: 0, where: (v .<= 0) .| (v .>= 6)) }
    }
    static var forward: F { F() }
    static var derivative: D { D() }
}

private enum Sigmoid: Activation {
    struct F: VecUnary { @inline(__always) func callAsFunction(_ v: Vec) -> Vec { sigmoidVec(v) } }
    struct D: VecUnary { @inline(__always) func callAsFunction(_ v: Vec) -> Vec { let s = sigmoidVec(v); return s * (splat(1) - s) } }
    static var forward: F { F() }
    static var derivative: D { D() }
}

private enum SiLU: Activation {
    struct F: VecUnary { @inline(__always) func callAsFunction(_ v: Vec) -> Vec { v * sigmoidVec(v) } }
    struct D: VecUnary {
        @inline(__always) func callAsFunction(_ v: Vec) -> Vec { let s = sigmoidVec(v); return s * fma(v, splat(1) - s, splat(1)) }
    }
    static var forward: F { F() }
    static var derivative: D { D() }
}

private enum HardSwish: Activation {
    struct F: VecUnary {
        @inline(__always) func callAsFunction(_ v: Vec) -> Vec { v * vmin(vmax(v + splat(3), Vec()), splat(6)) * splat(1.0 / 6.0) }
    }
    struct D: VecUnary {
        @inline(__always) func callAsFunction(_ v: Vec) -> Vec {
            fma(v, splat(1.0 / 3.0), splat(0.5)).replacing(with: 0, where: v .< -3).replacing(with: 1, where: v .> 3)
        }
    }
    static var forward: F { F() }
    static var derivative: D { D() }
}

/// GELU with the exact error function: `x · Φ(x)`.
public func gelu(_ x: consuming Tensor) -> Tensor { pointwise(consume x, GELU.self) }

/// `g[i] *= GELU′(u[i])` for `count` floats on the calling thread: the gradient through a GELU,
/// where a product computed g and the engine's kernel could not apply the factor in its stores.
@usableFromInline func multiplyByGELUDerivative(_ g: UnsafeMutablePointer<Float>, input u: UnsafePointer<Float>, count: Int) {
    zipVecSerial(UnsafePointer(g), u, g, 0, count, ChainRule(derivative: GELU.derivative))
}
/// max(x, 0).
public func relu(_ x: consuming Tensor) -> Tensor { pointwise(consume x, ReLU.self) }
/// min(max(x, 0), 6).
public func relu6(_ x: consuming Tensor) -> Tensor { pointwise(consume x, ReLU6.self) }
/// Logistic sigmoid 1 / (1 + e^(−x)).
public func sigmoid(_ x: consuming Tensor) -> Tensor { pointwise(consume x, Sigmoid.self) }
/// SiLU (swish): x · sigmoid(x).
public func silu(_ x: consuming Tensor) -> Tensor { pointwise(consume x, SiLU.self) }
/// Hard-swish: x · relu6(x + 3) / 6 (PyTorch's definition and gradient).
public func hardSwish(_ x: consuming Tensor) -> Tensor { pointwise(consume x, HardSwish.self) }
