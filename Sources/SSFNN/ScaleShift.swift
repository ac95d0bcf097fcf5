// The SSF parameters of one site: a per-channel scale γ and shift β applied after an operation.
import SSFEngine

/// A pair of SSF vectors applied as `x ⊙ γ + β` along the channel axis.
///
/// In a state dictionary the pair belongs to the module that hosts the site, named
/// `ssf_scale_K` / `ssf_shift_K` with K counting that module's sites from 1, as in the
/// reference implementation.
public final class ScaleShift {
    public let scale: Parameter
    public let shift: Parameter
    public let axis: ChannelAxis

    /// γ ~ N(1, 0.02²) and β ~ N(0, 0.02²), the reference initialisation.
    public init(channels: Int, axis: ChannelAxis = .last, using rng: inout RandomGenerator) {
        scale = Parameter(Tensor.randomNormal([channels], mean: 1, std: 0.02, using: &rng))
        shift = Parameter(Tensor.randomNormal([channels], mean: 0, std: 0.02, using: &rng))
        self.axis = axis
    }

    public var channels: Int { scale.value.count }

    /// The two state-dictionary entries for site number `k` of the hosting module.
    public func namedParameters(site k: Int) -> [(String, Parameter)] {
        [("ssf_scale_\(k)", scale), ("ssf_shift_\(k)", shift)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        scaleShift(x, scale: scale.tensor, shift: shift.tensor, axis: axis)
    }
}

/// Applies an optional SSF site: the identity when the site is not enabled.
@inline(__always)
public func applySSF(_ site: ScaleShift?, _ x: Tensor) -> Tensor {
    site.map { $0(x) } ?? x
}

extension LayerNorm {
    /// This normalisation followed by an optional SSF site, fused into one op when the site is
    /// enabled (same values; the backward keeps one activation instead of two).
    public func callAsFunction(_ x: Tensor, then ssf: ScaleShift?) -> Tensor {
        guard let ssf, ssf.axis == .last else { return applySSF(ssf, self(x)) }
        return layerNormScaleShift(x, weight: weight.tensor, bias: bias.tensor, eps: eps,
                                   scale: ssf.scale.tensor, shift: ssf.shift.tensor)
    }
}

/// The state-dictionary entries of a module's SSF sites, numbered from 1 in the given order
/// (sites that are not enabled are skipped without renumbering the others).
public func ssfParameters(_ sites: [ScaleShift?]) -> [(String, Parameter)] {
    sites.enumerated().flatMap { i, site in site?.namedParameters(site: i + 1) ?? [] }
}
