// The globals a tensor checkpoint pickle may name, and what a call to each one builds. This is
// the whole allowlist: any other global (os.system, builtins.eval, a model class, ...) stops
// the unpickler with an error. A "call" never runs anything; it builds a value in the heap.

/// An allowed global and its role.
struct PickleGlobal {
    /// `module.name`, as in the pickle.
    let name: String
    let role: Role

    enum Role {
        /// `collections.OrderedDict`: calling it with no arguments makes an empty dict.
        case orderedDict
        /// `torch._utils._rebuild_tensor`, `_rebuild_tensor_v2` or `_rebuild_tensor_v3`.
        case rebuildTensor(version: Int)
        /// `torch._utils._rebuild_parameter(_with_state)`: yields its first argument, a tensor.
        case rebuildParameter
        /// A storage class such as `torch.FloatStorage`, named in persistent ids.
        case storageType(StoredElementType)
        /// A dtype such as `torch.float32`, an argument of `_rebuild_tensor_v3`.
        case dtype(StoredElementType)
        /// `_codecs.encode(text, "latin1")`: how protocol 2 writes `bytes`.
        case encodeBytes
        /// A class whose instances carry no tensors (NumPy scalars and dtypes, training
        /// arguments); calling or instantiating it gives an inert placeholder.
        case inert
    }

    private static let elementTypes: [String: StoredElementType] = [
        "float64": .float64, "double": .float64, "float32": .float32, "float": .float32,
        "float16": .float16, "half": .float16, "bfloat16": .bfloat16,
        "int64": .int64, "long": .int64, "int32": .int32, "int": .int32, "int16": .int16, "short": .int16,
        "int8": .int8, "uint8": .uint8, "bool": .bool,
    ]

    private static let storageTypes: [String: StoredElementType] = [
        "DoubleStorage": .float64, "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .bool, "UntypedStorage": .uint8,
    ]

    private static let fixed: [String: Role] = [
        "collections.OrderedDict": .orderedDict,
        "torch._utils._rebuild_tensor": .rebuildTensor(version: 1),
        "torch._utils._rebuild_tensor_v2": .rebuildTensor(version: 2),
        "torch._utils._rebuild_tensor_v3": .rebuildTensor(version: 3),
        "torch._utils._rebuild_parameter": .rebuildParameter,
        "torch._utils._rebuild_parameter_with_state": .rebuildParameter,
        "torch.storage.UntypedStorage": .storageType(.uint8),
        "_codecs.encode": .encodeBytes,
        "numpy.core.multiarray.scalar": .inert,
        "numpy._core.multiarray.scalar": .inert,
        "numpy.dtype": .inert,
        "argparse.Namespace": .inert,
    ]

    /// The global `module.name`, or an error message when it is not allowed.
    static func resolve(module: String, name: String) -> Result<PickleGlobal, PickleProblem> {
        let full = "\(module).\(name)"
        if let role = fixed[full] { return .success(PickleGlobal(name: full, role: role)) }
        if module == "torch", let type = storageTypes[name] { return .success(PickleGlobal(name: full, role: .storageType(type))) }
        if module == "torch", let type = elementTypes[name] { return .success(PickleGlobal(name: full, role: .dtype(type))) }
        let shown = full.count > 80 ? full.prefix(80) + "…" : Substring(full)
        if module == "torch" || module.hasPrefix("torch.") {
            return .failure(PickleProblem("uses global \(shown), which this reader does not support (only dense float, integer and bool tensors)"))
        }
        return .failure(PickleProblem("uses global \(shown), which a tensor checkpoint never needs; nothing was loaded or run"))
    }
}

/// What went wrong while unpickling, without the file and position (added by the unpickler).
struct PickleProblem: Error {
    let text: String
    init(_ text: String) { self.text = text }
}

