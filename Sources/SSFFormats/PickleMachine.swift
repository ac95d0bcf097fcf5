// The restricted unpickler, the one pickle reader: a stack machine for the pickle opcodes that
// torch.save writes for tensor state dicts and that Python writes for plain data with NumPy
// arrays (protocols 2 to 5). It builds a `PickleValue` tree and never executes anything; an
// unknown opcode, a global outside its dialect's allowlist (PickleGlobals.swift), a malformed
// stack or memo, or a truncated stream stops it with an error naming the file, the pickle and
// the byte offset.

/// Reads pickles into one shared heap (a legacy checkpoint holds several in a row).
public struct Unpickler {
    /// Containers, torch objects and arrays of every pickle read so far.
    public private(set) var heap = PickleHeap()
    /// Which globals the pickles may name and how their Python 2 strings read.
    public let dialect: PickleDialect
    /// Deepest nesting of MARKs accepted; Python's own pickler cannot write deeper containers
    /// without exceeding its recursion limit.
    static let maxMarkDepth = 1000

    public init(dialect: PickleDialect) {
        self.dialect = dialect
    }

    /// Reads the pickle that starts at byte `start` of `bytes`, returning its value and the
    /// offset just past its STOP opcode. Throws `CheckpointError` naming `path` and `label`
    /// (e.g. "pickle data.pkl") with the byte offset and the problem.
    public mutating func load(_ bytes: UnsafeRawBufferPointer, from start: Int, path: String, label: String) throws -> (value: PickleValue, end: Int) {
        var machine = Machine(bytes: bytes, position: start, dialect: dialect)
        do {
            let value = try machine.run(&heap)
            return (value, machine.position)
        } catch let problem as PickleProblem {
            throw CheckpointError(path: path, problem: "\(label) (byte \(machine.opcodeStart)): \(problem.text)")
        }
    }
}

