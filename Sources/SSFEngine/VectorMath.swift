// Vectorised elementwise helpers and SIMD approximations of exp and erf (Float32 accuracy).

/// The SIMD width used by elementwise kernels (two AVX2 registers).
public typealias Vec = SIMD8<Float>

/// a·b + c in one fused multiply-add per lane.
@inlinable @inline(__always)
public func fma(_ a: Vec, _ b: Vec, _ c: Vec) -> Vec { c.addingProduct(a, b) }

/// Lane-wise maximum (compiles to one vmaxps).
@inlinable @inline(__always)
public func vmax(_ a: Vec, _ b: Vec) -> Vec { a.replacing(with: b, where: a .< b) }

/// Lane-wise minimum (compiles to one vminps).
@inlinable @inline(__always)
public func vmin(_ a: Vec, _ b: Vec) -> Vec { a.replacing(with: b, where: b .< a) }

/// Largest lane.
@inlinable @inline(__always)
public func hmax(_ v: Vec) -> Float {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.lowHalf .< v.highHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.lowHalf .< a.highHalf)
    return max(b[0], b[1])
}

/// exp(x) for eight lanes: range reduction to r ∈ [-ln2/2, ln2/2], a degree-6 polynomial,
/// and scaling by 2ⁿ built in the exponent bits. Relative error ≈ 2 ulp; +inf above 88.72, and
/// exactly 0 below −87.34 (where exp leaves the normal floats: −∞ gives 0, no denormal appears).
/// Transparent: `@inline(__always)` left it an out-of-line call in the softmax loops (the vector
/// split into two halves across the call, its constants reloaded, no overlap of two exps).
@_transparent
public func vexp(_ x: Vec) -> Vec {
    let lower = Vec(repeating: -87.33654)
    let xc = vmin(vmax(x, lower), Vec(repeating: 88.72283))
    // n = round(x / ln2) using the 1.5·2²³ trick; the integer lands in the low mantissa bits.
    let magic = Vec(repeating: 12_582_912.0)
    let t = fma(xc, Vec(repeating: 1.442_695_04), magic)
    let n = t - magic
    var r = fma(n, Vec(repeating: -0.693_359_375), xc)
    r = fma(n, Vec(repeating: 2.121_944_4e-4), r)
    var p = Vec(repeating: 1.987_569_15e-4)
    p = fma(p, r, Vec(repeating: 1.398_199_95e-3))
    p = fma(p, r, Vec(repeating: 8.333_451_9e-3))
    p = fma(p, r, Vec(repeating: 4.166_579_6e-2))
    p = fma(p, r, Vec(repeating: 1.666_666_55e-1))
    p = fma(p, r, Vec(repeating: 5.000_000_1e-1))
    p = fma(p, r * r, r + Vec(repeating: 1))
    let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- unsafeBitCast(magic, to: SIMD8<UInt32>.self)
    let scale = unsafeBitCast((bits &+ 127) &<< 23, to: Vec.self)
    return (p * scale).replacing(with: 0, where: x .< lower)
}

/// erf(x) for eight lanes: x·P(x²)/Q(x²) with x clamped to [−4, 4] (a degree-13/8 rational
/// minimax fit, the coefficients of the Float32 erf used in Eigen and XLA). One division and no
/// exponential; max |error| 3.3e-7 (measured against Double erf on a 1e-4 grid over [−6, 6]).
@inlinable @inline(__always)
public func verf(_ x0: Vec) -> Vec {
    let x = vmin(vmax(x0, Vec(repeating: -4)), Vec(repeating: 4))
    let x2 = x * x
    var p = Vec(repeating: -2.726_142_258_013_06e-10)
    p = fma(p, x2, Vec(repeating: 2.770_681_424_959_02e-08))
    p = fma(p, x2, Vec(repeating: -2.101_024_020_825_08e-06))
    p = fma(p, x2, Vec(repeating: -5.692_506_394_623_46e-05))
    p = fma(p, x2, Vec(repeating: -7.349_906_303_268_55e-04))
    p = fma(p, x2, Vec(repeating: -2.954_599_808_540_25e-03))
    p = fma(p, x2, Vec(repeating: -1.609_603_332_624_15e-02))
    var q = Vec(repeating: -1.456_607_184_649_96e-05)
    q = fma(q, x2, Vec(repeating: -2.133_740_552_789_05e-04))
    q = fma(q, x2, Vec(repeating: -1.682_826_974_382_03e-03))
    q = fma(q, x2, Vec(repeating: -7.373_329_167_204_68e-03))
    q = fma(q, x2, Vec(repeating: -1.426_473_905_141_89e-02))
    return x * p / q
}

