// The VTAB-1k protocol over a benchmark folder: for each task, a sweep that trains on train800 and
// chooses on val200, then the choice retrained on train800val200 and tested once; then the per-task
// table and the natural / specialized / structured group means the SSF paper reports.
import Foundation

/// A VTAB-1k task group.
public enum VTABGroup: String, Codable, CaseIterable, Sendable {
    case natural, specialized, structured
}

/// The 19 VTAB-1k tasks under the folder names of the common release (`vtab-1k/<task>/` with
/// `train800.txt`, `val200.txt`, `train800val200.txt`, `test.txt` and the images).
public enum VTABTasks {
    public static let all: [(name: String, group: VTABGroup)] = [
        ("cifar", .natural), ("caltech101", .natural), ("dtd", .natural), ("oxford_flowers102", .natural),
        ("oxford_iiit_pet", .natural), ("svhn", .natural), ("sun397", .natural),
        ("patch_camelyon", .specialized), ("eurosat", .specialized), ("resisc45", .specialized), ("diabetic_retinopathy", .specialized),
        ("clevr_count", .structured), ("clevr_dist", .structured), ("dmlab", .structured), ("kitti", .structured),
        ("dsprites_loc", .structured), ("dsprites_ori", .structured), ("smallnorb_azi", .structured), ("smallnorb_ele", .structured),
    ]

    /// The group of a task folder name (nil for a folder outside the 19).
    public static func group(of task: String) -> VTABGroup? { all.first { $0.name == task }?.group }

    /// Whether `folder` holds a VTAB-1k task (its split lists).
    public static func isTask(_ folder: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: folder.appendingPathComponent("train800val200.txt").path)
            && fm.fileExists(atPath: folder.appendingPathComponent("test.txt").path)
    }

    /// The task folders under `root`: the 19 in the paper's order, then any other folder with VTAB lists, by name.
    public static func discover(root: URL) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: root.path) } catch {
            throw ConfigError("\(root.path): cannot list the VTAB-1k folder (\(error.localizedDescription))")
        }
        let present = Set(names.filter { isTask(root.appendingPathComponent($0)) })
        return all.map(\.name).filter(present.contains) + present.subtracting(all.map(\.name)).sorted()
    }
}

/// The outcome of the protocol: one row per task, the group means and their mean.
public struct VTABSummary: Codable, Equatable, Sendable {
    public struct Task: Codable, Equatable, Sendable {
        public var name: String
        /// nil for a folder outside the 19 tasks (left out of the group means).
        public var group: VTABGroup?
        /// `finished`, `interrupted`, `failed` or `pending`.
        public var status: String
        public var chosen: String?
        public var valTop1: Double?
        public var testTop1: Double?
        public var testTop5: Double?
        public var trainImages: Int?
        public var testImages: Int?
        public var error: String?

        public init(name: String, group: VTABGroup?, status: String, chosen: String? = nil, valTop1: Double? = nil, testTop1: Double? = nil,
                    testTop5: Double? = nil, trainImages: Int? = nil, testImages: Int? = nil, error: String? = nil) {
            self.name = name; self.group = group; self.status = status; self.chosen = chosen; self.valTop1 = valTop1; self.testTop1 = testTop1
            self.testTop5 = testTop5; self.trainImages = trainImages; self.testImages = testImages; self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case name, group, status, chosen, error
            case valTop1 = "val_top1", testTop1 = "test_top1", testTop5 = "test_top5", trainImages = "train_images", testImages = "test_images"
        }
    }

    public struct GroupMean: Codable, Equatable, Sendable {
        public var group: VTABGroup
        /// Mean test top-1 over the group's tasks with a result (nil when none has one).
        public var mean: Double?
        /// Tasks with a result, and the group's tasks in the benchmark (7, 4, 8).
        public var tasks: Int
        public var of: Int
    }

    public var format = 1
    public var root: String
    public var model: String
    public var method: String
    public var tasks: [Task]
    public var groups: [GroupMean]
    /// The mean of the three group means (the paper's "mean"); nil unless every group has a result.
    public var meanOfGroups: Double?
    /// The mean over every task of the 19 with a result.
    public var meanOfTasks: Double?

    enum CodingKeys: String, CodingKey {
        case format, root, model, method, tasks, groups
        case meanOfGroups = "mean_of_groups", meanOfTasks = "mean_of_tasks"
    }

    public init(root: String, model: String, method: String, tasks: [Task]) {
        self.root = root; self.model = model; self.method = method; self.tasks = tasks
        groups = VTABGroup.allCases.map { group in
            let results = tasks.filter { $0.group == group }.compactMap(\.testTop1)
            return GroupMean(group: group, mean: results.isEmpty ? nil : results.reduce(0, +) / Double(results.count), tasks: results.count,
                             of: VTABTasks.all.filter { $0.group == group }.count)
        }
        let means = groups.compactMap(\.mean)
        meanOfGroups = means.count == groups.count ? means.reduce(0, +) / Double(means.count) : nil
        let all = tasks.filter { $0.group != nil }.compactMap(\.testTop1)
        meanOfTasks = all.isEmpty ? nil : all.reduce(0, +) / Double(all.count)
    }

