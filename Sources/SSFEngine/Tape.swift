// Reverse-mode automatic differentiation: a tape of coarse operations, each with a hand-written backward.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

private let tapeKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
private let tapeIDs = Atomic<Int>(1)

/// Records differentiable operations while active, then runs their backward passes.
///
/// Nothing is recorded unless a tape is active on the current thread (`recording`) and at
/// least one input of an operation is tracked (`watch`, `variable(for:_:)`, or the output of
/// a recorded operation). Inference therefore keeps no activations and creates no closures.
/// A backward closure is asked only for the gradients of tracked inputs, so a frozen weight
/// never costs a weight-gradient computation.
public final class Tape {
    /// Computes the gradients of an operation's inputs from the gradient of its output.
    /// `needs[i]` tells whether input `i` is tracked; untracked inputs may be answered with nil.
    public typealias Backward = (_ outputGradient: Tensor, _ needs: [Bool]) -> [Tensor?]

    struct Node {
        let inputs: [Int]
        let output: Int
        let backward: Backward
        /// The op that recorded it, while an op profile runs (its backward is timed under that name).
        let kind: String?
    }

    /// Unique identity of this tape; tracked tensors carry it.
    public let id: Int
    private var nodes: [Node] = []
    private var slotCount = 0
    private var keyedSlots: [ObjectIdentifier: (slot: Int, owner: AnyObject)] = [:]
    private var leafSlots: Set<Int> = []

    public init() { id = tapeIDs.add(1, ordering: .relaxed).newValue }

    /// The tape recording on this thread, if any.
    public static var current: Tape? {
        guard let raw = pthread_getspecific(tapeKey) else { return nil }
        return Unmanaged<Tape>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The current tape when it tracks at least one of `inputs`; nil means "do not record".
    @inlinable public static func active(for inputs: Tensor?...) -> Tape? {
        guard let tape = current else { return nil }
        for t in inputs where t.map(tape.tracks) == true { return tape }
        return nil
    }

    /// Runs `body` with this tape recording on the current thread.
    public func recording<R>(_ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(tapeKey)
        pthread_setspecific(tapeKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(tapeKey, previous) }
        return try withExtendedLifetime(self) { try body() }
    }

    /// Whether `t` is tracked by this tape.
    @inlinable public func tracks(_ t: Tensor) -> Bool { t.slot >= 0 && t.tapeID == id }

    /// Number of recorded operations.
    public var operationCount: Int { nodes.count }

    private func newSlot() -> Int {
        slotCount += 1
        return slotCount - 1
    }

    /// Marks `t` as a leaf whose gradient is kept; returns the tracked tensor.
    public func watch(_ t: Tensor) -> Tensor {
        var out = t.untracked
        out.slot = newSlot()
        out.tapeID = id
        leafSlots.insert(out.slot)
        return out
    }

    /// The tracked leaf for `key` (for example a trainable parameter), created on first use
    /// from `value` and reused afterwards, so every use of the key shares one gradient.
    public func variable(for key: AnyObject, _ value: Tensor) -> Tensor {
        let oid = ObjectIdentifier(key)
        var out = value.untracked
        if let known = keyedSlots[oid] {
            out.slot = known.slot
        } else {
            out.slot = newSlot()
            keyedSlots[oid] = (out.slot, key)
            leafSlots.insert(out.slot)
        }
        out.tapeID = id
        return out
    }

    /// Records an operation whose result is `output`; returns `output` tracked.
    public func record(_ output: Tensor, inputs: [Tensor?], backward: @escaping Backward) -> Tensor {
        var out = output.untracked
        out.slot = newSlot()
        out.tapeID = id
        nodes.append(Node(inputs: inputs.map { t in t.flatMap { tracks($0) ? $0.slot : nil } ?? -1 },
                          output: out.slot, backward: backward, kind: OpProfile.recordingKind))
        return out
    }

    /// Back-propagates from `output` (seeded with ones, or with `seed`) through every recorded
    /// operation and returns the gradients of the leaves. The recorded activations are released.
    public func backward(from output: Tensor, seed: Tensor? = nil) -> Gradients {
        precondition(tracks(output), "backward(from:) needs a tensor computed on this tape")
        var grads = [Tensor?](repeating: nil, count: slotCount)
        grads[output.slot] = seed?.untracked ?? Tensor(shape: output.shape, repeating: 1)
        let previous = pthread_getspecific(tapeKey)
        pthread_setspecific(tapeKey, nil)
        defer { pthread_setspecific(tapeKey, previous) }
        while let node = nodes.popLast() {
            guard let g = grads[node.output] else { continue }
            if !leafSlots.contains(node.output) { grads[node.output] = nil }
            let needs = node.inputs.map { $0 >= 0 }
            let inputGrads = node.kind.map { kind in OpProfile.timed(kind + " backward") { node.backward(g, needs) } } ?? node.backward(g, needs)
            precondition(inputGrads.count == node.inputs.count, "backward returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
            for (slot, ig) in zip(node.inputs, inputGrads) where slot >= 0 {
                guard let ig else { continue }
                if var existing = grads[slot] {
                    grads[slot] = nil
                    precondition(existing.shape == ig.shape, "gradient shape \(ig.shape) does not match \(existing.shape)")
                    existing.addInPlace(ig)
                    grads[slot] = existing
                } else {
                    grads[slot] = ig.untracked
                }
            }
        }
        var kept: [Int: Tensor] = [:]
        for slot in leafSlots { if let g = grads[slot] { kept[slot] = g } }
        var byKey: [ObjectIdentifier: Int] = [:]
        for (k, v) in keyedSlots { byKey[k] = v.slot }
        return Gradients(tapeID: id, bySlot: kept, byKey: byKey)
    }
}

/// Gradients of the leaves of a tape after `Tape.backward(from:)`.
public struct Gradients {
    let tapeID: Int
    let bySlot: [Int: Tensor]
    let byKey: [ObjectIdentifier: Int]

    /// Gradient of a watched tensor; nil when no gradient reached it.
    public subscript(_ t: Tensor) -> Tensor? {
        guard t.tapeID == tapeID, t.slot >= 0 else { return nil }
        return bySlot[t.slot]
    }

    /// Gradient of the leaf registered with `variable(for:_:)` under `key`.
    public subscript(key key: AnyObject) -> Tensor? {
        byKey[ObjectIdentifier(key)].flatMap { bySlot[$0] }
    }
}
