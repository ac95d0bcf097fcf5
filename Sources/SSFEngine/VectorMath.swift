// Vectorised elementwise helpers and SIMD approximations of exp and erf (Float32 accuracy).

/// The SIMD width used by elementwise kernels (two AVX2 registers).
public typealias Vec = SIMD8<Float>

/// exp(x) for eight lanes: range reduction to r ∈ [-ln2/2, ln2/2], a degree-6 polynomial,
/// and scaling by 2ⁿ built in the exponent bits. Relative error ≈ 2 ulp; saturates to 0 / +inf.
@inlinable @inline(__always)
public func vexp(_ x: Vec) -> Vec {
    let xc = x.clamped(lowerBound: Vec(repeating: -87.33654), upperBound: Vec(repeating: 88.72283))
    // n = round(x / ln2) using the 1.5·2²³ trick; the integer lands in the low mantissa bits.
    let magic = Vec(repeating: 12_582_912.0)
    let t = xc * Vec(repeating: 1.442_695_04) + magic
    let n = t - magic
    var r = xc - n * Vec(repeating: 0.693_359_375)
    r = r - n * Vec(repeating: -2.121_944_4e-4)
    var p = Vec(repeating: 1.987_569_15e-4)
    p = p * r + Vec(repeating: 1.398_199_95e-3)
    p = p * r + Vec(repeating: 8.333_451_9e-3)
    p = p * r + Vec(repeating: 4.166_579_6e-2)
    p = p * r + Vec(repeating: 1.666_666_55e-1)
    p = p * r + Vec(repeating: 5.000_000_1e-1)
    p = p * (r * r) + r + Vec(repeating: 1)
    let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- unsafeBitCast(magic, to: SIMD8<UInt32>.self)
    let scale = unsafeBitCast((bits &+ 127) &<< 23, to: Vec.self)
    return p * scale
}

/// erf(x) for eight lanes (Abramowitz & Stegun 7.1.26 refined to max |error| ≈ 1.5e-7).
@inlinable @inline(__always)
public func verf(_ x: Vec) -> Vec {
    let a = x.replacing(with: Vec() - x, where: x .< 0)
    let t = Vec(repeating: 1) / (Vec(repeating: 1) + Vec(repeating: 0.327_591_1) * a)
    var p = Vec(repeating: 1.061_405_429)
    p = p * t + Vec(repeating: -1.453_152_027)
    p = p * t + Vec(repeating: 1.421_413_741)
    p = p * t + Vec(repeating: -0.284_496_736)
    p = p * t + Vec(repeating: 0.254_829_592)
    p = p * t
    let y = Vec(repeating: 1) - p * vexp(Vec() - a * a)
    return y.replacing(with: Vec() - y, where: x .< 0)
}

/// Scalar helpers built on the vector versions, for tails and reference code.
@inlinable public func sexp(_ x: Float) -> Float { vexp(Vec(repeating: x))[0] }
@inlinable public func serf(_ x: Float) -> Float { verf(Vec(repeating: x))[0] }

@inlinable @inline(__always)
func loadVec(_ p: UnsafePointer<Float>, _ count: Int) -> Vec {
    if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }
    var v = Vec()
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inlinable @inline(__always)
func storeVec(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self); return }
    for i in 0..<count { p[i] = v[i] }
}

/// dst[i] = f(src[i]) over `count` elements, eight lanes at a time, split across threads for large inputs.
@inlinable @inline(__always)
func mapVec(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ f: (Vec) -> Vec) {
    Threading.parallelFor((count + 8191) / 8192, minimumPerThread: 8) { blocks in
        var i = blocks.lowerBound * 8192
        let end = min(blocks.upperBound * 8192, count)
        while i + 32 <= end {
            let v0 = f(loadVec(src + i, 8)), v1 = f(loadVec(src + i + 8, 8))
            let v2 = f(loadVec(src + i + 16, 8)), v3 = f(loadVec(src + i + 24, 8))
            storeVec(v0, dst + i, 8); storeVec(v1, dst + i + 8, 8)
            storeVec(v2, dst + i + 16, 8); storeVec(v3, dst + i + 24, 8)
            i += 32
        }
        while i < end {
            let n = min(8, end - i)
            storeVec(f(loadVec(src + i, n)), dst + i, n)
            i += n
        }
    }
}

/// dst[i] = f(a[i], b[i]) over `count` elements.
@inlinable @inline(__always)
func zipVec(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ f: (Vec, Vec) -> Vec) {
    Threading.parallelFor((count + 8191) / 8192, minimumPerThread: 8) { blocks in
        var i = blocks.lowerBound * 8192
        let end = min(blocks.upperBound * 8192, count)
        while i + 16 <= end {
            let v0 = f(loadVec(a + i, 8), loadVec(b + i, 8))
            let v1 = f(loadVec(a + i + 8, 8), loadVec(b + i + 8, 8))
            storeVec(v0, dst + i, 8); storeVec(v1, dst + i + 8, 8)
            i += 16
        }
        while i < end {
            let n = min(8, end - i)
            storeVec(f(loadVec(a + i, n), loadVec(b + i, n)), dst + i, n)
            i += n
        }
    }
}

/// Sum of `count` elements with four vector accumulators.
@inlinable @inline(__always)
func sumVec(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
    var i = 0
    while i + 32 <= count {
        a0 += loadVec(p + i, 8); a1 += loadVec(p + i + 8, 8)
        a2 += loadVec(p + i + 16, 8); a3 += loadVec(p + i + 24, 8)
        i += 32
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < count { s += p[i]; i += 1 }
    return s
}

/// Dot product of `count` elements with four vector accumulators.
@inlinable @inline(__always)
func dotVec(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ count: Int) -> Float {
    var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
    var i = 0
    while i + 32 <= count {
        a0.addProduct(loadVec(p + i, 8), loadVec(q + i, 8))
        a1.addProduct(loadVec(p + i + 8, 8), loadVec(q + i + 8, 8))
        a2.addProduct(loadVec(p + i + 16, 8), loadVec(q + i + 16, 8))
        a3.addProduct(loadVec(p + i + 24, 8), loadVec(q + i + 24, 8))
        i += 32
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < count { s += p[i] * q[i]; i += 1 }
    return s
}
