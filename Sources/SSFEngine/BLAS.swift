// Row-major single-precision GEMM through the system BLAS.
import CBLAS
import CKernels
import Foundation
import Synchronization

/// Thin wrappers over CBLAS `sgemm` in row-major order.
public enum BLAS {
    /// Whether `smallSgemm` runs the shim's kernel (where it has one). Off, it calls `sgemm`;
    /// `SSF_ATTENTION_GEMM=blas` turns it off for a whole process, and `ssf bench ops` times both.
    nonisolated(unsafe) public static var smallKernelEnabled = getenv("SSF_ATTENTION_GEMM").map { String(cString: $0) != "blas" } ?? true

    /// Whether products go to the engine's own blocked kernel (`ssf_gemm`) where it applies (see
    /// `ownKernelApplies`). Off, every product is a BLAS call, with the epilogues as a pass after it;
    /// `SSF_GEMM=blas` turns it off for a whole process, and `ssf bench ops --only gemm` times both.
    nonisolated(unsafe) public static var ownKernelEnabled = ssf_gemm_available() != 0
        && getenv("SSF_GEMM").map { String(cString: $0) != "blas" } ?? true

    /// Whether a product of this shape runs on the engine's kernel: op(A) not transposed, and K or N
    /// at most 512. There it matches or beats OpenBLAS's Haswell kernels (by 10–20% at K = 128, Swin's
    /// and ConvNeXt's first stage) and takes a per-column scale and bias in its stores; at ViT-B's
    /// larger shapes and for weight gradients (op(A) = gᵀ) OpenBLAS stays ahead.
    @inlinable public static func ownKernelApplies(transposeA: Bool, n: Int, k: Int) -> Bool {
        ownKernelEnabled && !transposeA && min(n, k) <= 512
    }

    /// Floats of the scratch `smallSgemm` packs op(B) into, for products of at most `k` × `n`.
    public static func smallPackCount(n: Int, k: Int) -> Int { k * ((n + 15) / 16) * 16 }