extension PickleHeap {
    /// REDUCE: the value `callable(*arguments)` stands for.
    mutating func call(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case .global(let global) = callable else { throw PickleProblem("calls a \(callable.kind), which is not an allowed global") }
        guard let args = sequence(arguments), case .tuple = arguments else {
            throw PickleProblem("calls \(global.name) with a \(arguments.kind) of arguments instead of a tuple")
        }
        switch global.role {
        case .orderedDict:
            guard args.isEmpty else { throw PickleProblem("calls collections.OrderedDict with arguments") }
            return newDict()
        case .rebuildTensor(let version):
            return try rebuildTensor(version: version, args)
        case .rebuildParameter:
            guard (3...4).contains(args.count), case .tensor = args[0] else {
                throw PickleProblem("calls \(global.name) without a tensor and its flags")
            }
            return args[0]
        case .encodeBytes:
            guard args.count == 2, case .string(let text) = args[0], case .string(let encoding) = args[1],
                  encoding == "latin1" || encoding == "latin-1" else {
                throw PickleProblem("calls _codecs.encode with arguments other than a string and \"latin1\"")
            }
            var bytes: [UInt8] = []
            for scalar in text.unicodeScalars {
                guard scalar.value < 256 else { throw PickleProblem("calls _codecs.encode on text that is not latin-1") }
                bytes.append(UInt8(scalar.value))
            }
            return .bytes(bytes)
        case .inert:
            return .inert(global.name)
        case .storageType, .dtype:
            throw PickleProblem("calls \(global.name), which a checkpoint only names")
        }
    }

    /// NEWOBJ: `cls.__new__(cls, *arguments)`.
    mutating func instantiate(_ cls: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case .global(let global) = cls else { throw PickleProblem("instantiates a \(cls.kind), which is not an allowed class") }
        switch global.role {
        case .inert: return .inert(global.name)
        case .orderedDict: return newDict()
        default: throw PickleProblem("instantiates \(global.name), which is not a class")
        }
    }

    /// BUILD: sets an object's state. The state of dicts (an OrderedDict's `_metadata`) and of
    /// inert objects is dropped.
    func build(_ object: PickleValue) throws {
        switch object {
        case .dict, .inert: return
        default: throw PickleProblem("sets the state of a \(object.kind), which a tensor checkpoint never does")
        }
    }

    /// BINPERSID: the storage that the persistent id `("storage", type, key, location, count[, view])`
    /// names. Legacy files add `view`: None or `(view_key, offset, count)`.
    mutating func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard let fields = sequence(id), fields.count == 5 || fields.count == 6,
              case .string("storage") = fields[0] else {
            throw PickleProblem("has a persistent id that is not a storage reference")
        }
        guard case .global(let global) = fields[1], case .storageType(let type) = global.role else {
            throw PickleProblem("has a storage reference whose type is a \(fields[1].kind), not a storage class")
        }
        guard case .string(let key) = fields[2], case .int(let count) = fields[4], count >= 0 else {
            throw PickleProblem("has a storage reference without a string key and an element count")
        }
        var viewOffset = 0
        var viewCount = count
        if fields.count == 6, let view = sequence(fields[5]) {
            guard view.count == 3, case .int(let offset) = view[1], case .int(let length) = view[2],
                  offset >= 0, length >= 0, offset <= count, length <= count - offset else {
                throw PickleProblem("has a storage view of \(key) that lies outside its \(count) elements")
            }
            (viewOffset, viewCount) = (offset, length)
        }
        return storage(TorchStorageReference(key: key, elementType: type, count: count, viewOffset: viewOffset, viewCount: viewCount))
    }

    /// `_rebuild_tensor(storage, offset, size, stride)`, `_v2(…, requires_grad, hooks[, metadata])`
    /// or `_v3(…, requires_grad, hooks, dtype[, metadata])`.
    private mutating func rebuildTensor(version: Int, _ args: [PickleValue]) throws -> PickleValue {
        let counts = [1: 4...4, 2: 6...7, 3: 7...8][version]!
        guard counts.contains(args.count) else {
            throw PickleProblem("calls _rebuild_tensor with \(args.count) arguments instead of \(counts.lowerBound)")
        }
        guard case .storage(let storageIndex) = args[0] else {
            throw PickleProblem("rebuilds a tensor from a \(args[0].kind) instead of a storage")
        }
        guard case .int(let offset) = args[1], let shape = integers(args[2]), let strides = integers(args[3]) else {
            throw PickleProblem("rebuilds a tensor without an integer offset, size and stride")
        }
        var elementType = storages[storageIndex].elementType
        if version == 3 {
            guard case .global(let global) = args[6], case .dtype(let type) = global.role else {
                throw PickleProblem("rebuilds a tensor with a dtype that is a \(args[6].kind)")
            }
            elementType = type
        }
        if let metadata = args.dropFirst(version == 3 ? 7 : 6).first, case .dict(let index) = metadata, !dicts[index].isEmpty {
            throw PickleProblem("rebuilds a tensor with conjugate or negative-view metadata, which is not supported")
        }
        return tensor(TorchTensorReference(storage: storageIndex, elementType: elementType,
                                           view: StridedView(offset: offset, shape: shape, strides: strides)))
    }
}