/// The state of one pickle being read.
private struct Machine {
    let bytes: UnsafeRawBufferPointer
    let dialect: PickleDialect
    var position: Int
    var opcodeStart = 0
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]

    init(bytes: UnsafeRawBufferPointer, position: Int, dialect: PickleDialect) {
        self.bytes = bytes
        self.dialect = dialect
        self.position = position
        self.opcodeStart = position
    }

    /// Runs opcodes until STOP and returns the value on top of the stack.
    mutating func run(_ heap: inout PickleHeap) throws -> PickleValue {
        while true {
            opcodeStart = position
            let opcode = try byte()
            switch opcode {
            case 0x80: // PROTO
                let version = try byte()
                guard (2...5).contains(version) else { throw PickleProblem("uses pickle protocol \(version); only 2 to 5 are supported") }
            case 0x95: // FRAME: a length prefix for buffering, nothing to do
                _ = try unsigned(8)
            case 0x2E: // STOP
                return try pop("STOP")

            case 0x4E: push(.none) // NONE
            case 0x88: push(.bool(true)) // NEWTRUE
            case 0x89: push(.bool(false)) // NEWFALSE
            case 0x4B: push(.int(Int(try unsigned(1)))) // BININT1
            case 0x4D: push(.int(Int(try unsigned(2)))) // BININT2
            case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: try unsigned(4))))) // BININT
            case 0x8A: push(try long(Int(try unsigned(1)))) // LONG1
            case 0x47: push(.float(Double(bitPattern: try unsigned(8).byteSwapped))) // BINFLOAT (big-endian)
            case 0x8C: push(.string(try text(Int(try unsigned(1))))) // SHORT_BINUNICODE
            case 0x58: push(.string(try text(Int(try unsigned(4))))) // BINUNICODE
            case 0x8D: push(.string(try text(try length(8)))) // BINUNICODE8
            case 0x55: push(legacyString(try take(Int(try unsigned(1))))) // SHORT_BINSTRING
            case 0x54: // BINSTRING
                let count = Int32(truncatingIfNeeded: try unsigned(4))
                guard count >= 0 else { throw PickleProblem("has a string of negative length \(count)") }
                push(legacyString(try take(Int(count))))
            case 0x43: push(.bytes(Array(try take(Int(try unsigned(1)))))) // SHORT_BINBYTES
            case 0x42: push(.bytes(Array(try take(Int(try unsigned(4)))))) // BINBYTES
            case 0x8E: push(.bytes(Array(try take(try length(8))))) // BINBYTES8

            case 0x7D: push(heap.newDict()) // EMPTY_DICT
            case 0x5D: push(heap.newList()) // EMPTY_LIST
            case 0x29: push(heap.tuple([])) // EMPTY_TUPLE
            case 0x28: // MARK
                guard marks.count < Unpickler.maxMarkDepth else {
                    throw PickleProblem("nests MARKs more than \(Unpickler.maxMarkDepth) deep (recursion limit)")
                }
                marks.append(stack.count)
            case 0x74: push(heap.tuple(try popMark("TUPLE"))) // TUPLE
            case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
                let count = Int(opcode - 0x84)
                try require(count, "TUPLE\(count)")
                let items = Array(stack.suffix(count))
                stack.removeLast(count)
                push(heap.tuple(items))

            case 0x73: // SETITEM
                try require(3, "SETITEM")
                let value = stack.removeLast()
                let key = stack.removeLast()
                try setItems([key, value], in: stack[stack.count - 1], &heap)
            case 0x75: // SETITEMS
                let items = try popMark("SETITEMS")
                guard items.count % 2 == 0 else { throw PickleProblem("SETITEMS has an odd number of keys and values") }
                try require(1, "SETITEMS")
                try setItems(items, in: stack[stack.count - 1], &heap)
            case 0x61: // APPEND
                try require(2, "APPEND")
                let value = stack.removeLast()
                try append([value], to: stack[stack.count - 1], &heap)
            case 0x65: // APPENDS
                let items = try popMark("APPENDS")
                try require(1, "APPENDS")
                try append(items, to: stack[stack.count - 1], &heap)

            case 0x71: try put(Int(try unsigned(1))) // BINPUT
            case 0x72: try put(Int(try unsigned(4))) // LONG_BINPUT
            case 0x94: try put(memo.count) // MEMOIZE
            case 0x68: try get(Int(try unsigned(1))) // BINGET
            case 0x6A: try get(Int(try unsigned(4))) // LONG_BINGET

            case 0x63: // GLOBAL
                let module = try line()
                let name = try line()
                push(.global(try dialect.resolve(module: module, name: name).get()))
            case 0x93: // STACK_GLOBAL
                let name = try pop("STACK_GLOBAL")
                let module = try pop("STACK_GLOBAL")
                guard case .string(let moduleName) = module, case .string(let globalName) = name else {
                    throw PickleProblem("STACK_GLOBAL needs two strings, found a \(module.kind) and a \(name.kind)")
                }
                push(.global(try dialect.resolve(module: moduleName, name: globalName).get()))
            case 0x51: // BINPERSID
                push(try heap.persistentLoad(try pop("BINPERSID")))
            case 0x52: // REDUCE
                let arguments = try pop("REDUCE")
                push(try heap.call(try pop("REDUCE"), arguments))
            case 0x81: // NEWOBJ
                let arguments = try pop("NEWOBJ")
                push(try heap.instantiate(try pop("NEWOBJ"), arguments))
            case 0x62: // BUILD
                let state = try pop("BUILD")
                try require(1, "BUILD")
                try heap.build(stack[stack.count - 1], state: state)

            default:
                throw PickleProblem("unsupported pickle opcode 0x\(String(opcode, radix: 16, uppercase: true))")
            }
        }
    }

    // MARK: Reading bytes

    mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count <= bytes.count - position else {
            throw PickleProblem("ends in the middle of an opcode: the file is truncated")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw PickleProblem("ends without a STOP opcode: the file is truncated") }
        defer { position += 1 }
        return bytes[position]
    }

    /// A little-endian unsigned integer of `size` bytes.
    mutating func unsigned(_ size: Int) throws -> UInt64 {
        try take(size).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// An 8-byte length that must fit in the rest of the pickle.
    mutating func length(_ size: Int) throws -> Int {
        let value = try unsigned(size)
        guard value <= UInt64(bytes.count - position) else {
            throw PickleProblem("ends in the middle of an opcode: the file is truncated")
        }
        return Int(value)
    }

    mutating func text(_ count: Int) throws -> String {
        guard let string = String(validating: try take(count), as: UTF8.self) else {
            throw PickleProblem("has a string that is not valid UTF-8")
        }
        return string
    }

    /// A Python 2 `str`: Latin-1 text or bytes, as the dialect reads it.
    func legacyString(_ raw: UnsafeRawBufferPointer) -> PickleValue {
        dialect.legacyStringsAsText ? .string(String(String.UnicodeScalarView(raw.map { Unicode.Scalar($0) }))) : .bytes(Array(raw))
    }

    /// A newline-terminated ASCII line (a GLOBAL's module or name).
    mutating func line() throws -> String {
        var characters: [UInt8] = []
        while true {
            let c = try byte()
            if c == 0x0A { break }
            guard c >= 0x20, c < 0x7F, characters.count < 256 else {
                throw PickleProblem("has a GLOBAL whose name is not a short line of printable ASCII")
            }
            characters.append(c)
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// LONG1's `count` bytes of little-endian two's complement.
    mutating func long(_ count: Int) throws -> PickleValue {
        let raw = Array(try take(count))
        guard count <= 8 else { return .bigInt(raw) }
        guard let last = raw.last else { return .int(0) }
        let fill: UInt8 = last & 0x80 == 0 ? 0 : 0xFF
        let padded = raw + Array(repeating: fill, count: 8 - count)
        return .int(Int(truncatingIfNeeded: padded.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
    }

    // MARK: Stack and memo

    mutating func push(_ value: PickleValue) { stack.append(value) }

    /// Checks that the stack above the innermost MARK holds at least `count` values.
    func require(_ count: Int, _ opcode: String) throws {
        let floor = marks.last ?? 0
        guard stack.count - floor >= count else {
            throw PickleProblem("stack underflow: \(opcode) needs \(count) values, the stack has \(stack.count - floor)")
        }
    }

    mutating func pop(_ opcode: String) throws -> PickleValue {
        try require(1, opcode)
        return stack.removeLast()
    }

    /// The values pushed since the innermost MARK, which is removed.
    mutating func popMark(_ opcode: String) throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw PickleProblem("\(opcode) has no MARK to pop to (stack underflow)") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    mutating func put(_ index: Int) throws {
        try require(1, "PUT")
        memo[index] = stack[stack.count - 1]
    }

    mutating func get(_ index: Int) throws {
        guard let value = memo[index] else { throw PickleProblem("memo has no entry \(index)") }
        push(value)
    }

    // MARK: Containers

    func setItems(_ items: [PickleValue], in target: PickleValue, _ heap: inout PickleHeap) throws {
        guard case .dict(let index) = target else {
            throw PickleProblem("sets items of a \(target.kind), which is not a dict")
        }
        for pair in stride(from: 0, to: items.count, by: 2) {
            heap.dicts[index].append((items[pair], items[pair + 1]))
        }
    }

    func append(_ items: [PickleValue], to target: PickleValue, _ heap: inout PickleHeap) throws {
        guard case .list(let index) = target else {
            throw PickleProblem("appends to a \(target.kind), which is not a list")
        }
        heap.lists[index].append(contentsOf: items)
    }
}
