// Stanford Dogs (train_list.mat / test_list.mat over Images/) and MNIST / Fashion-MNIST IDX files.
import Foundation
import SSFFormats

/// Fashion-MNIST's class names, in label order.
private let fashionClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

extension FileListDataset {
    /// Stanford Dogs: `<split>_list.mat` holds the cell array `file_list` (paths under `Images/`)
    /// and the 1-based numeric `labels`. A class is named by its folder (`n02085620-Chihuahua`
    /// gives `Chihuahua`).
    public static func stanfordDogs(_ root: URL, split: String) throws -> FileListDataset {
        guard split == "train" || split == "test" else {
            throw DatasetError(path: root.path, problem: "Stanford Dogs has splits train and test, not \"\(split)\"")
        }
        let url = root.appendingPathComponent("\(split)_list.mat")
        let vars = try readMatFile(url)
        guard case .cell(_, let items)? = vars["file_list"], case .numeric(_, let values)? = vars["labels"] else {
            throw DatasetError(path: url.path, problem: "needs a cell array file_list and a numeric labels array")
        }
        guard items.count == values.count else {
            throw DatasetError(path: url.path, problem: "\(items.count) files for \(values.count) labels")
        }
        var entries: [(url: URL, label: Int)] = [], names: [Int: String] = [:]
        for (item, value) in zip(items, values) {
            guard case .text(let file) = item, value >= 1, value <= 100_000, value == value.rounded() else {
                throw DatasetError(path: url.path, problem: "file_list holds a non-string or labels a value that is not a positive integer")
            }
            let label = Int(value) - 1
            let folder = file.split(separator: "/").first.map(String.init) ?? file
            names[label] = names[label] ?? String(folder.split(separator: "-", maxSplits: 1).last ?? Substring(folder))
            entries.append((root.appendingPathComponent("Images").appendingPathComponent(file), label))
        }
        let count = max(120, (names.keys.max() ?? -1) + 1)
        return FileListDataset(entries: entries, classNames: (0..<count).map { names[$0] ?? String($0) })
    }
}

extension PixelArrayDataset {
    /// MNIST or Fashion-MNIST (`fashion: true`) from a folder of IDX files, gzip'd or not
    /// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-…` for `test`).
    /// Grayscale images are expanded to RGB.
    public static func mnist(_ root: URL, split: String, fashion: Bool) throws -> PixelArrayDataset {
        guard split == "train" || split == "test" else {
            throw DatasetError(path: root.path, problem: "MNIST has splits train and test, not \"\(split)\"")
        }
        let prefix = split == "train" ? "train" : "t10k"
        func load(_ name: String) throws -> (URL, [UInt8]) {
            for candidate in [name + ".gz", name] {
                let url = root.appendingPathComponent(candidate)
                if let data = FileManager.default.contents(atPath: url.path) {
                    return (url, try gunzipIfNeeded([UInt8](data), limit: 1 << 30, path: url.path))
                }
            }
            throw DatasetError(path: root.appendingPathComponent(name).path, problem: "missing (also looked for .gz)")
        }
        let (imageURL, images) = try load("\(prefix)-images-idx3-ubyte")
        let (labelURL, labels) = try load("\(prefix)-labels-idx1-ubyte")
        let imageDims = try idxHeader(images, rank: 3, url: imageURL)
        let labelDims = try idxHeader(labels, rank: 1, url: labelURL)
        guard imageDims[0] == labelDims[0] else {
            throw DatasetError(path: labelURL.path, problem: "\(labelDims[0]) labels for \(imageDims[0]) images")
        }
        let labelValues = labels[8...].map(Int.init)
        if let bad = labelValues.first(where: { $0 > 9 }) { throw DatasetError(path: labelURL.path, problem: "label \(bad) is not a digit class") }
        return PixelArrayDataset(width: imageDims[2], height: imageDims[1], channels: 1, pixels: Array(images[16...]),
                                 labels: labelValues, classNames: fashion ? fashionClasses : (0..<10).map(String.init), source: imageURL.path)
    }

    /// The dimensions of an unsigned-byte IDX file of the given rank, checked against its size.
    private static func idxHeader(_ bytes: [UInt8], rank: Int, url: URL) throws -> [Int] {
        let header = 4 + 4 * rank
        guard bytes.count >= header, bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08, Int(bytes[3]) == rank else {
            throw DatasetError(path: url.path, problem: "is not an unsigned-byte IDX file of rank \(rank)")
        }
        let dims = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) } }
        let size = dims.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard bytes.count - header == size else {
            throw DatasetError(path: url.path, problem: "holds \(bytes.count - header) bytes of data for dimensions \(dims)")
        }
        return dims
    }
}

/// The contents of a gzip file (one member), or the bytes unchanged when they are not gzip'd.
func gunzipIfNeeded(_ bytes: [UInt8], limit: Int, path: String) throws -> [UInt8] {
    guard isGzip(bytes) else { return bytes }
    return try inflated(bytes, container: .gzip, limit: limit, path: path)
}

/// A compressed stream inflated by the SSFFormats wrapper; errors name the file at `path`.
func inflated(_ bytes: [UInt8], container: DeflateContainer, limit: Int, path: String) throws -> [UInt8] {
    do {
        return try inflate(bytes, container: container, limit: limit)
    } catch let error as InflateError {
        switch error {
        case .badHeader(let text): throw DatasetError(path: path, problem: text)
        case .exceedsLimit(let limit): throw DatasetError(path: path, problem: "compressed data inflates to more than \(limit) bytes")
        case .truncated, .corrupt, .checksumMismatch: throw DatasetError(path: path, problem: "compressed data is corrupt or truncated")
        }
    }
}
