// A bottleneck adapter (Houlsby et al. 2019, placed as the VPT paper's Adapter baseline that SSF compares
// with: on a block's MLP output, before the residual sum): down-projection → GELU → up-projection,
// added to its input.
import SSFEngine

/// `x + up(gelu(down(x)))` over the last axis; `up` starts at zero, so a fresh adapter is the identity.
///
/// State-dictionary names: `down.weight` `[r, D]`, `down.bias`, `up.weight` `[D, r]`, `up.bias`.
public final class Adapter: Module {
    public let down: Linear, up: Linear

    /// `down` gets PyTorch's default Linear initialisation; `up` is zero (weight and bias).
    public init(dim: Int, bottleneck: Int, using rng: inout RandomGenerator) {
        precondition(bottleneck > 0, "adapter bottleneck must be positive")
        down = Linear(dim, bottleneck, using: &rng)
        up = Linear(weight: .zeros([dim, bottleneck]), bias: .zeros([dim]))
    }

    public var children: [(String, Module)] { [("down", down), ("up", up)] }

    public func callAsFunction(_ x: Tensor) -> Tensor { x + up(gelu(down(x))) }
}
