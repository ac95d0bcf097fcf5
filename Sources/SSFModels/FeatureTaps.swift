// Feature taps: the output of every residual block, handed to an observer while a forward pass runs.
// The analyses (`ssf analyze similarity`) read intermediate features through them; a forward pass
// without an observer pays one task-local read per block.
import SSFEngine

/// Observes block outputs during forward passes run inside `FeatureTaps.observing(_:_:)`.
///
/// Every architecture reports each block's output in execution order (ViT: `blocks.i`; Swin,
/// ConvNeXt, AS-MLP: each stage's blocks; EfficientNet: every inverted-residual block), so the
/// n-th tap of two models of one architecture is the same layer.
public enum FeatureTaps {
    public typealias Observer = (_ index: Int, _ features: Tensor) -> Void

    final class Session {
        let observe: Observer
        var next = 0
        init(_ observe: @escaping Observer) { self.observe = observe }
    }

    @TaskLocal static var session: Session?

    /// Runs `body`; every block output produced inside it goes to `observe` with its tap index (0, 1, … per call).
    public static func observing<R>(_ observe: @escaping Observer, _ body: () throws -> R) rethrows -> R {
        try $session.withValue(Session(observe)) { try body() }
    }

    /// Reports a block output to the current observer, if any.
    @inline(__always) public static func tap(_ features: Tensor) {
        guard let session else { return }
        session.observe(session.next, features)
        session.next += 1
    }
}
