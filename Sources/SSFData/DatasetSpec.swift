// `FORMAT:PATH[:split]` dataset specifications, format detection, and opening a split.
import Foundation

/// A dataset named on the command line: `imagefolder:/data/flowers`, `cifar100:/data/cifar-100-python`,
/// `vtab:/data/vtab-1k/dtd:test`, or just a path whose format is detected.
public struct DatasetSpec: Sendable, Equatable {
    /// The dataset formats.
    public enum Format: String, Sendable, CaseIterable {
        case imagefolder, cifar10, cifar100, vtab, mnist, fashionMnist = "fashion-mnist", cub, nabirds, dogs, flowers102, cars = "stanford-cars", list
    }

    public var format: Format
    public var path: String
    /// The split named in the spec, if any (it overrides the split a caller asks for).
    public var split: String?

    private static let splitNames: Set<String> = ["train", "val", "test", "train800", "val200", "train800val200"]

    public init(format: Format, path: String, split: String? = nil) {
        self.format = format; self.path = path; self.split = split
    }

    /// Parses `FORMAT:PATH[:split]` or `PATH[:split]` (format detected from the files).
    public init(parsing text: String) throws {
        var rest = text, format: Format?
        if let colon = text.firstIndex(of: ":"), let f = Format(rawValue: String(text[..<colon]).lowercased()) {
            format = f
            rest = String(text[text.index(after: colon)...])
        }
        if let colon = rest.lastIndex(of: ":"), Self.splitNames.contains(String(rest[rest.index(after: colon)...])) {
            split = String(rest[rest.index(after: colon)...])
            rest = String(rest[..<colon])
        }
        guard !rest.isEmpty else { throw DatasetError(path: text, problem: "the dataset spec has no path") }
        path = rest
        self.format = try format ?? Self.detect(URL(fileURLWithPath: rest))
    }

    /// The format of the dataset at `url`, judged from the files it contains.
    public static func detect(_ url: URL) throws -> Format {
        guard isDirectory(url) else {
            if FileManager.default.fileExists(atPath: url.path) { return .list }
            throw DatasetError(path: url.path, problem: "does not exist")
        }
        let names = Set(try sortedContents(of: url))
        if names.contains("batches.meta") || names.contains("data_batch_1") || names.contains("data_batch_1.bin") { return .cifar10 }
        if (names.contains("meta") && names.contains("train")) || names.contains("train.bin") { return .cifar100 }
        if names.contains("train800val200.txt") || names.contains("train800.txt") { return .vtab }
        if names.contains("train_list.mat") { return .dogs }
        if names.contains("imagelabels.mat") && names.contains("setid.mat") { return .flowers102 }
        if names.contains("cars_annos.mat") { return .cars }
        if names.contains("images.txt") && names.contains("classes.txt") {
            return names.contains("hierarchy.txt") || url.lastPathComponent.lowercased().contains("nabirds") ? .nabirds : .cub
        }
        if names.contains(where: { $0.hasPrefix("train-images-idx3-ubyte") }) {
            return url.path.lowercased().contains("fashion") ? .fashionMnist : .mnist
        }
        if names.contains("train") || names.contains("val") || names.contains("test") { return .imagefolder }
        throw DatasetError(path: url.path, problem: "cannot tell the dataset format; name it as FORMAT:PATH (\(Format.allCases.map(\.rawValue).joined(separator: ", ")))")
    }

    /// Opens a split (`train`, `val`, `test`; VTAB also `train800`, `val200`); the spec's own split wins.
    /// An ImageFolder root holds one sub-folder per split; a list file is the whole dataset.
    public func open(split requested: String) throws -> any ImageDataset {
        let split = self.split ?? requested
        let root = URL(fileURLWithPath: path)
        switch format {
        case .imagefolder:
            let folder = root.appendingPathComponent(split)
            guard isDirectory(folder) else {
                throw DatasetError(path: folder.path, problem: "no \(split) folder in this ImageFolder root")
            }
            return try FileListDataset.imageFolder(folder)
        case .cifar10: return try PixelArrayDataset.cifar(root, variant: .cifar10, split: split)
        case .cifar100: return try PixelArrayDataset.cifar(root, variant: .cifar100, split: split)
        case .vtab: return try FileListDataset.vtab(root, split: split)
        case .mnist: return try PixelArrayDataset.mnist(root, split: split, fashion: false)
        case .fashionMnist: return try PixelArrayDataset.mnist(root, split: split, fashion: true)
        case .cub: return try FileListDataset.birds(root, split: split, nabirds: false)
        case .nabirds: return try FileListDataset.birds(root, split: split, nabirds: true)
        case .dogs: return try FileListDataset.stanfordDogs(root, split: split)
        case .flowers102: return try FileListDataset.flowers102(root, split: split)
        case .cars: return try FileListDataset.stanfordCars(root, split: split)
        case .list: return try FileListDataset.list(root)
        }
    }
}
