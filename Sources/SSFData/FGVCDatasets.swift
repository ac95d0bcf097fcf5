// Oxford Flowers-102 and Stanford Cars with the splits they ship: MATLAB files over image folders.
import Foundation

extension FileListDataset {
    /// A MAT variable's numeric values as positive integers (labels, ids, flags ≥ 0 with `allowZero`).
    private static func integers(_ value: MatValue?, _ name: String, file: URL, allowZero: Bool = false) throws -> [Int] {
        guard case .numeric(_, let values)? = value else {
            throw DatasetError(path: file.path, problem: "needs a numeric array \(name)")
        }
        return try values.map { v in
            guard v == v.rounded(), v >= (allowZero ? 0 : 1), v <= 10_000_000 else {
                throw DatasetError(path: file.path, problem: "\(name) holds \(v), not a \(allowZero ? "non-negative" : "positive") integer")
            }
            return Int(v)
        }
    }

    /// Oxford Flowers-102: `imagelabels.mat` (`labels`, 1-based, one per image `jpg/image_NNNNN.jpg`) and
    /// `setid.mat` (`trnid`, `valid`, `tstid`: 1-based image numbers) give splits train, val and test.
    /// Classes are named by their label number, "1" … "102".
    public static func flowers102(_ root: URL, split: String) throws -> FileListDataset {
        let keys = ["train": "trnid", "val": "valid", "test": "tstid"]
        guard let key = keys[split] else {
            throw DatasetError(path: root.path, problem: "Oxford Flowers-102 has splits train, val and test, not \"\(split)\"")
        }
        let labelsURL = root.appendingPathComponent("imagelabels.mat"), setURL = root.appendingPathComponent("setid.mat")
        let labels = try integers(try readMatFile(labelsURL)["labels"], "labels", file: labelsURL)
        let ids = try integers(try readMatFile(setURL)[key], key, file: setURL)
        let classes = max(102, labels.max() ?? 0)
        let entries: [(url: URL, label: Int)] = try ids.map { id in
            guard id <= labels.count else {
                throw DatasetError(path: setURL.path, problem: "\(key) names image \(id), but imagelabels.mat labels \(labels.count) images")
            }
            return (root.appendingPathComponent("jpg").appendingPathComponent(String(format: "image_%05d.jpg", id)), labels[id - 1] - 1)
        }
        return FileListDataset(entries: entries, classNames: (1...classes).map(String.init))
    }

    /// Stanford Cars: `cars_annos.mat` with the struct array `annotations` (`relative_im_path`, 1-based
    /// `class`, `test` 0/1; the bounding boxes are not used) and the cell array `class_names`, over
    /// `car_ims/`. Splits train (`test` = 0) and test (`test` = 1).
    public static func stanfordCars(_ root: URL, split: String) throws -> FileListDataset {
        guard split == "train" || split == "test" else {
            throw DatasetError(path: root.path, problem: "Stanford Cars has splits train and test, not \"\(split)\"")
        }
        let url = root.appendingPathComponent("cars_annos.mat")
        let vars = try readMatFile(url)
        guard case .structure(_, let fields, let items)? = vars["annotations"] else {
            throw DatasetError(path: url.path, problem: "needs a struct array annotations")
        }
        for field in ["relative_im_path", "class", "test"] where !fields.contains(field) {
            throw DatasetError(path: url.path, problem: "annotations has no field \(field) (it has \(fields.joined(separator: ", ")))")
        }
        var names: [String] = []
        if case .cell(_, let cells)? = vars["class_names"] {
            names = cells.map { if case .text(let t) = $0 { return t } else { return "" } }
        }
        var entries: [(url: URL, label: Int)] = []
        for (index, item) in items.enumerated() {
            guard case .text(let file)? = item["relative_im_path"] else {
                throw DatasetError(path: url.path, problem: "annotation \(index + 1): relative_im_path is not a string")
            }
            let label = try integers(item["class"], "annotation \(index + 1) class", file: url)
            let test = try integers(item["test"], "annotation \(index + 1) test", file: url, allowZero: true)
            guard label.count == 1, test.count == 1, test[0] <= 1 else {
                throw DatasetError(path: url.path, problem: "annotation \(index + 1): class and test must be single values, test 0 or 1")
            }
            if (test[0] == 1) == (split == "test") { entries.append((root.appendingPathComponent(file), label[0] - 1)) }
        }
        let count = max(names.count, (entries.map(\.label).max() ?? -1) + 1)
        return FileListDataset(entries: entries, classNames: (0..<count).map { $0 < names.count && !names[$0].isEmpty ? names[$0] : String($0 + 1) })
    }
}
