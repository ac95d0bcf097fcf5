// The VTAB-1k protocol end to end on a synthetic miniature of the benchmark's layout: task folders
// with the four list files and their images, a sweep per task with a tiny ViT, the group table.
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFTraining
import SSFTuning
import XCTest

final class VTABProtocolTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-vtab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// A task folder: 3 colour classes of 16×16 PNGs; train800 6, val200 3, train800val200 9, test 6 images.
    /// `missingTestImage` names an image in test.txt that is not there.
    private func makeTask(_ name: String, seed: UInt64, missingTestImage: Bool = false) throws {
        let folder = scratch.appendingPathComponent("vtab-1k/\(name)")
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        var rng = RandomGenerator(seed: seed)
        var lines: [String] = []
        for i in 0..<15 {
            let label = i % 3
            var pixels: [UInt8] = []
            for _ in 0..<256 {
                for c in 0..<3 { pixels.append(UInt8(max(0, min(255, (c == label ? 200 : 60) + Int(rng.nextNormal() * 25))))) }
            }
            try RGBImage(width: 16, height: 16, pixels: pixels).pngData().write(to: images.appendingPathComponent("\(i).png"))
            lines.append("images/\(i).png \(label)")
        }
        if missingTestImage { lines[14] = "images/missing.png 2" }
        func list(_ file: String, _ range: Range<Int>) throws {
            try Data((lines[range].joined(separator: "\n") + "\n").utf8).write(to: folder.appendingPathComponent(file))
        }
        try list("train800.txt", 0..<6); try list("val200.txt", 6..<9); try list("train800val200.txt", 0..<9); try list("test.txt", 9..<15)
    }

    private func base() -> TrainingConfig {
        var c = try! TrainingConfig.preset("vtab")
        c.model = "tiny-vit"; c.method = "ssf"
        c.epochs = 1; c.cooldownEpochs = 0; c.warmupEpochs = 0; c.batchSize = 3; c.workers = 1
        return c
    }

    private let preprocess = PreprocessConfig(inputSize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropFraction: 1, interpolation: .bicubic)

    /// A sweep per task exactly as `ssf vtab` runs it, with an SSF-tuned tiny ViT.
    private func runTask(_ task: String, _ config: TrainingConfig, _ directory: URL) throws -> SweepRecord? {
        let data = try SweepData.open(config: config, validation: .automatic, withTest: true)
        let sweep = try Sweep(directory: directory, base: config, grid: try SweepGrid(parsing: ["lr=1e-2,3e-2"]), data: data) { [preprocess] config, classes in
            var rng = RandomGenerator(seed: config.seed)
            let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: classes, embedDim: 16, depth: 1, numHeads: 2),
                                          using: &rng)
            TuningMethod.ssf.apply(to: model, using: &rng)
            return RunModel(model: model, method: .ssf, preprocess: preprocess)
        }
        return try sweep.run(resume: false) == .finished ? sweep.record : nil
    }

    func testWholeProtocolOnAMiniatureWritesTheGroupTable() throws {
        try makeTask("eurosat", seed: 2)
        try makeTask("dtd", seed: 1)
        try makeTask("clevr_count", seed: 3)
        try makeTask("kitti", seed: 4, missingTestImage: true)
        try makeTask("my_task", seed: 5)
        // A folder without the lists is not a task.
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("vtab-1k/notes"), withIntermediateDirectories: true)

        let root = scratch.appendingPathComponent("vtab-1k"), output = scratch.appendingPathComponent("out")
        let vtab = try VTABProtocol(root: root, tasks: [], base: base(), directory: output)
        // The paper's order, then other task folders by name.
        XCTAssertEqual(vtab.tasks, ["dtd", "eurosat", "clevr_count", "kitti", "my_task"])
        XCTAssertEqual(vtab.configuration(task: "dtd").data, "vtab:" + root.appendingPathComponent("dtd").path)

        var seen: [String] = []
        let (summary, stopped) = try vtab.run { task, config, directory in
            seen.append(task)
            return try self.runTask(task, config, directory)
        }
        XCTAssertFalse(stopped)
        XCTAssertEqual(seen, vtab.tasks)
        let byName = Dictionary(uniqueKeysWithValues: summary.tasks.map { ($0.name, $0) })
        for task in ["dtd", "eurosat", "clevr_count", "my_task"] {
            let row = try XCTUnwrap(byName[task])
            XCTAssertEqual(row.status, "finished", "\(task): \(row.error ?? "")")
            XCTAssertEqual(row.trainImages, 9)   // the final run trains on train800val200
            XCTAssertEqual(row.testImages, 6)
            XCTAssertNotNil(row.valTop1)
            XCTAssertTrue(["000-lr=0.01", "001-lr=0.03"].contains(row.chosen ?? ""), "\(row.chosen ?? "nil")")
            // The task's own sweep record agrees.
            let record = try SweepRecord(contentsOf: output.appendingPathComponent("\(task)/sweep.json"))
            XCTAssertEqual(record.final?.testTop1, row.testTop1)
            XCTAssertEqual(record.splits.trialTrainImages, 6)
            XCTAssertEqual(record.splits.validationImages, 3)
        }
        // The task with a missing test image failed with the file named; the others went on.
        let kitti = try XCTUnwrap(byName["kitti"])
        XCTAssertEqual(kitti.status, "failed")
        XCTAssertTrue(kitti.error?.contains("missing.png") ?? false, kitti.error ?? "nil")
        XCTAssertNil(byName["my_task"]?.group)

        // Group means: one task each (kitti failed, my_task is outside the 19).
        let top1 = { (name: String) in byName[name]!.testTop1! }
        XCTAssertEqual(summary.groups.map(\.group), [.natural, .specialized, .structured])
        XCTAssertEqual(summary.groups.map(\.tasks), [1, 1, 1])
        XCTAssertEqual(summary.groups.map(\.of), [7, 4, 8])
        XCTAssertEqual(summary.groups[0].mean!, top1("dtd"), accuracy: 1e-9)
        XCTAssertEqual(summary.groups[1].mean!, top1("eurosat"), accuracy: 1e-9)
        XCTAssertEqual(summary.groups[2].mean!, top1("clevr_count"), accuracy: 1e-9)
        XCTAssertEqual(summary.meanOfGroups!, (top1("dtd") + top1("eurosat") + top1("clevr_count")) / 3, accuracy: 1e-9)
        XCTAssertEqual(summary.meanOfTasks!, (top1("dtd") + top1("eurosat") + top1("clevr_count")) / 3, accuracy: 1e-9)

        // The files: the JSON summary reads back equal, and the Markdown has both tables.
        let written = try JSONDecoder().decode(VTABSummary.self, from: Data(contentsOf: vtab.summaryURL))
        XCTAssertEqual(written, summary)
        let table = try String(contentsOf: vtab.tableURL, encoding: .utf8)
        XCTAssertTrue(table.contains("| Natural | Specialized | Structured | Mean of groups | Mean of tasks |"), table)
        XCTAssertTrue(table.contains("(1/7)"), table)
        XCTAssertTrue(table.contains("| kitti | structured | — | — | — | — | failed"), table)
    }

    func testGroupMeansAveragePerGroupThenOverGroups() {
        func task(_ name: String, _ top1: Double?) -> VTABSummary.Task {
            VTABSummary.Task(name: name, group: VTABTasks.group(of: name), status: top1 == nil ? "failed" : "finished", testTop1: top1)
        }
        let summary = VTABSummary(root: "/v", model: "m", method: "ssf",
                                  tasks: [task("cifar", 70), task("dtd", 60), task("eurosat", 90), task("kitti", 50), task("dmlab", 40), task("svhn", nil)])
        XCTAssertEqual(summary.groups.map(\.mean), [65, 90, 45])
        XCTAssertEqual(summary.meanOfGroups!, (65 + 90 + 45) / 3, accuracy: 1e-12)
        XCTAssertEqual(summary.meanOfTasks!, (70 + 60 + 90 + 50 + 40) / 5, accuracy: 1e-12)
        XCTAssertNil(VTABSummary(root: "/v", model: "m", method: "ssf", tasks: [task("cifar", 70)]).meanOfGroups)
        XCTAssertEqual(VTABTasks.all.count, 19)
    }

    func testNamedTaskThatIsNotAFolderIsRefused() throws {
        try makeTask("dtd", seed: 1)
        XCTAssertThrowsError(try VTABProtocol(root: scratch.appendingPathComponent("vtab-1k"), tasks: ["dtd", "svhn"], base: base(),
                                              directory: scratch.appendingPathComponent("out"))) { error in
            XCTAssertTrue("\(error)".contains("svhn") && "\(error)".contains("tasks under"), "\(error)")
        }
        XCTAssertThrowsError(try VTABProtocol(root: scratch.appendingPathComponent("empty"), tasks: [], base: base(), directory: scratch)) { error in
            XCTAssertTrue("\(error)".contains("cannot list"), "\(error)")
        }
    }
}
