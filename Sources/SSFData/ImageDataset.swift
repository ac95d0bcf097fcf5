// The dataset protocol every format implements, dataset errors, and the bad-image policy.
import Foundation

/// A labelled image classification dataset with random access to its samples.
public protocol ImageDataset: Sendable {
    /// The number of samples.
    var count: Int { get }
    /// Class names; labels are indices into this array.
    var classNames: [String] { get }
    /// The decoded image and label of sample `index`; throws `ImageError` naming the source when it cannot be read.
    func sample(at index: Int) throws -> (image: RGBImage, label: Int)
    /// Where sample `index` comes from (a file path, or a file and record number), for error reports.
    func identity(at index: Int) -> String
    /// The label of sample `index` without decoding its image (the default decodes it).
    func label(at index: Int) throws -> Int
    /// Sample `index` decoded no smaller than `minimumSide` on its shorter side where the format can
    /// decode at a reduced scale (JPEG files); the default decodes it whole.
    func sample(at index: Int, minimumSide: Int) throws -> (image: RGBImage, label: Int)
}

extension ImageDataset {
    public func label(at index: Int) throws -> Int { try sample(at: index).label }
    public func sample(at index: Int, minimumSide: Int) throws -> (image: RGBImage, label: Int) { try sample(at: index) }
}

/// A dataset file or layout that could not be understood.
public struct DatasetError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) { self.path = path; self.problem = problem }
    public var description: String { "\(path): \(problem)" }
}

/// What to do with an image that cannot be read or decoded.
public enum BadImagePolicy: String, Sendable, CaseIterable {
    /// Stop with an error naming the image (the default).
    case fail
    /// Leave the image out, count it and report it.
    case skip
}

/// A dataset of image files on disk, each with a label.
public struct FileListDataset: ImageDataset {
    /// Image files and their labels, in dataset order.
    public let entries: [(url: URL, label: Int)]
    public let classNames: [String]

    public init(entries: [(url: URL, label: Int)], classNames: [String]) {
        self.entries = entries; self.classNames = classNames
    }

    public var count: Int { entries.count }

    public func sample(at index: Int) throws -> (image: RGBImage, label: Int) {
        (try RGBImage(contentsOf: entries[index].url), entries[index].label)
    }

    public func sample(at index: Int, minimumSide: Int) throws -> (image: RGBImage, label: Int) {
        (try RGBImage(contentsOf: entries[index].url, minimumSide: minimumSide), entries[index].label)
    }

    public func identity(at index: Int) -> String { entries[index].url.path }

    public func label(at index: Int) -> Int { entries[index].label }
}

/// A dataset held in memory as raw 8-bit pixels (CIFAR, MNIST): records of `height × width`
/// pixels, either planar RGB (three planes) or single-channel grayscale.
public struct PixelArrayDataset: ImageDataset {
    public let width: Int
    public let height: Int
    /// 3 for planar RGB records, 1 for grayscale ones (expanded to RGB when sampled).
    public let channels: Int
    /// All records back to back.
    public let pixels: [UInt8]
    public let labels: [Int]
    public let classNames: [String]
    /// The file (or files) the records came from, for reports.
    public let source: String

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8], labels: [Int], classNames: [String], source: String) {
        precondition(pixels.count == labels.count * width * height * channels, "PixelArrayDataset: pixel count mismatch")
        self.width = width; self.height = height; self.channels = channels
        self.pixels = pixels; self.labels = labels; self.classNames = classNames; self.source = source
    }

    public var count: Int { labels.count }

    public func sample(at index: Int) throws -> (image: RGBImage, label: Int) {
        let plane = width * height, start = index * plane * channels
        var rgb = [UInt8](repeating: 0, count: plane * 3)
        for i in 0..<plane {
            for c in 0..<3 { rgb[i * 3 + c] = pixels[start + (channels == 3 ? c * plane : 0) + i] }
        }
        return (RGBImage(width: width, height: height, pixels: rgb), labels[index])
    }

    public func label(at index: Int) -> Int { labels[index] }

    public func identity(at index: Int) -> String { "\(source) record \(index)" }
}

/// The file names directly inside `url`, sorted; throws a `DatasetError` when it is not a readable folder.
func sortedContents(of url: URL) throws -> [String] {
    do {
        return try FileManager.default.contentsOfDirectory(atPath: url.path).filter { !$0.hasPrefix(".") }.sorted()
    } catch {
        throw DatasetError(path: url.path, problem: "cannot list the folder (\(error.localizedDescription))")
    }
}

/// Whether `url` names an existing folder.
func isDirectory(_ url: URL) -> Bool {
    var flag: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &flag) && flag.boolValue
}

/// The lines of a text file, trimmed, without blank ones.
func textLines(_ url: URL) throws -> [Substring] {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw DatasetError(path: url.path, problem: "cannot read the file (\(error.localizedDescription))")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw DatasetError(path: url.path, problem: "is not UTF-8 text")
    }
    return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces)[...] }.filter { !$0.isEmpty }
}
