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

/// A block that can carry a bottleneck adapter on its MLP's output.
protocol AdapterCarrying: AnyObject {
    var adapter: Adapter? { get set }
}

extension ModuleList where Element: AdapterCarrying {
    /// Gives every block a fresh adapter for `dim` channels.
    func enableAdapters(dim: Int, bottleneck: Int, using rng: inout RandomGenerator) {
        for block in modules { block.adapter = Adapter(dim: dim, bottleneck: bottleneck, using: &rng) }
    }
}
