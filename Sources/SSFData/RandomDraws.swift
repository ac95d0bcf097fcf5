// The random draws the augmentations need, on the project's seeded generator.
import Foundation
import SSFEngine

extension RandomGenerator {
    /// A uniform double in [low, high) from 53 random bits.
    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A uniform integer in `low...high` (both ends included, like Python's `random.randint`).
    mutating func integer(_ low: Int, _ high: Int) -> Int {
        low + Int(next(upperBound: UInt64(high - low + 1)))
    }

    /// A normal double with the given mean and standard deviation.
    mutating func gaussian(_ mean: Double, _ std: Double) -> Double {
        var u1 = uniform(0, 1)
        while u1 == 0 { u1 = uniform(0, 1) }
        return mean + std * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * uniform(0, 1))
    }

    /// A Gamma(shape, 1) draw (Marsaglia–Tsang; shapes below 1 boosted by U^(1/shape)).
    mutating func gamma(_ shape: Double) -> Double {
        if shape < 1 { return gamma(shape + 1) * pow(uniform(0, 1), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat { x = gaussian(0, 1); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = uniform(0, 1)
            if u > 0 && log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }

    /// A Beta(α, α) draw.
    mutating func beta(_ alpha: Double) -> Double {
        let a = gamma(alpha), b = gamma(alpha)
        return a + b > 0 ? a / (a + b) : 0.5
    }
}
