// PyTorch checkpoints (.pth, .pth.tar, .pt, .bin) as written by torch.save: the zip container
// of torch ≥ 1.6 (`<folder>/data.pkl` plus one `<folder>/data/<key>` entry per storage) and the
// legacy stream of pickles before it (TorchCheckpoint+Legacy.swift). The pickle is read by the
// restricted unpickler, the model's state dict is found, a DataParallel `module.` prefix is
// removed, and every tensor is converted to Float32 from its storage, each storage read once.
import Foundation
import SSFEngine

/// Reads PyTorch checkpoint files without executing anything in them.
public enum TorchCheckpoint {
    /// Keys under which training scripts nest the model's state dict, tried in this order
    /// (up to three levels deep) before the tensors of the top-level dict itself.
    public static let stateDictKeys = [
        "state_dict", "model", "model_state", "model_state_dict", "module", "net", "state_dict_ema", "model_ema",
    ]

    /// Loads the model weights of the checkpoint at `url` as Float32 tensors by name.
    ///
    /// The file format is recognised from its contents, not its extension. The pickled object
    /// may be the state dict itself or a dict holding it under one of `stateDictKeys` (as timm
    /// training checkpoints do, next to the epoch, optimizer state and arguments, which are
    /// ignored). A leading `module.` is removed from every name. Tensors may be float32/16/64,
    /// bfloat16, int64/32/16/8, uint8 or bool, may share storages and may be non-contiguous views.
    ///
    /// Throws `CheckpointError` naming the file and the problem for anything else: a truncated
    /// or damaged archive, a missing pickle or storage, a global outside the small allowlist a
    /// tensor checkpoint needs (e.g. `os.system`), an unsupported pickle opcode, a malformed
    /// pickle stack or memo, a tensor that does not fit its storage, or no tensor dict at all.
    public static func load(_ url: URL) throws -> [String: Tensor] {
        let path = url.path
        let data = try mapFile(url)
        return try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            if ZipArchive.hasSignature(bytes) { return try loadZip(bytes, path: path) }
            if bytes.first == 0x80 { return try loadLegacy(bytes, path: path) }
            if bytes.count >= 262, Array(bytes[257..<262]) == Array("ustar".utf8) {
                throw CheckpointError(path: path, problem: "is a tar archive, the checkpoint format of torch before 1.0, which is not supported")
            }
            let start = bytes.prefix(4).map { String(format: "%02X", $0) }.joined(separator: " ")
            throw CheckpointError(path: path, problem: bytes.isEmpty ? "file is empty"
                                  : "is neither a zip-format nor a legacy PyTorch checkpoint (it starts with bytes \(start))")
        }
    }

    /// The file's bytes, memory-mapped.
    static func mapFile(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw CheckpointError(path: url.path, problem: "cannot read the file (\(error.localizedDescription))")
        }
    }

    // MARK: Zip format

    private static func loadZip(_ bytes: UnsafeRawBufferPointer, path: String) throws -> [String: Tensor] {
        let archive = try ZipArchive(bytes, path: path)
        let pickles = archive.entries.filter { $0.name.hasSuffix("/data.pkl") && $0.name.split(separator: "/").count == 2 }
        guard pickles.count == 1, let pickle = pickles.first else {
            throw CheckpointError(path: path, problem: pickles.isEmpty
                                  ? "zip archive has no <folder>/data.pkl, so it is not a PyTorch checkpoint"
                                  : "zip archive has \(pickles.count) <folder>/data.pkl entries")
        }
        let folder = String(pickle.name.dropLast("data.pkl".count))
        if let order = archive.entry(named: folder + "byteorder") {
            try archive.withContents(of: order) { raw in
                guard String(decoding: raw, as: UTF8.self) == "little" else {
                    throw CheckpointError(path: path, problem: "stores big-endian tensor data (byteorder \"\(String(decoding: raw.prefix(16), as: UTF8.self))\"), which is not supported")
                }
            }
        }
        var unpickler = Unpickler(dialect: .tensorCheckpoint)
        let root = try archive.withContents(of: pickle) { raw in
            try unpickler.load(raw, from: 0, path: path, label: "pickle \(pickle.name)").value
        }
        let tensors = try stateDictTensors(root, unpickler.heap, path: path)
        return try materialize(tensors, unpickler.heap, path: path) { key, body in
            guard let entry = archive.entry(named: folder + "data/" + key) else {
                throw CheckpointError(path: path, problem: "storage entry \"\(folder)data/\(key)\" is missing from the zip archive")
            }
            try archive.withContents(of: entry, body)
        }
    }

    // MARK: Finding the state dict

    /// The tensors of the state dict in `root`, by name without the `module.` prefix, as
    /// indices into `heap.tensors`.
    static func stateDictTensors(_ root: PickleValue, _ heap: PickleHeap, path: String) throws -> [String: Int] {
        func tensors(in value: PickleValue, depth: Int) -> [String: Int]? {
            guard case .dict(let index) = value else { return nil }
            if depth < 3 {
                for key in stateDictKeys {
                    if let nested = heap.lookup(key, in: value), let found = tensors(in: nested, depth: depth + 1) { return found }
                }
            }
            var found: [String: Int] = [:]
            for item in heap.dicts[index] {
                if case .string(let name) = item.key, case .tensor(let tensor) = item.value { found[name] = tensor }
            }
            return found.isEmpty ? nil : found
        }
        guard let found = tensors(in: root, depth: 0) else {
            let keys = heap.stringKeys(of: root)
            let shown = keys.prefix(12).map { "\"\($0)\"" }.joined(separator: ", ") + (keys.count > 12 ? ", …" : "")
            let what = if case .dict = root { "a dict with keys \(shown)" } else { "a \(root.kind)" }
            throw CheckpointError(path: path, problem: "holds no tensor state dict: the pickled object is \(what), with no tensors at the top or under \(stateDictKeys.joined(separator: ", "))")
        }
        var result: [String: Int] = [:]
        for (name, tensor) in found {
            let stripped = name.hasPrefix("module.") ? String(name.dropFirst("module.".count)) : name
            guard result.updateValue(tensor, forKey: stripped) == nil else {
                throw CheckpointError(path: path, problem: "tensor names \"\(stripped)\" and \"module.\(stripped)\" collide once the DataParallel prefix is removed")
            }
        }
        return result
    }

    // MARK: Materialising tensors

    /// Converts `tensors` to Float32, calling `withStorage(key, body)` once per storage key with
    /// the storage's bytes.
    static func materialize(_ tensors: [String: Int], _ heap: PickleHeap, path: String,
                            withStorage: (String, (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> [String: Tensor] {
        let byKey = Dictionary(grouping: tensors) { heap.storages[heap.tensors[$0.value].storage].key }
        var result: [String: Tensor] = [:]
        for key in byKey.keys.sorted() {
            try withStorage(key) { raw in
                for (name, index) in byKey[key]! {
                    result[name] = try tensor(heap.tensors[index], heap, raw, name: name, path: path)
                }
            }
        }
        return result
    }

    /// One tensor from the bytes `raw` of the storage it refers to.
    private static func tensor(_ tensor: TorchTensorReference, _ heap: PickleHeap, _ raw: UnsafeRawBufferPointer,
                               name: String, path: String) throws -> Tensor {
        let storage = heap.storages[tensor.storage]
        let size = storage.elementType.byteSize
        let (needed, overflow) = storage.count.multipliedReportingOverflow(by: size)
        guard !overflow, raw.count >= needed else {
            throw CheckpointError(path: path, problem: "storage \"\(storage.key)\" holds \(raw.count) bytes, fewer than the \(storage.count) \(storage.elementType) elements it is declared with")
        }
        let view = UnsafeRawBufferPointer(rebasing: raw[storage.viewOffset * size..<(storage.viewOffset + storage.viewCount) * size])
        if let problem = tensor.view.problem(available: view.count / tensor.elementType.byteSize) {
            throw CheckpointError(path: path, problem: "tensor \"\(name)\" does not fit its storage \"\(storage.key)\": \(problem)")
        }
        return tensor.elementType.gather(from: view, tensor.view)
    }
}
