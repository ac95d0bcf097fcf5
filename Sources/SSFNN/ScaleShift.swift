// The SSF parameters of one site: a per-channel scale γ and shift β applied after an operation,
// created with the rule that folds them away at export.
import Foundation
import SSFEngine

/// Where an SSF site's vectors go when the tuned model is folded back into the plain architecture.
public enum FoldTarget: Sendable, Equatable, CustomStringConvertible {
    /// The site scales the output of this child of the hosting module (a Linear, a conv, or a
    /// norm's affine): `W' = diag(γ)·W`, `b' = γ ⊙ b + β` along the weight's first axis.
    case module(String)
    /// No op precedes the site; the merged model keeps γ and β as two C-vectors. The reason says why.
    case unfoldable(reason: String)

    public var description: String {
        switch self {
        case .module(let name): return "folds into \(name)"
        case .unfoldable(let reason): return "kept as two vectors: \(reason)"
        }
    }
}

/// A pair of SSF vectors applied as `x ⊙ γ + β` along the channel axis.
///
/// In a state dictionary the pair belongs to the module that hosts the site, named
/// `ssf_scale_K` / `ssf_shift_K` with K counting that module's sites from 1, as in the
/// reference implementation.
public final class ScaleShift {
    public let scale: Parameter
    public let shift: Parameter
    public let axis: ChannelAxis
    /// What the site folds into at export; every site is created with one.
    public let foldTarget: FoldTarget

    /// γ ~ N(1, 0.02²) and β ~ N(0, 0.02²), the reference initialisation.
    public init(channels: Int, axis: ChannelAxis = .last, foldsInto foldTarget: FoldTarget, using rng: inout RandomGenerator) {
        scale = Parameter(Tensor.randomNormal([channels], mean: 1, std: 0.02, using: &rng))
        shift = Parameter(Tensor.randomNormal([channels], mean: 0, std: 0.02, using: &rng))
        self.axis = axis
        self.foldTarget = foldTarget
    }

    /// A site that scales the output of the hosting module's child `name`.
    public convenience init(channels: Int, axis: ChannelAxis = .last, after name: String, using rng: inout RandomGenerator) {
        self.init(channels: channels, axis: axis, foldsInto: .module(name), using: &rng)
    }

    public var channels: Int { scale.value.count }

    /// The two state-dictionary entries for site number `k` of the hosting module.
    public func namedParameters(site k: Int) -> [(String, Parameter)] {
        [("ssf_scale_\(k)", scale), ("ssf_shift_\(k)", shift)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let (s, h) = SSFTaskVectors.current?.vectors(for: self) { return scaleShiftPerSample(x, scale: s, shift: h, axis: axis) }
        return scaleShift(x, scale: scale.tensor, shift: shift.tensor, axis: axis)
    }
}

private let taskVectorsKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// Per-sample SSF vectors for a batch that mixes tasks over one frozen backbone: for each site,
/// a `[N, C]` scale and shift (row n for sample n). While `applying` runs, every site it holds
/// uses them instead of its own vectors; sites it does not hold keep their own.
public final class SSFTaskVectors {
    private var bySite: [ObjectIdentifier: (site: ScaleShift, scale: Tensor, shift: Tensor)] = [:]
    public init() {}

    /// Sets site `site`'s per-sample vectors (`[N, site.channels]` each).
    public func set(_ site: ScaleShift, scale: Tensor, shift: Tensor) {
        precondition(scale.rank == 2 && scale.shape == shift.shape && scale.shape[1] == site.channels,
                     "SSFTaskVectors: vectors \(scale.shape)/\(shift.shape) for a site of \(site.channels) channels")
        bySite[ObjectIdentifier(site)] = (site, scale, shift)
    }

    /// The per-sample vectors of `site`, nil when not set.
    public func vectors(for site: ScaleShift) -> (Tensor, Tensor)? {
        bySite[ObjectIdentifier(site)].map { ($0.scale, $0.shift) }
    }

    public var siteCount: Int { bySite.count }

    /// The vectors in effect on this thread, if any.
    public static var current: SSFTaskVectors? {
        guard let raw = pthread_getspecific(taskVectorsKey) else { return nil }
        return Unmanaged<SSFTaskVectors>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Runs `body` (a forward pass) with these vectors in effect on the current thread.
    public func applying<R>(_ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(taskVectorsKey)
        pthread_setspecific(taskVectorsKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(taskVectorsKey, previous) }
        return try withExtendedLifetime(self) { try body() }
    }
}

/// A module that hosts SSF sites. Site K (`ssf_scale_K` / `ssf_shift_K`) is `ssfSites[K - 1]`;
/// sites that are not enabled are nil and keep the others' numbers.
public protocol SSFSiteHost: Module {
    var ssfSites: [ScaleShift?] { get }
}

extension SSFSiteHost {
    /// The state-dictionary entries of the enabled sites, for `localParameters`.
    public var ssfParameters: [(String, Parameter)] {
        ssfSites.enumerated().flatMap { i, site in site?.namedParameters(site: i + 1) ?? [] }
    }
}

/// One enabled SSF site of a model, found by walking its modules.
public struct DeclaredSSFSite {
    /// Dotted path of the hosting module ("" for the root).
    public let host: String
    /// K of `ssf_scale_K`.
    public let number: Int
    public let site: ScaleShift

