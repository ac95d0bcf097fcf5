// Tensor constructors: constants, ranges and seeded random initialisers.

extension Tensor {
    /// All zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    /// All ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }
    /// Every element equal to `value`.
    public static func full(_ shape: [Int], _ value: Float) -> Tensor { Tensor(shape: shape, repeating: value) }

    /// `[start, start + step, …]` with `count` elements, as a 1-D tensor.
    public static func arange(_ count: Int, start: Float = 0, step: Float = 1) -> Tensor {
        var t = Tensor(uninitializedShape: [count])
        let p = t.mutablePointer()
        for i in 0..<count { p[i] = start + Float(i) * step }
        return t
    }

    /// Normal samples with the given mean and standard deviation.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let p = t.mutablePointer()
        for i in 0..<t.count { p[i] = mean + std * rng.nextNormal() }
        return t
    }

    /// Uniform samples in [low, high).
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let p = t.mutablePointer()
        for i in 0..<t.count { p[i] = low + (high - low) * rng.nextUniform() }
        return t
    }

    /// Normal samples restricted to [low, high] by redrawing the ones outside
    /// (the distribution of timm's `trunc_normal_`, not its exact values).
    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, low: Float = -2, high: Float = 2, using rng: inout RandomGenerator) -> Tensor {
        precondition(low < high, "truncatedNormal needs low < high")
        var t = Tensor(uninitializedShape: shape)
        let p = t.mutablePointer()
        for i in 0..<t.count {
            var v: Float
            repeat { v = mean + std * rng.nextNormal() } while v < low || v > high
            p[i] = v
        }
        return t
    }
}
