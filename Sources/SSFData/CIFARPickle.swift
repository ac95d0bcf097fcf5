// CIFAR's python batches (`data_batch_N`, `test_batch`, `train`, `test`, `batches.meta`, `meta`)
// are pickles of a dict of strings, integer lists and one uint8 NumPy array, read by the
// restricted unpickler of SSFFormats in its NumPy-data dialect: Python 2 strings read as bytes,
// as CIFAR's own instructions load them (`pickle.load(f, encoding="bytes")`); any global other
// than NumPy's array reconstruction and `_codecs.encode` is rejected.
import Foundation
import SSFFormats

/// A CIFAR pickle: its top-level dict and the heap its values live in.
struct CIFARPickle {
    let root: PickleValue
    let heap: PickleHeap
    let path: String

    private func fail(_ problem: String) -> DatasetError { DatasetError(path: path, problem: problem) }

    /// The value under `key`, a `str` or (Python 2) `bytes` key.
    func value(_ key: String) -> PickleValue? { heap.lookup(key, in: root, orBytes: true) }

    /// The N×3072 `data` array (N images of 3×32×32 bytes) and the labels under `labelKey`.
    func records(labelKey: String) throws -> ([UInt8], [Int]) {
        guard let array = value("data").flatMap(heap.array) else { throw fail("has no numpy array under \"data\"") }
        guard array.dtype == "u1", array.shape.count == 2, array.shape[1] == 3072, !array.fortranOrder else {
            let order = array.fortranOrder ? " in Fortran order" : ""
            throw fail("\"data\" is a \(array.dtype) array of shape \(array.shape)\(order), not uint8 N×3072")
        }
        guard let list = value(labelKey), case .list = list, let items = heap.sequence(list) else {
            throw fail("has no label list under \"\(labelKey)\"")
        }
        let labels = try items.map { (item: PickleValue) -> Int in
            guard case .int(let label) = item else { throw fail("\"\(labelKey)\" holds a \(item.kind), not an integer") }
            return label
        }
        guard labels.count == array.shape[0] else { throw fail("\(labels.count) labels for \(array.shape[0]) images") }
        return (array.data, labels)
    }

    /// The class names listed under `key` (`str` or bytes read as UTF-8).
    func names(_ key: String) throws -> [String] {
        guard let list = value(key), let items = heap.sequence(list) else { throw fail("has no class name list") }
        return try items.map { item in
            guard let name = item.text else { throw fail("class name is a \(item.kind), not a string") }
            return name
        }
    }
}

/// Reads the CIFAR pickle in `bytes`; errors name the file at `path` and the problem.
func readCIFARPickle(_ bytes: [UInt8], path: String) throws -> CIFARPickle {
    var unpickler = Unpickler(dialect: .numpyData(fileKind: "a CIFAR batch"))
    let root: PickleValue
    do {
        root = try bytes.withUnsafeBytes { try unpickler.load($0, from: 0, path: path, label: "pickle").value }
    } catch let error as CheckpointError {
        throw DatasetError(path: path, problem: error.problem)
    }
    guard case .dict = root else { throw DatasetError(path: path, problem: "is a pickled \(root.kind), not a dict") }
    return CIFARPickle(root: root, heap: unpickler.heap, path: path)
}
