// Layer-by-layer feature similarity between models of one architecture: each model's block outputs
// (and pre-logit features) on the same images become per-minibatch Gram matrices, and minibatch CKA
// (CKA.swift) compares each layer of a model with the same layer of a reference model.
import SSFData
import SSFEngine
import SSFModels

/// A problem comparing two models' features.
public struct SimilarityError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Per-minibatch, per-layer Gram matrices of one model's features.
public struct LayerGrams: Sendable {
    /// `batches[b][l]`: minibatch b's Gram matrix at layer l (the block outputs in forward order, then the pre-logit features).
    public var batches: [[GramMatrix]] = []
    public var layerCount: Int { batches.first?.count ?? 0 }
    public var images: Int { batches.reduce(0) { $0 + ($1.first?.n ?? 0) } }

    public init(batches: [[GramMatrix]] = []) { self.batches = batches }

    /// Runs `model` (in evaluation mode) over every batch of `loader` and keeps each layer's Gram matrix.
    /// Batches of fewer than 4 images are skipped (the unbiased estimator needs 4); `progress` gets the
    /// images done so far.
    public init(model: ImageClassifier, loader: DataLoader, kernel: CKAKernel, progress: ((Int) -> Void)? = nil) throws {
        model.setTraining(false)
        let epoch = loader.epoch(0)
        var done = 0
        while let batch = try epoch.next() {
            let n = batch.labels.count
            guard n >= 4 else { continue }
            var grams: [GramMatrix] = []
            let preLogits = FeatureTaps.observing({ index, features in
                precondition(index == grams.count && features.shape.first == n, "feature tap \(index) of shape \(features.shape) in a batch of \(n)")
                grams.append(GramMatrix(features: features.pointer, n: n, d: features.count / n, kernel: kernel))
            }) { model.headInput(batch.images) }
            grams.append(GramMatrix(features: preLogits.pointer, n: n, d: preLogits.count / n, kernel: kernel))
            if let first = batches.first, first.count != grams.count {
                throw SimilarityError("the model reported \(grams.count) layers in one batch and \(first.count) in another")
            }
            batches.append(grams)
            done += n
            progress?(done)
        }
    }

    /// Minibatch CKA between each layer of these features and the same layer of `reference`'s
    /// (nil where a representation is constant on every minibatch).
    public func cka(with reference: LayerGrams) throws -> [Double?] {
        guard batches.count == reference.batches.count else {
            throw SimilarityError("\(batches.count) minibatches against the reference's \(reference.batches.count): the models did not see the same images")
        }
        guard layerCount == reference.layerCount else {
            throw SimilarityError("\(layerCount) layers against the reference's \(reference.layerCount): the models are not the same architecture")
        }
        return (0..<layerCount).map { layer in
            var cka = MinibatchCKA()
            for (mine, theirs) in zip(batches, reference.batches) {
                guard mine[layer].n == theirs[layer].n else { return nil }
                cka.add(mine[layer], theirs[layer])
            }
            return cka.value
        }
    }

    /// Layer names: "block 1" … "block L", then "pre-logits".
    public var layerNames: [String] {
        guard layerCount > 0 else { return [] }
        return (1..<layerCount).map { "block \($0)" } + ["pre-logits"]
    }
}
