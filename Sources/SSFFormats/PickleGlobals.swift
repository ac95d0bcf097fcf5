// The globals a pickle may name, and what a call to each one builds. Each kind of file has its
// dialect: the whole allowlist for that kind (a tensor checkpoint's torch rebuild functions and
// storage classes; a data pickle's NumPy array reconstruction), and how Python 2 strings read.
// Any other global (os.system, builtins.eval, a model class, ...) stops the unpickler with an
// error. A "call" never runs anything; it builds a value in the heap.

/// An allowed global and its role.
public struct PickleGlobal {
    /// `module.name`, as in the pickle.
    public let name: String
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
        /// `numpy.core.multiarray._reconstruct(numpy.ndarray, shape, typecode)`: an empty array
        /// that BUILD then fills.
        case reconstructArray
        /// `numpy.ndarray`, an argument of `_reconstruct`.
        case arrayClass
        /// `numpy.dtype(code, align, copy)`: a dtype whose byte order BUILD sets.
        case numpyDType
        /// A class whose instances carry no tensors (NumPy scalars and dtypes, training
        /// arguments); calling or instantiating it gives an inert placeholder.
        case inert
    }
}

/// What a pickle may contain, by the kind of file it comes from: the globals it may name and
/// how its Python 2 strings read.
public struct PickleDialect: Sendable {
    /// The kind of file, in messages ("a tensor checkpoint").
    public let fileKind: String
    /// Whether Python 2 `str` (SHORT_BINSTRING, BINSTRING) reads as Latin-1 text, as
    /// `torch.load` reads it, or as bytes, as `pickle.load(encoding="bytes")` does.
    public let legacyStringsAsText: Bool
    /// The allowed globals by `module.name`.
    let globals: [String: PickleGlobal.Role]
    /// Whether torch's storage classes and dtypes (`torch.FloatStorage`, `torch.float32`) are allowed.
    let torchTypes: Bool

    /// PyTorch checkpoints: tensor state dicts and the training state saved next to them.
    public static let tensorCheckpoint = PickleDialect(
        fileKind: "a tensor checkpoint", legacyStringsAsText: true,
        globals: [
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
        ],
        torchTypes: true)

    /// Plain Python data with NumPy arrays: dicts, lists and tuples of `str`, `bytes`, numbers
    /// and arrays, as in CIFAR's python batches. Python 2 strings read as bytes. `fileKind`
    /// names the kind of file in messages ("a CIFAR batch").
    public static func numpyData(fileKind: String) -> PickleDialect {
        PickleDialect(
            fileKind: fileKind, legacyStringsAsText: false,
            globals: [
                "numpy.core.multiarray._reconstruct": .reconstructArray,
                "numpy._core.multiarray._reconstruct": .reconstructArray,
                "numpy.ndarray": .arrayClass,
                "numpy.dtype": .numpyDType,
                "_codecs.encode": .encodeBytes,
            ],
            torchTypes: false)
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

    /// The global `module.name`, or an error message when it is not allowed.
    func resolve(module: String, name: String) -> Result<PickleGlobal, PickleProblem> {
        let full = "\(module).\(name)"
        if let role = globals[full] { return .success(PickleGlobal(name: full, role: role)) }
        if torchTypes, module == "torch", let type = Self.storageTypes[name] { return .success(PickleGlobal(name: full, role: .storageType(type))) }
        if torchTypes, module == "torch", let type = Self.elementTypes[name] { return .success(PickleGlobal(name: full, role: .dtype(type))) }
        let shown = full.count > 80 ? full.prefix(80) + "…" : Substring(full)
        if torchTypes, module == "torch" || module.hasPrefix("torch.") {
            return .failure(PickleProblem("uses global \(shown), which this reader does not support (only dense float, integer and bool tensors)"))
        }
        return .failure(PickleProblem("uses global \(shown), which \(fileKind) never needs; nothing was loaded or run"))
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
        case .reconstructArray:
            guard args.count == 3, case .global(let cls) = args[0], case .arrayClass = cls.role else {
                throw PickleProblem("calls \(global.name) with arguments other than numpy.ndarray, a shape and a type code")
            }
            return newArray()
        case .numpyDType:
            guard (1...3).contains(args.count), let code = args[0].text, (1...16).contains(code.utf8.count) else {
                throw PickleProblem("calls numpy.dtype without a short type code")
            }
            return dtype(code)
        case .storageType, .dtype, .arrayClass:
            throw PickleProblem("calls \(global.name), which a pickle only names")
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
    /// inert objects is dropped; a NumPy dtype takes its byte order and an array its shape,
    /// dtype and data.
    mutating func build(_ object: PickleValue, state: PickleValue) throws {
        switch object {
        case .dict, .inert: return
        case .numpyDType(let index): try buildDType(index, state)
        case .numpyArray(let index): try buildArray(index, state)
        default: throw PickleProblem("sets the state of a \(object.kind), which a pickle of this kind never does")
        }
    }

    /// A dtype's state `(version, byte order, subarray, names, fields, item size, alignment, flags[, metadata])`.
    private mutating func buildDType(_ index: Int, _ state: PickleValue) throws {
        guard case .tuple = state, let fields = sequence(state), fields.count >= 5,
              let order = fields[1].text, ["<", ">", "|", "="].contains(order) else {
            throw PickleProblem("sets a numpy.dtype's state without a byte order")
        }
        for field in fields[2...4] {
            guard case .none = field else { throw PickleProblem("has a structured or subarray numpy.dtype, which is not supported") }
        }
        dtypes[index].byteOrder = order
    }

    /// An array's state `(version, shape, dtype, is Fortran order, data)`.
    private mutating func buildArray(_ index: Int, _ state: PickleValue) throws {
        guard case .tuple = state, let fields = sequence(state), fields.count == 5,
              let shape = integers(fields[1]), case .numpyDType(let dtypeIndex) = fields[2], case .bool(let fortranOrder) = fields[3] else {
            throw PickleProblem("sets a numpy.ndarray's state that is not (version, shape, dtype, order, data)")
        }
        let (code, order) = dtypes[dtypeIndex]
        guard let type = NumPyArchive.elementTypes[code] else {
            throw PickleProblem("has a numpy.ndarray of dtype '\(code)', which is not supported (only bool, integer and float arrays)")
        }
        guard order != ">" || type.byteSize == 1 else { throw PickleProblem("has a big-endian numpy.ndarray ('>\(code)'), which is not supported") }
        var count = type.byteSize
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else { throw PickleProblem("has a numpy.ndarray of shape \(shape)") }
            count = product
        }
        let data: [UInt8]
        switch fields[4] {
        case .bytes(let bytes):
            data = bytes
        case .string(let text):
            // A Python 2 `str` read as Latin-1 text: its code points are the bytes.
            data = try text.unicodeScalars.map { scalar in
                guard scalar.value < 256 else { throw PickleProblem("has numpy.ndarray data that is not Latin-1 text") }
                return UInt8(scalar.value)
            }
        default:
            throw PickleProblem("has a numpy.ndarray whose data is a \(fields[4].kind) (an object array), which is not supported")
        }
        guard data.count == count else {
            throw PickleProblem("has a numpy.ndarray of shape \(shape) and dtype '\(code)' with \(data.count) bytes of data instead of \(count)")
        }
        arrays[index] = PickledNumPyArray(shape: shape, dtype: code, byteOrder: order, fortranOrder: fortranOrder, data: data)
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
