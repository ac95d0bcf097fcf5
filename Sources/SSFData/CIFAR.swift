// CIFAR-10 and CIFAR-100 in their python (pickle) and binary distributions.
import Foundation

/// The CIFAR variants.
public enum CIFARVariant: Sendable {
    case cifar10, cifar100
}

private func readAll(_ url: URL) throws -> [UInt8] {
    do { return [UInt8](try Data(contentsOf: url)) } catch {
        throw DatasetError(path: url.path, problem: "cannot read the file (\(error.localizedDescription))")
    }
}

extension PixelArrayDataset {
    /// A CIFAR split (`train` or `test`) from a folder of the python version
    /// (`data_batch_1…5`/`test_batch` + `batches.meta`, or `train`/`test` + `meta` with fine labels)
    /// or of the binary version (`data_batch_N.bin`/`test_batch.bin` + `batches.meta.txt`, or
    /// `train.bin`/`test.bin` + `fine_label_names.txt`).
    public static func cifar(_ root: URL, variant: CIFARVariant, split: String) throws -> PixelArrayDataset {
        guard split == "train" || split == "test" else {
            throw DatasetError(path: root.path, problem: "CIFAR has splits train and test, not \"\(split)\"")
        }
        let names = try sortedContents(of: root)
        let binary = names.contains { $0.hasSuffix(".bin") }
        let files: [String]
        switch (variant, binary) {
        case (.cifar10, false): files = split == "train" ? names.filter { $0.hasPrefix("data_batch_") } : ["test_batch"]
        case (.cifar10, true): files = split == "train" ? names.filter { $0.hasPrefix("data_batch_") && $0.hasSuffix(".bin") } : ["test_batch.bin"]
        case (.cifar100, false): files = [split]
        case (.cifar100, true): files = ["\(split).bin"]
        }
        guard !files.isEmpty else { throw DatasetError(path: root.path, problem: "has no CIFAR \(split) files") }
        var pixels: [UInt8] = [], labels: [Int] = []
        for file in files {
            let url = root.appendingPathComponent(file)
            let (p, l) = binary ? try binaryRecords(url, labelBytes: variant == .cifar10 ? 1 : 2)
                                : try pickleRecords(url, labelKey: variant == .cifar10 ? "labels" : "fine_labels")
            pixels += p; labels += l
        }
        let classes = try cifarClassNames(root, variant: variant, binary: binary)
        if let bad = labels.first(where: { $0 < 0 || $0 >= classes.count }) {
            throw DatasetError(path: root.path, problem: "label \(bad) is outside the \(classes.count) classes")
        }
        return PixelArrayDataset(width: 32, height: 32, channels: 3, pixels: pixels, labels: labels, classNames: classes,
                                 source: files.count == 1 ? root.appendingPathComponent(files[0]).path : "\(root.path)/\(split)")
    }

    /// Records of `labelBytes` label bytes (the last one is the label used) and 3072 pixel bytes.
    private static func binaryRecords(_ url: URL, labelBytes: Int) throws -> ([UInt8], [Int]) {
        let bytes = try readAll(url), size = labelBytes + 3072
        guard !bytes.isEmpty, bytes.count % size == 0 else {
            throw DatasetError(path: url.path, problem: "is \(bytes.count) bytes, not a whole number of \(size)-byte CIFAR records")
        }
        var pixels: [UInt8] = [], labels: [Int] = []
        pixels.reserveCapacity(bytes.count / size * 3072)
        for start in stride(from: 0, to: bytes.count, by: size) {
            labels.append(Int(bytes[start + labelBytes - 1]))
            pixels += bytes[(start + labelBytes)..<(start + size)]
        }
        return (pixels, labels)
    }

    /// The `data` array and the label list of a python-version batch.
    private static func pickleRecords(_ url: URL, labelKey: String) throws -> ([UInt8], [Int]) {
        try readCIFARPickle(try readAll(url), path: url.path).records(labelKey: labelKey)
    }

    private static func cifarClassNames(_ root: URL, variant: CIFARVariant, binary: Bool) throws -> [String] {
        let fallback = (0..<(variant == .cifar10 ? 10 : 100)).map(String.init)
        if binary {
            let url = root.appendingPathComponent(variant == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt")
            guard FileManager.default.fileExists(atPath: url.path) else { return fallback }
            return try textLines(url).map(String.init)
        }
        let url = root.appendingPathComponent(variant == .cifar10 ? "batches.meta" : "meta")
        guard FileManager.default.fileExists(atPath: url.path) else { return fallback }
        return try readCIFARPickle(try readAll(url), path: url.path).names(variant == .cifar10 ? "label_names" : "fine_label_names")
    }
}
