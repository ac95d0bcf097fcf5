// The sgemm rate a model's FLOPs are measured against: raw BLAS at ViT-B/16's four projection shapes.
import SSFEngine

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

    /// FLOPs of one pass over all four shapes (multiply and add counted apart).
    var flops: Double { products.reduce(0) { $0 + $1.flops } }

    /// One sgemm at each shape.
    mutating func runAll() { for i in products.indices { products[i].run() } }
}