    /// `sgemm` on the calling thread for small products (attention's per-head matrices): op(B) is
    /// packed into `pack` (`smallPackCount(n:k:)` floats) and A read in place by the shim's 6×16
    /// AVX2 kernel. Where the shim has no such kernel (or `smallKernelEnabled` is off), this is `sgemm`. Not recorded by
    /// `GemmRecorder` (its callers run inside parallel loops).
    @inlinable public static func smallSgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, pack: UnsafeMutablePointer<Float>
    ) {
        #if arch(x86_64)
        if smallKernelEnabled {
            if m == 0 || n == 0 { return }
            OpProfile.addFlops(2 * m * n * k)
            ssf_small_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pack)
            return
        }
        #endif
        sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
              b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// C = (alpha · op(A) · diag(innerScale) · op(B) + beta · C) ⊙ columnScale + columnBias, with
    /// op(X) = Xᵀ when the flag is set. A is M×K (K×M if transposed), B is K×N (N×K if transposed),
    /// C is M×N; leading dimensions are row strides. `columnScale` and `columnBias` (N floats each,
    /// or nil) are applied as the engine's kernel stores each tile of C, or, where BLAS runs the
    /// product, in a pass over each thread's part of C right after it. `innerScale` (K floats, or
    /// nil) scales op(B)'s rows: as the engine's kernel packs them, or in a scaled copy of B for BLAS.
    /// `geluInput` (M×N, row stride `ldg`, or nil) makes C the gradient of a GELU's input from the
    /// product as the gradient of its output: each element times GELU′ of `geluInput`'s, in the
    /// kernel's stores or in the pass after BLAS.
    @inlinable public static func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        columnScale: UnsafePointer<Float>? = nil, columnBias: UnsafePointer<Float>? = nil,
        innerScale: UnsafePointer<Float>? = nil, geluInput: UnsafePointer<Float>? = nil, ldg: Int = 0
    ) {
        if m == 0 || n == 0 { return }
        OpProfile.addFlops(2 * m * n * k)
        if GemmRecorder.isOn.load(ordering: .relaxed) && !Threading.isInParallelRegion && GemmRecorder.excluded.load(ordering: .relaxed) == 0 {
            GemmRecorder.append(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, ldc)
        }
        if k == 0 {
            for i in 0..<m {
                for j in 0..<n {
                    var v: Float = beta == 0 ? 0 : beta * c[i * ldc + j]
                    if let columnScale { v *= columnScale[j] }
                    if let columnBias { v += columnBias[j] }
                    if let geluInput { multiplyByGELUDerivative(&v, input: geluInput + i * ldg + j, count: 1) }
                    c[i * ldc + j] = v
                }
            }
            return
        }
        // Large products are split across the engine's threads (BLAS itself always runs on one
        // thread: its own pool would spin between calls and take cores from ours).
        let parts = Threading.isInParallelRegion ? 1 : min(Threading.threads, max(m, n) / 64)
        if parts > 1 && m * n * k >= 1 << 21 {
            let alongRows = m >= n
            let length = alongRows ? m : n
            let chunk = (length + parts - 1) / parts
            let step = (chunk + 15) / 16 * 16
            Threading.parallelFor((length + step - 1) / step) { range in
                for p in range {
                    let lo = p * step, hi = min(length, lo + step)
                    if alongRows {
                        gemm(transposeA, transposeB, hi - lo, n, k, alpha, transposeA ? a + lo : a + lo * lda, lda, b, ldb,
                             beta, c + lo * ldc, ldc, columnScale, columnBias, innerScale, geluInput.map { $0 + lo * ldg }, ldg)
                    } else {
                        gemm(transposeA, transposeB, m, hi - lo, k, alpha, a, lda, transposeB ? b + lo * ldb : b + lo, ldb,
                             beta, c + lo, ldc, columnScale.map { $0 + lo }, columnBias.map { $0 + lo }, innerScale,
                             geluInput.map { $0 + lo }, ldg)
                    }
                }
            }
            return
        }
        gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, columnScale, columnBias, innerScale, geluInput, ldg)
    }

    /// One product on the calling thread: the engine's kernel where `ownKernelApplies`, else a CBLAS
    /// call followed by the epilogue's pass over C.
    @usableFromInline static func gemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                                       _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                                       _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                                       _ scale: UnsafePointer<Float>? = nil, _ bias: UnsafePointer<Float>? = nil,
                                       _ innerScale: UnsafePointer<Float>? = nil,
                                       _ geluInput: UnsafePointer<Float>? = nil, _ ldg: Int = 0) {
        if ownKernelApplies(transposeA: transposeA, n: n, k: k) {
            ssf_gemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scale, bias, innerScale,
                     geluInput, ldg)
            return
        }
        if let geluInput {
            gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scale, bias, innerScale)
            for i in 0..<m { multiplyByGELUDerivative(c + i * ldc, input: geluInput + i * ldg, count: n) }
            return
        }
        if let innerScale {
            // BLAS has no such scale: op(B) with its rows scaled, densely, in B's own orientation.
            let scaled = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
            defer { scaled.deallocate() }
            if transposeB {
                for j in 0..<n { for p in 0..<k { scaled[j * k + p] = b[j * ldb + p] * innerScale[p] } }
            } else {
                for p in 0..<k { for j in 0..<n { scaled[p * n + j] = b[p * ldb + j] * innerScale[p] } }
            }
            gemm(transposeA, transposeB, m, n, k, alpha, a, lda, UnsafePointer(scaled), transposeB ? k : n, beta, c, ldc, scale, bias)
            return
        }
        if scale == nil, let bias, beta == 0 {
            // The bias rows as C with beta 1: BLAS would otherwise clear C first, a pass of its own.
            for i in 0..<m { (c + i * ldc).update(from: bias, count: n) }
            cblasGemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, 1, c, ldc)
            return
        }
        cblasGemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        if scale == nil && bias == nil { return }
        for i in 0..<m {
            let row = c + i * ldc
            switch (scale, bias) {
            case let (s?, b?): for j in 0..<n { row[j] = row[j] * s[j] + b[j] }
            case let (s?, nil): for j in 0..<n { row[j] *= s[j] }
            case let (nil, b?): for j in 0..<n { row[j] += b[j] }
            case (nil, nil): break
            }
        }
    }

    /// One single-threaded CBLAS call.
    @usableFromInline static func cblasGemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                                            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension BLAS {
    /// The kernel set the BLAS library uses on this CPU (OpenBLAS's core name, e.g. "Haswell";
    /// `OPENBLAS_CORETYPE` overrides OpenBLAS's own choice).
    public static var coreName: String { String(cString: ssf_blas_core_name()) }

    /// OpenBLAS kernel sets without AVX2: what its CPU detection falls back to on a processor
    /// model newer than the library (Debian 12's OpenBLAS 0.3.21 takes a 5th-generation Xeon for
    /// a "Prescott" and runs SSE3 kernels at a quarter of the AVX-512 ones' speed).
    static let coresWithoutAVX2: Set<String> = [
        "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge", "Katmai", "Coppermine",
        "Northwood", "Banias", "Opteron", "Opteron(SSE3)", "Barcelona", "Bobcat", "Bulldozer", "Piledriver",
        "Steamroller", "Excavator", "Unknown",
    ]

    /// The kernel set to ask OpenBLAS for instead of the one it chose, when it chose one without
    /// AVX2 on a CPU that has AVX2 ("Haswell") or AVX-512 ("SkylakeX"); nil when its choice stands
    /// or `OPENBLAS_CORETYPE` already names one. OpenBLAS reads that variable once, when it loads,
    /// so a program applies the answer by setting it and starting itself again (the `ssf` tool does).
    public static func betterCoreType(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        betterCoreType(chosen: coreName, vectorLevel: Int(ssf_cpu_vector_level()), environment: environment)
    }

    /// `betterCoreType` for OpenBLAS's choice `chosen` on a CPU of `vectorLevel` (2: AVX-512 F, BW,
    /// DQ and VL; 1: AVX2 and FMA; 0: older or not x86).
    static func betterCoreType(chosen: String, vectorLevel: Int, environment: [String: String]) -> String? {
        if let named = environment["OPENBLAS_CORETYPE"], !named.isEmpty { return nil }
        guard coresWithoutAVX2.contains(chosen) else { return nil }
        switch vectorLevel {
        case 2: return "SkylakeX"
        case 1: return "Haswell"
        default: return nil
        }
    }

    /// The kernel set OpenBLAS chose before the `ssf` tool restarted itself with a better one
    /// (see `betterCoreType`), or nil.
    public static var replacedCoreName: String? { ProcessInfo.processInfo.environment[replacedCoreVariable] }
    public static let replacedCoreVariable = "SSF_OPENBLAS_DETECTED_CORE"
}

