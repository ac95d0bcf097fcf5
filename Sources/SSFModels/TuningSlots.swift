// The optional slots the parameter-efficient baselines fill: adapters after blocks and VPT prompts.
import SSFEngine
import SSFNN

/// A model whose blocks can carry a bottleneck adapter on their MLP's output (`….adapter.*`).
public protocol AdapterTunable: ImageClassifier {
    /// Gives every block a fresh adapter with `bottleneck` hidden units.
    func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator)
}

/// A model with one global token sequence that can take VPT prompt tokens.
public protocol PromptTunable: ImageClassifier {
    /// Inserts `count` prompt tokens at the input only (`deep == false`) or at every block's input.
    func enablePrompts(count: Int, deep: Bool, dropout: Float, using rng: inout RandomGenerator)
}

extension VisionTransformer: AdapterTunable, PromptTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        for block in blocks.modules { block.adapter = Adapter(dim: config.embedDim, bottleneck: bottleneck, using: &rng) }
    }

    public func enablePrompts(count: Int, deep: Bool, dropout: Float, using rng: inout RandomGenerator) {
        prompts = VisualPrompts(count: count, layers: deep ? config.depth : 1, dim: config.embedDim,
                                patchSize: config.patchSize, dropout: dropout, using: &rng)
    }
}

extension ConvNeXt: AdapterTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        for (stage, dim) in zip(stages.modules, config.dims) {
            for block in stage.blocks.modules { block.adapter = Adapter(dim: dim, bottleneck: bottleneck, using: &rng) }
        }
    }
}

extension ASMLP: AdapterTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        for (i, stage) in layers.modules.enumerated() {
            for block in stage.blocks.modules {
                block.adapter = Adapter(dim: config.dim(stage: i), bottleneck: bottleneck, using: &rng)
            }
        }
    }
}

extension SwinTransformer: AdapterTunable {
    public func enableAdapters(bottleneck: Int, using rng: inout RandomGenerator) {
        for (i, stage) in layers.modules.enumerated() {
            for block in stage.blocks.modules {
                block.adapter = Adapter(dim: config.dim(stage: i), bottleneck: bottleneck, using: &rng)
            }
        }
    }
}
