// The sgemm rate a model's FLOPs are measured against: raw BLAS at ViT-B/16's four projection shapes.
import SSFEngine
import SSFNN

/// Inputs for one sgemm per ViT-B/16 projection shape at batch 8 (1576 tokens): qkv, attention
/// output, MLP up and MLP down, each `tokens×k · (n×k)ᵀ`.
struct SgemmRoof {
    static let tokens = 8 * 197
    static let shapes = [(768, 2304), (768, 768), (768, 3072), (3072, 768)]

    struct Product {
        let k: Int, n: Int
        let x: Tensor, w: Tensor
        var c: Tensor
        var flops: Double { 2.0 * Double(SgemmRoof.tokens * k * n) }

        mutating func run() {
            BLAS.sgemm(transposeA: false, transposeB: true, m: SgemmRoof.tokens, n: n, k: k,
                       a: x.pointer, lda: k, b: w.pointer, ldb: k, c: c.mutablePointer(), ldc: n)
        }
    }

    var products: [Product]

    init(using rng: inout RandomGenerator) {
        products = Self.shapes.map { k, n in
            Product(k: k, n: n, x: Tensor.randomNormal([Self.tokens, k], using: &rng),
                    w: Tensor.randomNormal([n, k], std: 0.02, using: &rng), c: Tensor.zeros([Self.tokens, n]))
        }
    }

    /// Bytes of its operands (resident for the whole benchmark).
    var bytes: Int { products.reduce(0) { $0 + ($1.x.count + $1.w.count + $1.c.count) * MemoryLayout<Float>.size } }

    /// FLOPs of one pass over all four shapes (multiply and add counted apart).
    var flops: Double { products.reduce(0) { $0 + $1.flops } }

    /// One sgemm at each shape.
    mutating func runAll() { for i in products.indices { products[i].run() } }
}

/// A model's own top-level GEMMs (as `GemmRecorder` saw one step issue them) replayed as raw BLAS
/// calls: the same shapes, transposes, leading dimensions and scalars, in the same order. An
/// operand that was one of the model's parameters is read from that parameter, so the weights come
/// from memory as cold as in the model's step; the others (activations, gradients) share one scratch
/// buffer per operand role. The rate of this replay is what the step's matrix products reach as
/// plain BLAS, with nothing between them.
struct GemmReplay {
    /// Where an operand is read from: a parameter (its index and the offset into its value), or
    /// the scratch buffer of its role.
    enum Operand { case parameter(Int, Int), scratch }

    let calls: [(call: GemmCall, a: Operand, b: Operand)]
    /// The parameters themselves, not their tensors: holding a tensor would make the optimiser's
    /// in-place update copy it (and the replay read the stale copy).
    private let parameters: [Parameter]
    private let scratch: (a: Tensor, b: Tensor, c: Tensor)
    private let output: UnsafeMutablePointer<Float>
    /// Operands read from the model's parameters, of all A and B operands.
    let parameterOperands: Int

    init(_ recorded: [GemmCall], parameters: [Parameter]) {
        self.parameters = parameters
        let ranges = parameters.map { p in
            let start = UInt(bitPattern: p.value.pointer)
            return start..<(start + UInt(p.value.count * MemoryLayout<Float>.size))
        }
        func owner(_ address: UInt, _ extent: Int) -> Operand {
            let end = address + UInt(extent * MemoryLayout<Float>.size)
            guard let i = ranges.firstIndex(where: { $0.lowerBound <= address && end <= $0.upperBound }) else { return .scratch }
            return .parameter(i, Int(address - ranges[i].lowerBound) / MemoryLayout<Float>.size)
        }
        func isScratch(_ o: Operand) -> Bool { if case .scratch = o { return true } else { return false } }
        let owned = recorded.map { (owner($0.a, $0.aExtent), owner($0.b, $0.bExtent)) }
        func filled(_ count: Int, _ value: Float) -> Tensor { Tensor(shape: [max(count, 1)], repeating: value) }
        var c = filled(recorded.map(\.cExtent).max() ?? 1, 0)
        output = c.mutablePointer()
        scratch = (filled(zip(recorded, owned).filter { isScratch($0.1.0) }.map(\.0.aExtent).max() ?? 1, 0.01),
                   filled(zip(recorded, owned).filter { isScratch($0.1.1) }.map(\.0.bExtent).max() ?? 1, 0.01), c)
        calls = zip(recorded, owned).map { call, own in (call, own.0, own.1) }
        parameterOperands = owned.reduce(0) { $0 + (isScratch($1.0) ? 0 : 1) + (isScratch($1.1) ? 0 : 1) }
    }

    var flops: Double { calls.reduce(0) { $0 + $1.call.flops } }
    /// Bytes of its scratch operands (resident for the whole benchmark; the weights are the model's).
    var bytes: Int { (scratch.a.count + scratch.b.count + scratch.c.count) * MemoryLayout<Float>.size }

    private func pointer(_ operand: Operand, scratch: Tensor) -> UnsafePointer<Float> {
        switch operand {
        case let .parameter(i, offset): parameters[i].value.pointer + offset
        case .scratch: scratch.pointer
        }
    }

    /// Every recorded call once, in order, writing into the shared scratch output.
    func run() {
        let c = output
        for (call, a, b) in calls {
            BLAS.sgemm(transposeA: call.transposeA, transposeB: call.transposeB, m: call.m, n: call.n, k: call.k, alpha: call.alpha,
                       a: pointer(a, scratch: scratch.a), lda: call.lda, b: pointer(b, scratch: scratch.b), ldb: call.ldb,
                       beta: call.beta, c: c, ldc: call.ldc)
        }
    }
}