    private func key(_ name: String) -> String { (host.isEmpty ? "" : host + ".") + name }
    public var scaleKey: String { key("ssf_scale_\(number)") }
    public var shiftKey: String { key("ssf_shift_\(number)") }
    /// Dotted path of the module the site folds into, nil for an unfoldable site.
    public var targetPath: String? {
        if case .module(let name) = site.foldTarget { return key(name) }
        return nil
    }
}

extension Module {
    /// Every enabled SSF site of the tree, in module order.
    public func declaredSSFSites() -> [DeclaredSSFSite] {
        namedModules().flatMap { path, module -> [DeclaredSSFSite] in
            guard let host = module as? SSFSiteHost else { return [] }
            return host.ssfSites.enumerated().compactMap { i, site in
                site.map { DeclaredSSFSite(host: path, number: i + 1, site: $0) }
            }
        }
    }
}

/// Applies an optional SSF site: the identity when the site is not enabled.
@inline(__always)
public func applySSF(_ site: ScaleShift?, _ x: Tensor) -> Tensor {
    site.map { $0(x) } ?? x
}

extension Linear {
    /// This layer followed by an optional SSF site. Outside training (no tape tracking the inputs),
    /// the bias and the site's scale and shift (its own, or a mixed batch's per-sample vectors)
    /// are applied in one pass after the matrix product; values are the same as `site(layer(x))`.
    /// While SSF tuning trains the site over this frozen layer, the site is folded into the product
    /// (`linearFoldedScaleShift`) where the engine's GEMM runs both its products (γ then costs
    /// nothing in either: Swin's and ConvNeXt's first three stages), or where the input has more
    /// than four times as many rows as features: there the passes over the output it saves,
    /// forward and backward, outweigh the two over a folded copy of the weight, which measured no
    /// faster where the output still fits the last-level cache.
    public func callAsFunction(_ x: Tensor, then ssf: ScaleShift?) -> Tensor {
        guard let ssf, ssf.axis == .last, lora == nil else { return applySSF(ssf, self(x)) }
        let (w, b, s, h) = (weight.tensor, bias?.tensor, ssf.scale.tensor, ssf.shift.tensor)
        if let tape = Tape.active(for: x, w, b, s, h) {
            if foldsWhileTraining(ssf, rows: x.count / max(inFeatures, 1), tape: tape) {
                return linearFoldedScaleShift(x, weight: w, bias: b, scale: s, shift: h)
            }
            return applySSF(ssf, self(x))
        }
        let (scale, shift) = SSFTaskVectors.current?.vectors(for: ssf) ?? (s.reshaped([1, ssf.channels]), h.reshaped([1, ssf.channels]))
        return linearScaleShift(x, weight: w, bias: b, scale: scale, shift: shift)
    }

    /// `self(gelu(u), then: ssf)`. Where the site folds while training, the GELU goes into the same
    /// op (`geluLinearFoldedScaleShift`): the gradient through it is applied as the layer's
    /// input-gradient product is stored, instead of in a pass of its own.
    public func afterGELU(_ u: consuming Tensor, then ssf: ScaleShift?) -> Tensor {
        if let ssf, ssf.axis == .last, lora == nil, let tape = Tape.active(for: u, weight.tensor, bias?.tensor, ssf.scale.tensor, ssf.shift.tensor),
           foldsWhileTraining(ssf, rows: u.count / max(inFeatures, 1), tape: tape) {
            return geluLinearFoldedScaleShift(u, weight: weight.tensor, bias: bias?.tensor, scale: ssf.scale.tensor, shift: ssf.shift.tensor)
        }
        // Consumed, so that outside training the GELU can overwrite a temporary input in place.
        return self(gelu(consume u), then: ssf)
    }

    /// Whether training `ssf` over this layer folds the site into the product: the layer frozen,
    /// one task, every |γ| usable, and the engine's GEMM running both products or enough rows.
    private func foldsWhileTraining(_ ssf: ScaleShift, rows: Int, tape: Tape) -> Bool {
        let (w, b) = (weight.tensor, bias?.tensor)
        guard SSFTaskVectors.current == nil, !tape.tracks(w), !(b.map(tape.tracks) ?? false) else { return false }
        // The forward's product is rows×in → out, the input gradient's rows×out → in.
        let fused = BLAS.ownKernelApplies(transposeA: false, n: outFeatures, k: inFeatures)
            && BLAS.ownKernelApplies(transposeA: false, n: inFeatures, k: outFeatures)
        return (fused || rows > 4 * inFeatures) && foldsScaleShift(ssf.scale.tensor)
    }
}

extension LayerNorm {
    /// This normalisation followed by an optional SSF site, fused into one op when the site is
    /// enabled (same values; the backward keeps one activation instead of two).
    public func callAsFunction(_ x: Tensor, then ssf: ScaleShift?) -> Tensor {
        guard let ssf, ssf.axis == .last else { return applySSF(ssf, self(x)) }
        if let (s, h) = SSFTaskVectors.current?.vectors(for: ssf) {
            return layerNormScaleShiftPerSample(x, weight: weight.tensor, bias: bias.tensor, eps: eps, scale: s, shift: h)
        }
        return layerNormScaleShift(x, weight: weight.tensor, bias: bias.tensor, eps: eps,
                                   scale: ssf.scale.tensor, shift: ssf.shift.tensor)
    }
}
