// Every dataset format on the samples of tools/gen_dataset_fixtures.py, spec parsing, and malformed input.
import Foundation
import XCTest
import SSFEngine
@testable import SSFData

final class DatasetTests: XCTestCase {
    private func root() throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: "datasets", withExtension: nil, subdirectory: "Fixtures"))
    }

    func testEveryFormatMatchesItsExpectation() throws {
        let root = try root()
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("expected.json")))
        let all = try XCTUnwrap(json as? [String: [String: Any]])
        XCTAssertGreaterThanOrEqual(all.count, 20)
        for (key, want) in all.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let path = root.appendingPathComponent(parts[1]).path
            let text = (parts[0].isEmpty ? "" : parts[0] + ":") + path + (parts[2].isEmpty ? "" : ":" + parts[2])
            let spec = try DatasetSpec(parsing: text)
            if !parts[0].isEmpty { XCTAssertEqual(spec.format.rawValue, parts[0], key) }
            let data = try spec.open(split: "train")
            let labels = try (0..<data.count).map { try data.sample(at: $0).label }
            XCTAssertEqual(labels, want["labels"] as? [Int], key)
            if let classes = want["classes"] as? [String] { XCTAssertEqual(data.classNames, classes, key) }
            if let prefix = want["classes_prefix"] as? [String] { XCTAssertEqual(Array(data.classNames.prefix(prefix.count)), prefix, key) }
            if let n = want["class_count"] as? Int { XCTAssertEqual(data.classNames.count, n, key) }
            if let files = want["files"] as? [String] {
                XCTAssertEqual((0..<data.count).map { data.identity(at: $0) }, files.map { root.appendingPathComponent($0).path }, key)
            }
            let probeAt = want["probe_at"] as? [Int] ?? [0, 0]
            for i in 0..<data.count {
                let image = try data.sample(at: i).image
                let p = (probeAt[0] * image.width + probeAt[1]) * 3
                if let probes = want["probe"] as? [[Int]] {
                    XCTAssertEqual(image.pixels[p..<p + 3].map(Int.init), probes[i], "\(key) record \(i)")
                    XCTAssertEqual(image.pixels.reduce(0) { $0 + Int($1) }, (want["sums"] as! [Int])[i], "\(key) record \(i)")
                }
                if let gray = want["gray_probe"] as? [Int] {
                    XCTAssertEqual([image.width, image.height], want["size"] as? [Int], key)
                    XCTAssertEqual(image.pixels[p..<p + 3].map(Int.init), [Int](repeating: gray[i], count: 3), "\(key) record \(i)")
                }
            }
        }
    }

    func testSpecParsingAndDetection() throws {
        let spec = try DatasetSpec(parsing: "cifar100:/data/cifar-100-python")
        XCTAssertEqual(spec, DatasetSpec(format: .cifar100, path: "/data/cifar-100-python"))
        XCTAssertEqual(try DatasetSpec(parsing: "vtab:/data/vtab-1k/dtd:test"), DatasetSpec(format: .vtab, path: "/data/vtab-1k/dtd", split: "test"))
        XCTAssertEqual(try DatasetSpec(parsing: "fashion-mnist:/d/fm").format, .fashionMnist)
        let root = try root()
        for (folder, format) in [("folder", DatasetSpec.Format.imagefolder), ("cifar-10-batches-bin", .cifar10), ("cifar-100-binary", .cifar100),
                                 ("cub/CUB_200_2011", .cub), ("nabirds", .nabirds), ("dogs", .dogs), ("mnist", .mnist),
                                 ("fashion-mnist", .fashionMnist), ("vtab/dtd", .vtab), ("list/labels.txt", .list),
                                 ("flowers", .flowers102), ("cars", .cars)] {
            XCTAssertEqual(try DatasetSpec.detect(root.appendingPathComponent(folder)), format, folder)
        }
        XCTAssertThrowsError(try DatasetSpec(parsing: "/nonexistent/data")) { XCTAssertTrue("\($0)".contains("/nonexistent/data")) }
    }

    /// Flowers-102 and Stanford Cars name their splits, and a struct array reads back field by field.
    func testFlowersAndCarsSplitsAndStructArrays() throws {
        let root = try root()
        XCTAssertThrowsError(try DatasetSpec(parsing: "flowers102:" + root.appendingPathComponent("flowers").path).open(split: "train800")) {
            XCTAssertTrue("\($0)".contains("train, val and test"), "\($0)")
        }
        XCTAssertThrowsError(try DatasetSpec(parsing: "stanford-cars:" + root.appendingPathComponent("cars").path).open(split: "val")) {
            XCTAssertTrue("\($0)".contains("train and test"), "\($0)")
        }
        XCTAssertThrowsError(try FileListDataset.flowers102(root.appendingPathComponent("cars"), split: "train")) {
            XCTAssertTrue("\($0)".contains("imagelabels.mat"), "\($0)")
        }
        let vars = try readMatFile(root.appendingPathComponent("cars/cars_annos.mat"))
        guard case .structure(let dims, let fields, let items)? = vars["annotations"] else { return XCTFail("annotations is not a struct array") }
        XCTAssertEqual(dims, [1, 4])
        XCTAssertEqual(fields, ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"])
        guard case .text(let path)? = items[1]["relative_im_path"], case .numeric(_, let box)? = items[1]["bbox_x2"] else {
            return XCTFail("annotation 2 lacks its path or box")
        }
        XCTAssertEqual(path, "car_ims/000002.jpg")
        XCTAssertEqual(box, [5])
    }

    func testBadImagesAndMalformedFilesNameThePath() throws {
        let root = try root()
        let data = try DatasetSpec(parsing: "imagefolder:" + root.appendingPathComponent("bad").path).open(split: "train")
        XCTAssertEqual(data.count, 2)
        XCTAssertThrowsError(try data.sample(at: 0)) { XCTAssertTrue("\($0)".contains("bad/train/x/broken.jpg"), "\($0)") }
        XCTAssertThrowsError(try PixelArrayDataset.cifar(root.appendingPathComponent("cifar-bad"), variant: .cifar10, split: "train")) {
            XCTAssertTrue("\($0)".contains("cifar-bad/data_batch_1") && "\($0)".contains("collections.OrderedDict"), "\($0)")
        }
        XCTAssertThrowsError(try DatasetSpec(format: .imagefolder, path: root.appendingPathComponent("folder").path).open(split: "val")) {
            XCTAssertTrue("\($0)".contains("no val folder"), "\($0)")
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-bad-list-\(getpid()).txt")
        try "a.jpg cat\n".write(to: tmp, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tmp) }
        XCTAssertThrowsError(try FileListDataset.list(tmp)) { XCTAssertTrue("\($0)".contains(tmp.path) && "\($0)".contains("line 1"), "\($0)") }
        let mat = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-bad-\(getpid()).mat")
        var bytes = try [UInt8](Data(contentsOf: root.appendingPathComponent("dogs/test_list.mat")))
        bytes.removeLast(40)
        try Data(bytes).write(to: mat)
        defer { try? FileManager.default.removeItem(at: mat) }
        XCTAssertThrowsError(try readMatFile(mat)) { XCTAssertTrue("\($0)".contains(mat.path) && "\($0)".contains("truncated"), "\($0)") }
    }

    /// Truncated and bit-flipped pickles, MAT files and gzip streams give errors, never crashes.
    func testDamagedFilesNeverCrash() throws {
        let root = try root()
        var rng = SSFEngine.RandomGenerator(seed: 21)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-fuzz-\(getpid()).mat")
        defer { try? FileManager.default.removeItem(at: tmp) }
        for name in ["cifar-10-batches-py/test_batch", "cifar-100-python/meta", "dogs/train_list.mat", "dogs/test_list.mat", "cars/cars_annos.mat",
                     "mnist/train-images-idx3-ubyte.gz"] {
            let bytes = try [UInt8](Data(contentsOf: root.appendingPathComponent(name)))
            var variants = stride(from: 0, to: bytes.count - 1, by: max(1, bytes.count / 60)).map { Array(bytes[..<$0]) }
            for _ in 0..<150 {
                var damaged = bytes
                for _ in 0..<3 { damaged[rng.integer(0, bytes.count - 1)] ^= UInt8(1 << rng.integer(0, 7)) }
                variants.append(damaged)
            }
            for (k, variant) in variants.enumerated() {
                if name.hasSuffix(".mat") {
                    try Data(variant).write(to: tmp)
                    _ = try? readMatFile(tmp)
                } else if name.hasSuffix(".gz") {
                    _ = try? gunzipIfNeeded(variant, limit: 1 << 20, path: name)
                } else if k < 60 {
                    XCTAssertThrowsError(try readCIFARPickle(variant, path: name), "\(name) cut at \(variant.count)")
                } else {
                    _ = try? readCIFARPickle(variant, path: name)
                }
            }
        }
    }
}
