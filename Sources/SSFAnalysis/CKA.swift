// Centered kernel alignment (CKA) between two representations of the same images, computed in
// Float64 over minibatches.
//
// For n images, K and L are n×n Gram matrices of the two representations (linear: K = X·Xᵀ after
// centering X's columns over the minibatch; RBF: K_ij = exp(−‖x_i − x_j‖² / (2σ²))).
//
// HSIC is estimated without bias (Song et al., 2012), with K̃, L̃ the Gram matrices with their
// diagonals set to zero and 1 the all-ones vector:
//
//   HSIC₁(K, L) = [ tr(K̃·L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1 ] / (n(n−3))
//
// Minibatch CKA (Nguyen, Raghu & Kornblith, 2021) averages the estimates over k minibatches before
// the ratio, which makes it an estimate of the full-data CKA that does not depend on the batch size:
//
//   CKA = (1/k Σᵢ HSIC₁(Kᵢ, Lᵢ)) / sqrt( (1/k Σᵢ HSIC₁(Kᵢ, Kᵢ)) · (1/k Σᵢ HSIC₁(Lᵢ, Lᵢ)) )
//
// It is invariant to orthogonal transforms and isotropic scaling of either representation (linear
// kernel; RBF too when σ is a fraction of the median distance), which the tests check.
import CBLAS
import Foundation

/// The kernel of the Gram matrices.
public enum CKAKernel: Sendable, Equatable, CustomStringConvertible {
    case linear
    /// exp(−d² / (2σ²)) with σ = `sigmaFraction` × the median pairwise distance in the minibatch.
    case rbf(sigmaFraction: Double)

    public var description: String {
        switch self {
        case .linear: return "linear"
        case .rbf(let f): return "rbf(σ = \(f) × median distance)"
        }
    }
}

/// A symmetric n×n Gram matrix in Float64, row-major.
public struct GramMatrix: Sendable, Equatable {
    public let n: Int
    public var values: [Double]

    public init(n: Int, values: [Double]) {
        precondition(values.count == n * n, "GramMatrix: \(values.count) values for \(n)×\(n)")
        self.n = n; self.values = values
    }

    /// The Gram matrix of `n` feature rows of `d` values each (row-major `features`). The columns are
    /// centred over the rows in Float64 first; the product runs in Float64 (dsyrk).
    public init(features: UnsafePointer<Float>, n: Int, d: Int, kernel: CKAKernel) {
        precondition(n >= 1 && d >= 1, "GramMatrix: \(n) rows of \(d) features")
        var x = [Double](repeating: 0, count: n * d)
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n {
            let row = features + i * d
            for j in 0..<d { mean[j] += Double(row[j]) }
        }
        for j in 0..<d { mean[j] /= Double(n) }
        x.withUnsafeMutableBufferPointer { out in
            for i in 0..<n {
                let row = features + i * d, dst = out.baseAddress! + i * d
                for j in 0..<d { dst[j] = Double(row[j]) - mean[j] }
            }
        }
        var g = [Double](repeating: 0, count: n * n)
        x.withUnsafeBufferPointer { a in
            g.withUnsafeMutableBufferPointer { c in
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(d), 1, a.baseAddress!, Int32(d), 0, c.baseAddress!, Int32(n))
            }
        }
        for i in 0..<n { for j in 0..<i { g[i * n + j] = g[j * n + i] } }
        self.n = n
        self.values = g
        if case .rbf(let fraction) = kernel { self.values = Self.rbf(fromLinear: g, n: n, sigmaFraction: fraction) }
    }

    /// RBF kernel values from a linear Gram matrix: d²ᵢⱼ = Gᵢᵢ + Gⱼⱼ − 2Gᵢⱼ, σ = fraction × the median of dᵢⱼ over i < j
    /// (for an even count, the mean of the middle two).
    static func rbf(fromLinear g: [Double], n: Int, sigmaFraction: Double) -> [Double] {
        var d2 = [Double](repeating: 0, count: n * n)
        var distances: [Double] = []
        distances.reserveCapacity(n * (n - 1) / 2)
        for i in 0..<n {
            for j in 0..<n where j != i {
                let v = max(0, g[i * n + i] + g[j * n + j] - 2 * g[i * n + j])
                d2[i * n + j] = v
                if j > i { distances.append(v.squareRoot()) }
            }
        }
        distances.sort()
        var median = 0.0
        if !distances.isEmpty {
            let m = distances.count
            median = m % 2 == 1 ? distances[m / 2] : (distances[m / 2 - 1] + distances[m / 2]) / 2
        }
        let sigma = sigmaFraction * median
        guard sigma > 0 else { return [Double](repeating: 1, count: n * n) }
        return d2.map { exp(-$0 / (2 * sigma * sigma)) }
    }
}

/// The unbiased HSIC estimator (formula at the top of the file); needs n ≥ 4.
public func unbiasedHSIC(_ k: GramMatrix, _ l: GramMatrix) -> Double {
    precondition(k.n == l.n, "unbiasedHSIC: \(k.n)×\(k.n) and \(l.n)×\(l.n) Gram matrices")
    let n = k.n
    precondition(n >= 4, "unbiasedHSIC needs at least 4 samples, got \(n)")
    var trace = 0.0, sumK = 0.0, sumL = 0.0, rowProduct = 0.0
    k.values.withUnsafeBufferPointer { kp in
        l.values.withUnsafeBufferPointer { lp in
            for i in 0..<n {
                var rowK = 0.0, rowL = 0.0
                for j in 0..<n where j != i {
                    let a = kp[i * n + j], b = lp[i * n + j]
                    trace += a * b          // tr(K̃L̃) = Σᵢⱼ K̃ᵢⱼ L̃ⱼᵢ, both symmetric
                    rowK += a; rowL += b
                }
                sumK += rowK; sumL += rowL
                rowProduct += rowK * rowL   // 1ᵀK̃L̃1 = Σⱼ (K̃1)ⱼ (L̃1)ⱼ
            }
        }
    }
    let nd = Double(n)
    let value = trace + sumK * sumL / ((nd - 1) * (nd - 2)) - 2 / (nd - 2) * rowProduct
    return value / (nd * (nd - 3))
}

/// Minibatch CKA between two representations: add each minibatch's pair of Gram matrices.
public struct MinibatchCKA: Sendable, Equatable {
    public private(set) var crossSum = 0.0, firstSum = 0.0, secondSum = 0.0
    public private(set) var batches = 0

    public init() {}

    public mutating func add(_ k: GramMatrix, _ l: GramMatrix) {
        crossSum += unbiasedHSIC(k, l)
        firstSum += unbiasedHSIC(k, k)
        secondSum += unbiasedHSIC(l, l)
        batches += 1
    }

    /// Adds the terms of one minibatch computed elsewhere (HSIC₁(K, L), HSIC₁(K, K), HSIC₁(L, L)).
    public mutating func add(cross: Double, first: Double, second: Double) {
        crossSum += cross; firstSum += first; secondSum += second; batches += 1
    }

    /// The CKA estimate; nil before any minibatch or when either representation is constant.
    public var value: Double? {
        guard batches > 0, firstSum > 0, secondSum > 0 else { return nil }
        return crossSum / (firstSum * secondSum).squareRoot()
    }
}
