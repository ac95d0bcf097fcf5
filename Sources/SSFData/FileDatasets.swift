// Datasets of image files: ImageFolder, `path label` list files, VTAB-1k, CUB-200-2011 and NABirds.
import Foundation

private let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

/// A `path label` line split into its two parts; the path may contain spaces.
/// Labels in list files must be below this (a million classes).
let maxClassLabel = 1 << 20

private func pathAndLabel(_ line: Substring, file: URL, lineNumber: Int) throws -> (String, Int) {
    guard let space = line.lastIndex(where: { $0 == " " || $0 == "\t" }),
          let label = Int(line[line.index(after: space)...]), label >= 0 else {
        throw DatasetError(path: file.path, problem: "line \(lineNumber): expected `relative/path label` with a non-negative integer label, found \"\(line)\"")
    }
    // The class count follows the largest label, so an absurd one would ask for that many classes.
    guard label < maxClassLabel else {
        throw DatasetError(path: file.path, problem: "line \(lineNumber): label \(label) is not below \(maxClassLabel), the most classes a list may have")
    }
    return (String(line[..<space]).trimmingCharacters(in: .whitespaces), label)
}

/// Whitespace-separated fields of a line: the first `count - 1` fields, then the rest of the line.
private func fields(_ line: Substring, _ count: Int, file: URL, lineNumber: Int) throws -> [String] {
    let parts = line.split(separator: " ", maxSplits: count - 1, omittingEmptySubsequences: true).map(String.init)
    guard parts.count == count else {
        throw DatasetError(path: file.path, problem: "line \(lineNumber): expected \(count) fields, found \"\(line)\"")
    }
    return parts
}

extension FileListDataset {
    /// torchvision's `ImageFolder`: one sub-folder per class (sorted names are the classes),
    /// images with a .jpg/.jpeg/.png extension inside each, sorted by name.
    public static func imageFolder(_ root: URL) throws -> FileListDataset {
        let classes = try sortedContents(of: root).filter { isDirectory(root.appendingPathComponent($0)) }
        guard !classes.isEmpty else { throw DatasetError(path: root.path, problem: "has no class sub-folders") }
        var entries: [(url: URL, label: Int)] = []
        for (label, name) in classes.enumerated() {
            let folder = root.appendingPathComponent(name)
            for file in try sortedContents(of: folder) where imageExtensions.contains((file as NSString).pathExtension.lowercased()) {
                entries.append((folder.appendingPathComponent(file), label))
            }
        }
        return FileListDataset(entries: entries, classNames: classes)
    }

    /// A list file of `relative/path label` lines, paths relative to `base` (the list's folder by default).
    /// Classes are named by their numbers; there are `max(label) + 1` unless `classCount` says more.
    public static func list(_ file: URL, base: URL? = nil, classCount: Int? = nil) throws -> FileListDataset {
        let folder = base ?? file.deletingLastPathComponent()
        var entries: [(url: URL, label: Int)] = []
        for (n, line) in try textLines(file).enumerated() {
            let (path, label) = try pathAndLabel(line, file: file, lineNumber: n + 1)
            entries.append((path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path), label))
        }
        let classes = max(classCount ?? 0, (entries.map(\.label).max() ?? -1) + 1)
        return FileListDataset(entries: entries, classNames: (0..<classes).map(String.init))
    }

    /// A VTAB-1k task folder: `train800val200.txt` (split `train`), `train800.txt`, `val200.txt`
    /// (split `val`) and `test.txt`, with paths relative to the task folder. The class count is
    /// taken over every list present, so all splits agree.
    public static func vtab(_ task: URL, split: String) throws -> FileListDataset {
        let files = ["train": "train800val200.txt", "train800val200": "train800val200.txt", "train800": "train800.txt",
                     "val": "val200.txt", "val200": "val200.txt", "test": "test.txt"]
        guard let name = files[split] else {
            throw DatasetError(path: task.path, problem: "VTAB-1k has no split \"\(split)\" (train, train800, val, test)")
        }
        var classCount = 0
        for other in Set(files.values).sorted() where FileManager.default.fileExists(atPath: task.appendingPathComponent(other).path) {
            classCount = max(classCount, try list(task.appendingPathComponent(other)).classNames.count)
        }
        return try list(task.appendingPathComponent(name), classCount: classCount)
    }

    /// CUB-200-2011 (`nabirds: false`) or NABirds (`true`): `images.txt` (id path),
    /// `image_class_labels.txt` (id class), `train_test_split.txt` (id is_train), `classes.txt`
    /// (class name) and `images/`. Class ids (sparse in NABirds) map to contiguous indices in
    /// increasing id order, counting only the classes that label images.
    public static func birds(_ root: URL, split: String, nabirds: Bool) throws -> FileListDataset {
        guard split == "train" || split == "test" else {
            throw DatasetError(path: root.path, problem: "\(nabirds ? "NABirds" : "CUB-200-2011") has splits train and test, not \"\(split)\"")
        }
        func table(_ name: String, _ width: Int) throws -> [[String]] {
            let file = root.appendingPathComponent(name)
            return try textLines(file).enumerated().map { try fields($0.element, width, file: file, lineNumber: $0.offset + 1) }
        }
        func intField(_ text: String, _ name: String) throws -> Int {
            guard let value = Int(text) else { throw DatasetError(path: root.appendingPathComponent(name).path, problem: "\"\(text)\" is not an integer") }
            return value
        }
        var classOf: [String: Int] = [:]
        for row in try table("image_class_labels.txt", 2) { classOf[row[0]] = try intField(row[1], "image_class_labels.txt") }
        var isTrain: [String: Bool] = [:]
        for row in try table("train_test_split.txt", 2) { isTrain[row[0]] = try intField(row[1], "train_test_split.txt") == 1 }
        var names: [Int: String] = [:]
        for row in try table("classes.txt", 2) { names[try intField(row[0], "classes.txt")] = row[1] }
        let used = Set(classOf.values).sorted()
        let index = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($0.element, $0.offset) })
        var entries: [(url: URL, label: Int)] = []
        for row in try table("images.txt", 2) {
            guard let cls = classOf[row[0]], let train = isTrain[row[0]] else {
                throw DatasetError(path: root.appendingPathComponent("images.txt").path, problem: "image \(row[0]) has no class or no train/test entry")
            }
            if train == (split == "train") {
                entries.append((root.appendingPathComponent("images").appendingPathComponent(row[1]), index[cls]!))
            }
        }
        return FileListDataset(entries: entries, classNames: used.map { names[$0] ?? String($0) })
    }
}
