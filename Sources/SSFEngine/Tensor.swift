// The Float32 n-dimensional tensor: contiguous row-major storage with copy-on-write value semantics.

/// A contiguous, row-major Float32 tensor with value semantics.
///
/// Copies share storage until one of them is mutated. A tensor may also carry a slot on the
/// active `Tape`, which makes operations on it record their backward pass.
public struct Tensor: @unchecked Sendable {
    /// Extent of each dimension; `[]` is a scalar.
    public private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage
    /// Slot on the tape identified by `tapeID`; `-1` when not tracked.
    @usableFromInline var slot: Int = -1
    @usableFromInline var tapeID: Int = 0

    /// Wraps existing storage; `storage.count` must equal the product of `shape`.
    public init(shape: [Int], storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(Tensor.elementCount(shape) == storage.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor with uninitialised contents (for kernels that write every element).
    public init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: Tensor.elementCount(shape)))
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, storage: TensorStorage(count: Tensor.elementCount(shape), repeating: value))
    }

    /// A tensor holding `data` in row-major order.
    public init(shape: [Int], _ data: [Float]) {
        precondition(data.count == Tensor.elementCount(shape), "shape \(shape) needs \(Tensor.elementCount(shape)) values, got \(data.count)")
        let s = TensorStorage(uninitializedCount: data.count)
        data.withUnsafeBufferPointer { if let b = $0.baseAddress { s.pointer.update(from: b, count: data.count) } }
        self.init(shape: shape, storage: s)
    }

    /// A scalar tensor.
    public init(scalar: Float) { self.init(shape: [], [scalar]) }

    /// Product of the extents of `shape`.
    @inlinable public static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Number of elements.
    @inlinable public var count: Int { storage.count }
    /// Number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }
    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a one-element tensor, shape is \(shape)")
        return storage.pointer[0]
    }

    /// Extent of dimension `axis` (negative counts from the end).
    @inlinable public func dim(_ axis: Int) -> Int { shape[normalizedAxis(axis)] }

    /// Resolves a possibly negative axis.
    @inlinable public func normalizedAxis(_ axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < max(rank, 1), "axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// Read-only access to the elements.
    @inlinable public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Mutable access to the elements; copies the storage first if it is shared.
    @inlinable public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Raw pointer for kernels that only read.
    @inlinable public var pointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }

    /// Raw pointer for kernels that write; the storage is made unique first.
    @inlinable public mutating func mutablePointer() -> UnsafeMutablePointer<Float> {
        makeUnique()
        return storage.pointer
    }

    /// Whether no other tensor shares this storage (writing through `mutablePointer` then copies nothing).
    @inlinable public mutating func isUniquelyOwned() -> Bool { isKnownUniquelyReferenced(&storage) }

    /// Ensures no other tensor shares this storage.
    @inlinable public mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            storage = TensorStorage(copying: storage.pointer, count: storage.count)
        }
    }

    /// The same elements with a new shape. One extent may be `-1` (inferred).
    /// Records on the tape so gradients flow back in the original shape.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[hole] = count / known
        }
        precondition(Tensor.elementCount(resolved) == count, "cannot reshape \(shape) to \(newShape)")
        var out = Tensor(shape: resolved, storage: storage)
        if let tape = Tape.active(for: self) {
            let inShape = shape
            out = tape.record(out, inputs: [self]) { g, _ in [g.untracked.reshaped(inShape)] }
        }
        return out
    }

    /// This tensor without its tape slot: operations on it record nothing.
    public var untracked: Tensor {
        var t = self
        t.slot = -1
        t.tapeID = 0
        return t
    }

    /// Whether this tensor is tracked by the currently recording tape.
    public var isTracked: Bool { Tape.current.map { $0.tracks(self) } ?? false }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}
