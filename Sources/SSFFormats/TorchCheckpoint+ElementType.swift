// Element types of stored tensor data (torch storages, .npy arrays, safetensors buffers) and
// their conversion to Float32, including materialising a strided view (offset, shape, element
// strides) as a contiguous tensor. Shared by the PyTorch, NumPy and safetensors readers; all
// data is little-endian.
import SSFEngine

/// The element type of tensor data in a checkpoint file.
enum StoredElementType {
    case float64, float32, float16, bfloat16, int64, int32, int16, int8, uint64, uint32, uint16, uint8, bool

    /// The largest tensor the readers materialise, in elements (a guard against absurd shapes,
    /// e.g. a stride-0 view of a tiny storage claiming billions of elements).
    static let maxElements = Int(Int32.max)

    /// Bytes per element.
    var byteSize: Int {
        switch self {
        case .float64, .int64, .uint64: 8
        case .float32, .int32, .uint32: 4
        case .float16, .bfloat16, .int16, .uint16: 2
        case .int8, .uint8, .bool: 1
        }
    }

    /// Converts `count` elements, the first at `source` (any alignment) and each `stride`
    /// elements after the previous one, into `out`.
    func convert(_ source: UnsafeRawPointer, count: Int, stride: Int, into out: UnsafeMutablePointer<Float>) {
        let step = stride * byteSize
        func map<T: FixedWidthInteger>(_ type: T.Type, _ transform: (T) -> Float) {
            for i in 0..<count {
                out[i] = transform(T(littleEndian: source.loadUnaligned(fromByteOffset: i * step, as: T.self)))
            }
        }
        switch self {
        case .float32 where stride == 1:
            UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: count * 4)
        case .float32: map(UInt32.self) { Float(bitPattern: $0) }
        case .float64: map(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .float16: map(UInt16.self, SafeTensors.float(fromHalf:))
        case .bfloat16: map(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        case .int64: map(Int64.self) { Float($0) }
        case .int32: map(Int32.self) { Float($0) }
        case .int16: map(Int16.self) { Float($0) }
        case .int8: map(Int8.self) { Float($0) }
        case .uint64: map(UInt64.self) { Float($0) }
        case .uint32: map(UInt32.self) { Float($0) }
        case .uint16: map(UInt16.self) { Float($0) }
        case .uint8: map(UInt8.self) { Float($0) }
        case .bool: map(UInt8.self) { $0 == 0 ? 0 : 1 }
        }
    }

    /// Materialises the view of `shape` whose element `[i₀, i₁, …]` is element
    /// `offset + Σ iₖ·strides[k]` of `data`, as a contiguous Float32 tensor. The caller has
    /// checked the view against the data with `StridedView.problem(available:)`.
    func gather(from data: UnsafeRawBufferPointer, _ view: StridedView) -> Tensor {
        var tensor = Tensor(uninitializedShape: view.shape)
        let count = tensor.count
        guard count > 0, let base = data.baseAddress else { return tensor }
        let out = tensor.mutablePointer()
        guard let innerExtent = view.shape.last, let innerStride = view.strides.last else {
            convert(base + view.offset * byteSize, count: 1, stride: 1, into: out)
            return tensor
        }
        // An odometer over the outer dimensions; each step converts one innermost row.
        let outer = view.shape.count - 1
        var index = [Int](repeating: 0, count: outer)
        var position = view.offset
        var written = 0
        while written < count {
            convert(base + position * byteSize, count: innerExtent, stride: innerStride, into: out + written)
            written += innerExtent
            var axis = outer - 1
            while axis >= 0 {
                index[axis] += 1
                position += view.strides[axis]
                if index[axis] < view.shape[axis] { break }
                position -= view.strides[axis] * view.shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return tensor
    }
}

/// A view of stored elements: an element offset, a shape and element strides per dimension.
struct StridedView {
    var offset: Int
    var shape: [Int]
    var strides: [Int]

    /// The row-major (C order) view of `shape` (strides wrap on overflow; such a
    /// shape fails `elementCount`).
    static func contiguous(_ shape: [Int]) -> StridedView {
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in shape.indices.dropLast().reversed() { strides[axis] = strides[axis + 1] &* max(shape[axis + 1], 1) }
        return StridedView(offset: 0, shape: shape, strides: strides)
    }

    /// The column-major (Fortran order) view of `shape`.
    static func columnMajor(_ shape: [Int]) -> StridedView {
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in shape.indices.dropFirst() { strides[axis] = strides[axis - 1] &* max(shape[axis - 1], 1) }
        return StridedView(offset: 0, shape: shape, strides: strides)
    }

    /// Why the view cannot be read from `available` stored elements, or nil when it can.
    func problem(available: Int) -> String? {
        guard let extent else {
            return "size \(shape), stride \(strides) and offset \(offset) are negative, mismatched or overflow"
        }
        guard let count = elementCount else {
            return "size \(shape) has more than \(StoredElementType.maxElements) elements"
        }
        // Stride-0 views (expanded tensors) may repeat elements, but not absurdly often.
        guard count <= max(available, 1 << 24) else {
            return "size \(shape) has \(count) elements, implausibly many for a storage of \(available)"
        }
        guard extent <= available else {
            return "size \(shape), stride \(strides) and offset \(offset) reach element \(extent - 1) but the storage holds only \(available) elements"
        }
        return nil
    }

    /// Number of elements, or nil when it overflows or exceeds `StoredElementType.maxElements`.
    var elementCount: Int? {
        var count = 1
        for dim in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= StoredElementType.maxElements else { return nil }
            count = product
        }
        return count
    }

    /// The number of stored elements the view reaches into: one past its last element (0 for an
    /// empty view). Nil when a dimension, stride or the offset is negative or the sum overflows.
    var extent: Int? {
        guard offset >= 0, shape.count == strides.count,
              shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else { return nil }
        if shape.contains(0) { return 0 }
        var last = offset
        for (dim, stride) in zip(shape, strides) {
            let (step, overflow) = (dim - 1).multipliedReportingOverflow(by: stride)
            guard !overflow else { return nil }
            let (sum, overflow2) = last.addingReportingOverflow(step)
            guard !overflow2 else { return nil }
            last = sum
        }
        return last == Int.max ? nil : last + 1
    }
}