/// Eight floats from `p` (fewer, zero-padded, when `count` < 8).
@inlinable @inline(__always)
public func loadVec(_ p: UnsafePointer<Float>, _ count: Int) -> Vec {
    if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }
    var v = Vec()
    for i in 0..<count { v[i] = p[i] }
    return v
}

/// The first `count` (at most 8) lanes of `v` to `p`.
@inlinable @inline(__always)
public func storeVec(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self); return }
    for i in 0..<count { p[i] = v[i] }
}

/// An elementwise function on eight lanes. Kernels take these as generic parameters so that
/// the function is inlined into the vector loop (a closure would be an indirect call per vector).
public protocol VecUnary { func callAsFunction(_ v: Vec) -> Vec }
/// An elementwise function of two operands on eight lanes.
public protocol VecBinary { func callAsFunction(_ a: Vec, _ b: Vec) -> Vec }

/// Adapts a closure to `VecUnary` for code that is not hot.
struct VecClosure: VecUnary {
    let body: (Vec) -> Vec
    @inline(__always) func callAsFunction(_ v: Vec) -> Vec { body(v) }
}

/// Adapts a closure to `VecBinary` for code that is not hot.
struct VecClosure2: VecBinary {
    let body: (Vec, Vec) -> Vec
    @inline(__always) func callAsFunction(_ a: Vec, _ b: Vec) -> Vec { body(a, b) }
}

/// Elements per parallel work item of the elementwise kernels.
@usableFromInline let elementBlock = 8192

/// dst[i] = f(src[i]) over `count` elements, eight lanes at a time, split across threads for large inputs.
@inlinable @inline(__always)
func mapVec<F: VecUnary>(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ f: F) {
    if count <= elementBlock { mapVecSerial(src, dst, 0, count, f); return }
    Threading.parallelFor((count + elementBlock - 1) / elementBlock, minimumPerThread: 4) { blocks in
        mapVecSerial(src, dst, blocks.lowerBound * elementBlock, min(blocks.upperBound * elementBlock, count), f)
    }
}

@inlinable @inline(__always)
func mapVecSerial<F: VecUnary>(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ start: Int, _ end: Int, _ f: F) {
    var i = start
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

/// Closure form of `mapVec` for code that is not hot.
@inline(__always)
func mapVec(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ f: (Vec) -> Vec) {
    withoutActuallyEscaping(f) { mapVec(src, dst, count, VecClosure(body: $0)) }
}

/// dst[i] = f(a[i], b[i]) over `count` elements.
@inlinable @inline(__always)
func zipVec<F: VecBinary>(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ f: F) {
    if count <= elementBlock { zipVecSerial(a, b, dst, 0, count, f); return }
    Threading.parallelFor((count + elementBlock - 1) / elementBlock, minimumPerThread: 4) { blocks in
        zipVecSerial(a, b, dst, blocks.lowerBound * elementBlock, min(blocks.upperBound * elementBlock, count), f)
    }
}

@inlinable @inline(__always)
func zipVecSerial<F: VecBinary>(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ start: Int, _ end: Int, _ f: F) {
    var i = start
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

/// Closure form of `zipVec` for code that is not hot.
@inline(__always)
func zipVec(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ f: (Vec, Vec) -> Vec) {
    withoutActuallyEscaping(f) { zipVec(a, b, dst, count, VecClosure2(body: $0)) }
}

/// Lane-wise arithmetic as `VecBinary` values for the hot elementwise paths.
struct VecAdd: VecBinary { @inline(__always) func callAsFunction(_ a: Vec, _ b: Vec) -> Vec { a + b } }
struct VecSub: VecBinary { @inline(__always) func callAsFunction(_ a: Vec, _ b: Vec) -> Vec { a - b } }
struct VecMul: VecBinary { @inline(__always) func callAsFunction(_ a: Vec, _ b: Vec) -> Vec { a * b } }
struct VecDiv: VecBinary { @inline(__always) func callAsFunction(_ a: Vec, _ b: Vec) -> Vec { a / b } }

/// x·a + b with fixed a and b, the inner step of affine and scale-shift kernels.
struct VecAffine: VecUnary {
    let a: Vec, b: Vec
    @inline(__always) func callAsFunction(_ v: Vec) -> Vec { fma(v, a, b) }
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
        a0 = fma(loadVec(p + i, 8), loadVec(q + i, 8), a0)
        a1 = fma(loadVec(p + i + 8, 8), loadVec(q + i + 8, 8), a1)
        a2 = fma(loadVec(p + i + 16, 8), loadVec(q + i + 16, 8), a2)
        a3 = fma(loadVec(p + i + 24, 8), loadVec(q + i + 24, 8), a3)
        i += 32
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < count { s += p[i] * q[i]; i += 1 }
    return s
}
