// Differentiable elementwise arithmetic with broadcasting: +, −, ×, ÷ and scalar forms.

extension Tensor {
    /// Elementwise sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        OpProfile.run("elementwise") {
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
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        OpProfile.run("elementwise") {
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
