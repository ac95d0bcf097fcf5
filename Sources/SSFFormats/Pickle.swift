// The value tree the restricted unpickler builds from a pickle (a checkpoint's, or a data file's
// such as a CIFAR batch). Nothing in it is ever executed: calls to the few allowed globals
// become plain data (a dict, a tensor reference, a NumPy array, an inert placeholder). Containers live in a heap and are referred to by index,
// so values never nest (freeing a deep structure needs no recursion) and a memoised
// container that is filled later is seen filled through every reference, as in Python.

/// A value read from a pickle.
public enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer too wide for `Int`: its little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// Index into `PickleHeap.tuples`.
    case tuple(Int)
    /// Index into `PickleHeap.lists`.
    case list(Int)
    /// Index into `PickleHeap.dicts`.
    case dict(Int)
    /// One of the allowed globals.
    case global(PickleGlobal)
    /// Index into `PickleHeap.storages`: a storage named by a persistent id.
    case storage(Int)
    /// Index into `PickleHeap.tensors`: a tensor rebuilt from a storage.
    case tensor(Int)
    /// Index into `PickleHeap.arrays`: a NumPy array, filled in by its BUILD.
    case numpyArray(Int)
    /// Index into `PickleHeap.dtypes`: a NumPy dtype.
    case numpyDType(Int)
    /// An object of an allowed class whose contents do not matter here (a NumPy scalar, an
    /// `argparse.Namespace` of training arguments), named by its class.
    case inert(String)

    /// The Python type of the value, for messages.
    public var kind: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .global(let global): global.name
        case .storage: "storage"
        case .tensor: "tensor"
        case .numpyArray: "numpy.ndarray"
        case .numpyDType: "numpy.dtype"
        case .inert(let type): type
        }
    }

    /// The text of a `str`, or of `bytes` read as UTF-8 (a Python 2 `str` read as bytes);
    /// nil for other values.
    public var text: String? {
        switch self {
        case .string(let text): text
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }
}

/// A NumPy array rebuilt from a pickle (`numpy.core.multiarray._reconstruct`, then BUILD with
/// the array's state), its data checked against its shape and dtype.
public struct PickledNumPyArray: Sendable {
    public let shape: [Int]
    /// The dtype's type code, e.g. `u1`, `f4`, `i8`.
    public let dtype: String
    /// `<`, `>`, `|` (not applicable) or `=` (native).
    public let byteOrder: String
    /// Whether `data` is in column-major (Fortran) order.
    public let fortranOrder: Bool
    /// The raw elements: the product of `shape` times the dtype's size in bytes.
    public let data: [UInt8]
}

/// A storage named by a checkpoint's persistent id: its key in the file and its element type;
/// a legacy view covers `viewCount` elements from element `viewOffset` of the key's storage.
struct TorchStorageReference {
    let key: String
    let elementType: StoredElementType
    /// Elements in the whole storage under `key`.
    let count: Int
    let viewOffset: Int
    let viewCount: Int
}

/// A tensor rebuilt by `torch._utils._rebuild_tensor*`: a strided view of a storage. The
/// view's offset and strides count elements of `elementType` from the start of the storage view.
struct TorchTensorReference {
    /// Index into `PickleHeap.storages`.
    let storage: Int
    let elementType: StoredElementType
    let view: StridedView
}

/// The containers, torch objects and NumPy arrays that `PickleValue`s refer to.
public struct PickleHeap {
    var tuples: [[PickleValue]] = []
    var lists: [[PickleValue]] = []
    /// Items in insertion order; a repeated key is appended again and the last one wins.
    var dicts: [[(key: PickleValue, value: PickleValue)]] = []
    var storages: [TorchStorageReference] = []
    var tensors: [TorchTensorReference] = []
    /// NumPy arrays; nil until BUILD gives an array its state.
    var arrays: [PickledNumPyArray?] = []
    /// NumPy dtypes: the type code and the byte order (set by BUILD).
    var dtypes: [(code: String, byteOrder: String)] = []

    /// Stores a container or torch object and returns the value referring to it.
    mutating func tuple(_ items: [PickleValue]) -> PickleValue {
        tuples.append(items)
        return .tuple(tuples.count - 1)
    }

    mutating func newList() -> PickleValue {
        lists.append([])
        return .list(lists.count - 1)
    }

    mutating func newDict() -> PickleValue {
        dicts.append([])
        return .dict(dicts.count - 1)
    }

    mutating func storage(_ reference: TorchStorageReference) -> PickleValue {
        storages.append(reference)
        return .storage(storages.count - 1)
    }

    mutating func tensor(_ reference: TorchTensorReference) -> PickleValue {
        tensors.append(reference)
        return .tensor(tensors.count - 1)
    }

    mutating func newArray() -> PickleValue {
        arrays.append(nil)
        return .numpyArray(arrays.count - 1)
    }

    mutating func dtype(_ code: String) -> PickleValue {
        dtypes.append((code, "="))
        return .numpyDType(dtypes.count - 1)
    }

    /// The items of a tuple or list value.
    public func sequence(_ value: PickleValue) -> [PickleValue]? {
        switch value {
        case .tuple(let index): tuples[index]
        case .list(let index): lists[index]
        default: nil
        }
    }

    /// The integers of a tuple or list of integers (a tensor's size or stride).
    public func integers(_ value: PickleValue) -> [Int]? {
        guard let items = sequence(value) else { return nil }
        var result: [Int] = []
        for item in items {
            guard case .int(let n) = item else { return nil }
            result.append(n)
        }
        return result
    }

    /// The value under string key `key` of a dict value (the last one if repeated); with
    /// `orBytes`, a `bytes` key of the same UTF-8 matches too (Python 2 `str` keys read as bytes).
    public func lookup(_ key: String, in value: PickleValue, orBytes: Bool = false) -> PickleValue? {
        guard case .dict(let index) = value else { return nil }
        return dicts[index].last {
            switch $0.key {
            case .string(key): true
            case .bytes(let bytes): orBytes && bytes.elementsEqual(key.utf8)
            default: false
            }
        }?.value
    }

    /// The NumPy array a value refers to, once BUILD has given it its state.
    public func array(_ value: PickleValue) -> PickledNumPyArray? {
        guard case .numpyArray(let index) = value else { return nil }
        return arrays[index]
    }

    /// The string keys of a dict value, in first-insertion order, for messages.
    func stringKeys(of value: PickleValue) -> [String] {
        guard case .dict(let index) = value else { return [] }
        var seen = Set<String>()
        return dicts[index].compactMap { item in
            guard case .string(let key) = item.key, seen.insert(key).inserted else { return nil }
            return key
        }
    }
}
