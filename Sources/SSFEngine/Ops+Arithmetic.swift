// Differentiable elementwise arithmetic with broadcasting: +, −, ×, ÷ and scalar forms.

extension Tensor {
    /// Elementwise sum with broadcasting.
    public static func + (a: consuming Tensor, b: consuming Tensor) -> Tensor {
        var lhs = consume a
        var rhs = consume b
        return OpProfile.run("elementwise") {
            if let out = inPlace(&lhs, &rhs, VecAdd()) { return out }
            let (a, b) = (lhs, rhs)
            var out = broadcastBinary(a, b, "add", VecAdd())
            if let tape = Tape.active(for: a, b) {
                let (sa, sb) = (a.shape, b.shape)
                out = tape.record(out, inputs: [a, b]) { g, needs in
                    [needs[0] ? g.summed(toShape: sa) : nil, needs[1] ? g.summed(toShape: sb) : nil]
                }
            }
            return out
        }
    }

    /// Elementwise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        OpProfile.run("elementwise") {
            var out = broadcastBinary(a, b, "sub", VecSub())
            if let tape = Tape.active(for: a, b) {
                let (sa, sb) = (a.shape, b.shape)
                out = tape.record(out, inputs: [a, b]) { g, needs in
                    [needs[0] ? g.summed(toShape: sa) : nil, needs[1] ? (g * -1).summed(toShape: sb) : nil]
                }
            }
            return out
        }
    }

    /// Elementwise product with broadcasting.
    public static func * (a: consuming Tensor, b: consuming Tensor) -> Tensor {
        var lhs = consume a
        var rhs = consume b
        return OpProfile.run("elementwise") {
            if let out = inPlace(&lhs, &rhs, VecMul()) { return out }
            let (a, b) = (lhs, rhs)
            var out = broadcastBinary(a, b, "mul", VecMul())
            if let tape = Tape.active(for: a, b) {
                let (ua, ub) = (a.untracked, b.untracked)
                out = tape.record(out, inputs: [a, b]) { g, needs in
                    [needs[0] ? (g * ub).summed(toShape: ua.shape) : nil,
                     needs[1] ? (g * ua).summed(toShape: ub.shape) : nil]
                }
            }
            return out
        }
    }

    /// Elementwise quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        OpProfile.run("elementwise") {
            var out = broadcastBinary(a, b, "div", VecDiv())
            if let tape = Tape.active(for: a, b) {
                let (ua, ub) = (a.untracked, b.untracked)
                out = tape.record(out, inputs: [a, b]) { g, needs in
                    [needs[0] ? (g / ub).summed(toShape: ua.shape) : nil,
                     needs[1] ? broadcastBinary(broadcastBinary(g, ua, "div", VecMul()), ub, "div", VecClosure2 { -$0 / ($1 * $1) })
                        .summed(toShape: ub.shape) : nil]
                }
            }
            return out
        }
    }

    /// Every element multiplied by `s`.
    public static func * (a: Tensor, s: Float) -> Tensor {
        OpProfile.run("elementwise") {
            var out = Tensor(uninitializedShape: a.shape)
            mapVec(a.pointer, out.mutablePointer(), a.count, VecAffine(a: Vec(repeating: s), b: Vec()))
            if let tape = Tape.active(for: a) {
                out = tape.record(out, inputs: [a]) { g, _ in [g * s] }
            }
            return out
        }
    }

    /// Every element plus `s`.
    public static func + (a: Tensor, s: Float) -> Tensor {
        OpProfile.run("elementwise") {
            var out = Tensor(uninitializedShape: a.shape)
            mapVec(a.pointer, out.mutablePointer(), a.count, VecAffine(a: Vec(repeating: 1), b: Vec(repeating: s)))
            if let tape = Tape.active(for: a) {
                out = tape.record(out, inputs: [a]) { g, _ in [g] }
            }
            return out
        }
    }

    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static prefix func - (a: Tensor) -> Tensor { a * -1 }
}

/// An untracked commutative op (an inference pass's residual sum or per-channel product) written
/// into the buffer of an operand that nothing else holds and that has the result's shape; nil while
/// a tape tracks either operand or when neither buffer can be reused.
@inline(__always)
func inPlace<F: VecBinary>(_ a: inout Tensor, _ b: inout Tensor, _ f: F) -> Tensor? {
    if let tape = Tape.current, tape.tracks(a) || tape.tracks(b) { return nil }
    guard let shape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape) else { return nil }
    // The destination is taken before the operands are passed on (passing them may retain them).
    if a.shape == shape && a.isUniquelyOwned() {
        let dst = a.mutablePointer()
        broadcastBinary(a, b, f, shape: shape, into: dst)
        return a
    }
    if b.shape == shape && b.isUniquelyOwned() {
        let dst = b.mutablePointer()
        broadcastBinary(a, b, f, shape: shape, into: dst)
        return b
    }
    return nil
}