/// One top-level `BLAS.sgemm` call: its shape, scalars, leading dimensions and where its A and B
/// operands were (addresses only, for telling the model's own weights from temporaries).
public struct GemmCall: Sendable, Equatable {
    public let transposeA: Bool, transposeB: Bool
    public let m: Int, n: Int, k: Int
    public let alpha: Float
    public let a: UInt, lda: Int
    public let b: UInt, ldb: Int
    public let beta: Float, ldc: Int

    /// Multiply and add counted apart.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    /// Floats spanned by A, B and C in row-major order with their leading dimensions.
    public var aExtent: Int { transposeA ? (k - 1) * lda + m : (m - 1) * lda + k }
    public var bExtent: Int { transposeB ? (n - 1) * ldb + k : (k - 1) * ldb + n }
    public var cExtent: Int { (m - 1) * ldc + n }
}

/// Records the GEMMs a piece of code issues at the top level (those a parallel loop issues per
/// thread, and attention's per-head products, are left out), so a benchmark can replay a model's
/// own matrix products as raw BLAS and compare the model's rate with theirs.
public enum GemmRecorder {
    @usableFromInline static let isOn = Atomic<Bool>(false)
    /// Open `excluding` scopes (an op's internal products: attention's per-head GEMMs).
    @usableFromInline static let excluded = Atomic<Int>(0)
    private static let calls = Mutex<[GemmCall]>([])

    @usableFromInline static func append(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                                         _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                                         _ beta: Float, _ ldc: Int) {
        let call = GemmCall(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                            a: UInt(bitPattern: a), lda: lda, b: UInt(bitPattern: b), ldb: ldb, beta: beta, ldc: ldc)
        calls.withLock { $0.append(call) }
    }

    /// Runs `body` without recording its GEMMs: for an op whose products are its own internals
    /// (attention's per-head products, issued serially when one thread runs the loop), so that what
    /// is recorded does not depend on the thread count.
    @inlinable public static func excluding<R>(_ body: () -> R) -> R {
        guard isOn.load(ordering: .relaxed) else { return body() }
        excluded.add(1, ordering: .relaxed)
        defer { excluded.subtract(1, ordering: .relaxed) }
        return body()
    }

    /// Runs `body` and returns the top-level GEMM calls it made, in order.
    public static func record(_ body: () -> Void) -> [GemmCall] {
        calls.withLock { $0.removeAll() }
        isOn.store(true, ordering: .relaxed)
        body()
        isOn.store(false, ordering: .relaxed)
        return calls.withLock { recorded in
            defer { recorded.removeAll() }
            return recorded
        }
    }
}

/// The cores' peak single-precision FMA rate, the ceiling every GEMM is measured against: each
/// thread runs 12 independent chains of 8-lane fused multiply-adds (enough in flight to cover the
/// FMA units' latency), with no loads or stores.
public enum FMAPeak {
    /// FLOPs in one round of the 12 chains.
    public static let flopsPerRound = 12 * 8 * 2

    /// Whether this CPU and build can run it (x86-64 with AVX2 and FMA).
    public static var available: Bool {
        #if arch(x86_64)
        ssf_cpu_vector_level() >= 1
        #else
        false
        #endif
    }

    /// Runs `roundsPerThread` rounds on each of the engine's threads at once; returns the FLOPs done.
    @discardableResult
    public static func run(roundsPerThread: Int) -> Double {
        let threads = Threading.threads
        Threading.parallelFor(threads) { range in
            for _ in range { _ = ssf_fma_peak(roundsPerThread) }
        }
        return Double(threads) * Double(roundsPerThread) * Double(flopsPerRound)
    }
}
