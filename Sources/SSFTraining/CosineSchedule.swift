// timm's CosineLRScheduler (one cycle, no decay, k = 1) with linear warmup and cooldown at the floor.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The learning rate at update `t` of a cosine schedule, as timm's `CosineLRScheduler._get_lr`.
///
/// For `t < warmupT`: `warmupLR + t·(baseLR − warmupLR)/warmupT`. Then
/// `minLR + ½(baseLR − minLR)(1 + cos(π·t/tInitial))` while `t < tInitial`, and `minLR` after
/// (the cooldown). Times are in updates when stepping per update (`tInitial = epochs × updates
/// per epoch`, timm with `t_in_epochs=False`) or in epochs.
public struct CosineSchedule: Sendable, Equatable {
    public var baseLR: Double
    public var tInitial: Double
    public var warmupT: Double
    public var warmupLR: Double
    public var minLR: Double

    public init(baseLR: Double, tInitial: Double, warmupT: Double = 0, warmupLR: Double = 0, minLR: Double = 0) {
        self.baseLR = baseLR; self.tInitial = tInitial; self.warmupT = warmupT; self.warmupLR = warmupLR; self.minLR = minLR
    }

    /// A per-update schedule for `epochs` cosine epochs with `warmupEpochs` of warmup.
    public init(baseLR: Double, epochs: Int, warmupEpochs: Int, updatesPerEpoch: Int, warmupLR: Double, minLR: Double) {
        self.init(baseLR: baseLR, tInitial: Double(epochs * updatesPerEpoch), warmupT: Double(warmupEpochs * updatesPerEpoch),
                  warmupLR: warmupLR, minLR: minLR)
    }

    /// The learning rate at time `t`.
    public func learningRate(at t: Double) -> Double {
        if t < warmupT { return warmupLR + t * (baseLR - warmupLR) / warmupT }
        guard t < tInitial else { return minLR }
        return minLR + 0.5 * (baseLR - minLR) * (1 + cos(Double.pi * t / tInitial))
    }
}