    /// The per-task table and the group table, in Markdown.
    public func markdown() -> String {
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "—" }
        var out = "# VTAB-1k: \(model), \(method)\n\nRoot: `\(root)`. Each task: trials train on train800 and are chosen on val200; "
            + "the choice is retrained on train800val200 and tested once on test.\n\n"
        out += "| Task | Group | Chosen | val200 top-1 | Test top-1 | Test top-5 | Status |\n|---|---|---|---:|---:|---:|---|\n"
        for t in tasks {
            out += "| \(t.name) | \(t.group?.rawValue ?? "other") | \(t.chosen ?? "—") | \(pct(t.valTop1)) | \(pct(t.testTop1)) | \(pct(t.testTop5)) | \(t.status)"
                + (t.error.map { ": " + $0.replacingOccurrences(of: "|", with: "/").prefix(120) } ?? "") + " |\n"
        }
        out += "\n| Natural | Specialized | Structured | Mean of groups | Mean of tasks |\n|---:|---:|---:|---:|---:|\n"
        out += "| " + groups.map { g in pct(g.mean) + (g.tasks < g.of ? " (\(g.tasks)/\(g.of))" : "") }.joined(separator: " | ")
            + " | \(pct(meanOfGroups)) | \(pct(meanOfTasks)) |\n"
        out += "\nA group mean over fewer than all its tasks says how many it covers (n/of); the mean of groups needs a result in every group.\n"
        return out
    }
}

/// Runs the protocol task by task; the sweep itself is the caller's (`runTask`), so the command line and
/// the tests build their models their own way.
public struct VTABProtocol {
    public let root: URL
    public let tasks: [String]
    public let base: TrainingConfig
    public let directory: URL

    /// `tasks` empty: every task under `root`. A named task must be a folder with VTAB lists.
    public init(root: URL, tasks: [String], base: TrainingConfig, directory: URL) throws {
        self.root = root; self.base = base; self.directory = directory
        let found = try VTABTasks.discover(root: root)
        if tasks.isEmpty {
            guard !found.isEmpty else {
                throw ConfigError("\(root.path): no VTAB-1k task folders (a task folder holds train800val200.txt and test.txt)")
            }
            self.tasks = found
        } else {
            for task in tasks where !VTABTasks.isTask(root.appendingPathComponent(task)) {
                throw ConfigError("\(root.appendingPathComponent(task).path): not a VTAB-1k task folder (no train800val200.txt and test.txt)"
                                  + (found.isEmpty ? "" : "; tasks under \(root.path): \(found.joined(separator: ", "))"))
            }
            self.tasks = tasks
        }
    }

    public var summaryURL: URL { directory.appendingPathComponent("vtab.json") }
    public var tableURL: URL { directory.appendingPathComponent("vtab.md") }

    /// The configuration of one task's sweep: the base with the task as its dataset.
    public func configuration(task: String) -> TrainingConfig {
        var c = base
        c.data = "vtab:" + root.appendingPathComponent(task).path
        return c
    }

    /// Runs every task's sweep in `directory/<task>` through `runTask(task, configuration, sweepDirectory)`,
    /// which returns the sweep's record, or nil when it stopped on request (then the protocol stops too).
    /// A task whose sweep throws is recorded as failed and the others go on. The summary (vtab.json) and
    /// the table (vtab.md) are rewritten after every task.
    @discardableResult
    public func run(_ runTask: (String, TrainingConfig, URL) throws -> SweepRecord?) throws -> (summary: VTABSummary, stopped: Bool) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var rows = tasks.map { VTABSummary.Task(name: $0, group: VTABTasks.group(of: $0), status: "pending") }
        var stopped = false
        for (index, task) in tasks.enumerated() {
            do {
                guard let record = try runTask(task, configuration(task: task), directory.appendingPathComponent(task)) else {
                    rows[index].status = "interrupted"; stopped = true
                    try write(rows)
                    break
                }
                rows[index].chosen = record.chosen?.name
                rows[index].valTop1 = record.chosen?.valTop1
                rows[index].testTop1 = record.final?.testTop1
                rows[index].testTop5 = record.final?.testTop5
                rows[index].trainImages = record.final?.trainImages
                rows[index].testImages = record.final?.testImages
                rows[index].status = record.final?.testTop1 != nil ? "finished" : (record.final?.status.rawValue ?? "no final run")
                rows[index].error = record.final?.error
            } catch {
                rows[index].status = "failed"; rows[index].error = "\(error)"
            }
            try write(rows)
        }
        return (VTABSummary(root: root.path, model: base.model, method: base.method, tasks: rows), stopped)
    }

    private func write(_ rows: [VTABSummary.Task]) throws {
        let summary = VTABSummary(root: root.path, model: base.model, method: base.method, tasks: rows)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(summary).write(to: summaryURL, options: .atomic)
            try Data(summary.markdown().utf8).write(to: tableURL, options: .atomic)
        } catch {
            throw ConfigError("\(directory.path): cannot write vtab.json / vtab.md (\(error.localizedDescription))")
        }
    }
}
