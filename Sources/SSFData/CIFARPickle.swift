// A small restricted reader for the protocol-2 pickles of CIFAR's python version: dicts of
// strings/bytes, int lists and uint8 numpy arrays. Anything else is rejected.
import Foundation

/// A value of the CIFAR pickle subset.
indirect enum PickleItem {
    case none, bool(Bool), int(Int), text(String), bytes([UInt8])
    case list([PickleItem]), tuple([PickleItem]), dict([(PickleItem, PickleItem)])
    /// An allowed global: numpy's array reconstruction, ndarray, dtype, or `_codecs.encode`.
    case global(String)
    /// A numpy array under construction (shape and raw little-endian bytes once built).
    case array(shape: [Int], dtype: String, data: [UInt8])
    case dtype(String)

    /// The key as text, for dict look-ups (bytes keys are decoded as Latin-1).
    var keyText: String? {
        switch self {
        case .text(let s): s
        case .bytes(let b): String(decoding: b, as: UTF8.self)
        default: nil
        }
    }
}

/// Reads a pickle made of the CIFAR subset; `path` names the file in errors.
func readCIFARPickle(_ bytes: [UInt8], path: String) throws -> PickleItem {
    func fail(_ problem: String) -> DatasetError { DatasetError(path: path, problem: "pickle: \(problem)") }
    var pos = 0, stack: [PickleItem] = [], marks: [Int] = [], memo: [Int: PickleItem] = [:]
    func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, pos + n <= bytes.count else { throw fail("truncated at byte \(pos)") }
        defer { pos += n }
        return bytes[pos..<pos + n]
    }
    func uint(_ n: Int) throws -> Int { try take(n).reversed().reduce(0) { $0 << 8 | Int($1) } }
    func pop() throws -> PickleItem { guard let v = stack.popLast() else { throw fail("stack underflow") }; return v }
    func popMark() throws -> [PickleItem] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("missing mark") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }
    func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 10) else { throw fail("unterminated line") }
        defer { pos = end + 1 }
        return String(decoding: bytes[pos..<end], as: UTF8.self)
    }
    let allowed: Set<String> = ["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
                                "numpy.ndarray", "numpy.dtype", "_codecs.encode"]
    while true {
        let op = try take(1).first!
        switch op {
        case 0x80: _ = try take(1)                                  // PROTO
        case 0x95: _ = try take(8)                                  // FRAME
        case 0x2E: return try pop()                                 // STOP
        case 0x28: marks.append(stack.count)                        // MARK
        case 0x4E: stack.append(.none)
        case 0x88: stack.append(.bool(true))
        case 0x89: stack.append(.bool(false))
        case 0x4B: stack.append(.int(try uint(1)))                  // BININT1
        case 0x4D: stack.append(.int(try uint(2)))                  // BININT2
        case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
        case 0x8A:                                                  // LONG1
            let n = try uint(1)
            guard n <= 8 else { throw fail("integer of \(n) bytes") }
            let raw = try take(n)
            var v = raw.reversed().reduce(0) { $0 << 8 | Int($1) }
            if n > 0 && n < 8 && raw.last! & 0x80 != 0 { v -= 1 << (8 * n) }
            stack.append(.int(v))
        case 0x55: stack.append(.bytes(Array(try take(try uint(1)))))        // SHORT_BINSTRING
        case 0x54: stack.append(.bytes(Array(try take(try uint(4)))))        // BINSTRING
        case 0x43: stack.append(.bytes(Array(try take(try uint(1)))))        // SHORT_BINBYTES
        case 0x42: stack.append(.bytes(Array(try take(try uint(4)))))        // BINBYTES
        case 0x58: stack.append(.text(String(decoding: try take(try uint(4)), as: UTF8.self)))   // BINUNICODE
        case 0x8C: stack.append(.text(String(decoding: try take(try uint(1)), as: UTF8.self)))   // SHORT_BINUNICODE
        case 0x7D: stack.append(.dict([]))
        case 0x5D: stack.append(.list([]))
        case 0x29: stack.append(.tuple([]))
        case 0x74: stack.append(.tuple(try popMark()))
        case 0x85: stack.append(.tuple([try pop()]))
        case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))
        case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))
        case 0x71: memo[try uint(1)] = stack.last                   // BINPUT
        case 0x72: memo[try uint(4)] = stack.last                   // LONG_BINPUT
        case 0x94: memo[memo.count] = stack.last                    // MEMOIZE
        case 0x68, 0x6A:                                            // BINGET, LONG_BINGET
            guard let v = memo[try uint(op == 0x68 ? 1 : 4)] else { throw fail("unknown memo reference") }
            stack.append(v)
        case 0x61, 0x65:                                            // APPEND, APPENDS
            let items = op == 0x61 ? [try pop()] : try popMark()
            guard case .list(let l) = try pop() else { throw fail("append to a non-list") }
            stack.append(.list(l + items))
        case 0x73, 0x75:                                            // SETITEM, SETITEMS
            let items = op == 0x73 ? Array([try pop(), try pop()].reversed()) : try popMark()
            guard items.count % 2 == 0, case .dict(var d) = try pop() else { throw fail("set items on a non-dict") }
            for i in stride(from: 0, to: items.count, by: 2) { d.append((items[i], items[i + 1])) }
            stack.append(.dict(d))
        case 0x63, 0x93:                                            // GLOBAL, STACK_GLOBAL
            let name: String
            if op == 0x63 {
                name = "\(try line()).\(try line())"
            } else {
                guard case .text(let n) = try pop(), case .text(let m) = try pop() else { throw fail("bad STACK_GLOBAL") }
                name = "\(m).\(n)"
            }
            guard allowed.contains(name) else { throw fail("refers to \(name), which a CIFAR file never needs") }
            stack.append(.global(name))
        case 0x52:                                                  // REDUCE
            let args = try pop(), callable = try pop()
            guard case .global(let name) = callable, case .tuple(let a) = args else { throw fail("calls something that is not an allowed global") }
            switch name {
            case "_codecs.encode":
                guard a.count == 2, case .text(let s) = a[0], case .text(let enc) = a[1], enc == "latin1" else { throw fail("unsupported _codecs.encode") }
                stack.append(.bytes(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }))
            case "numpy.dtype":
                guard let t = a.first?.keyText else { throw fail("bad dtype") }
                stack.append(.dtype(t))
            default:
                stack.append(.array(shape: [], dtype: "", data: []))
            }
        case 0x62:                                                  // BUILD
            let state = try pop(), target = try pop()
            switch target {
            case .dtype: stack.append(target)
            case .array:
                guard case .tuple(let s) = state, s.count == 5, case .tuple(let dims) = s[1], case .dtype(let t) = s[2],
                      case .bytes(let data) = s[4] else { throw fail("numpy array state is not (version, shape, dtype, fortran, bytes)") }
                let shape = try dims.map { (d: PickleItem) -> Int in guard case .int(let n) = d else { throw fail("bad array shape") }; return n }
                stack.append(.array(shape: shape, dtype: t, data: data))
            default: throw fail("BUILD on an unsupported object")
            }
        default:
            throw fail(String(format: "unsupported opcode 0x%02X at byte %d", op, pos - 1))
        }
    }
}
