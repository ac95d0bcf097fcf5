// `ssf vtab`: the VTAB-1k protocol over a benchmark folder, task by task, then the group table.
import ArgumentParser
import Foundation
import SSFTraining

struct VTABCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vtab",
        abstract: "Run the VTAB-1k protocol over every task of a benchmark folder and report the group means.",
        discussion: """
        --root is a VTAB-1k folder: one folder per task (cifar, caltech101, dtd, …, smallnorb_ele) holding \
        train800.txt, val200.txt, train800val200.txt and test.txt ("path label" lines) and the images. For \
        each task (--tasks, default every task folder found) a sweep as `ssf sweep` runs it: the trials train \
        on train800 and are compared on val200, the choice is retrained from scratch on train800val200 and \
        tested once on test. Settings resolve as in `ssf train`, with --preset vtab unless another is given \
        (direct resize to the model's size, no label smoothing, batch 64, AdamW). Without --grid the trials \
        are lr = base lr × 1/3, 1 and 3.

        OUTPUT gets one sweep directory per task (sweep.json, report.html, trials/, final/) and, rewritten \
        after every task, vtab.json and vtab.md: per task the choice, its val200 top-1 and the test top-1/top-5; \
        then the natural (7 tasks), specialized (4) and structured (8) means, their mean (the paper's "mean") \
        and the mean over tasks. A task that fails is recorded and the others go on. Ctrl-C stops at a \
        resumable point; the same command with --resume continues (finished runs are kept).
        """)

    @OptionGroup var flags: TrainingFlags
    @Option(help: "The VTAB-1k folder (one folder per task).") var root: String
    @Option(help: "Tasks to run, comma-separated (default: every task folder under --root).") var tasks: String?
    @Option(name: .customLong("grid"), help: ArgumentHelp("A configuration key and its values (repeat for more keys); default lr = base × 1/3, 1, 3.", valueName: "key=v1,v2"))
    var grid: [String] = []
    @Option(help: ArgumentHelp("The output directory.", valueName: "dir")) var output: String
    @Flag(help: "Continue in --output: finished tasks and runs are kept, stopped runs continue.") var resume = false
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if flags.data != nil { throw ValidationError("--data is not used: each task's dataset is its folder under --root") }
    }

    func run() throws {
        threadOptions.apply()
        var settings = flags
        settings.preset = settings.preset ?? "vtab"
        // The dataset is replaced per task; the checks of the settings need one.
        let base = try settings.resolvedConfig(extra: ["data": "vtab:" + root])
        let grid = self.grid.isEmpty ? ["lr=" + [base.lr / 3, base.lr, base.lr * 3].map { String(format: "%g", $0) }.joined(separator: ",")] : self.grid
        let chosenTasks = tasks.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } } ?? []
        let vtab: VTABProtocol
        do {
            vtab = try VTABProtocol(root: URL(fileURLWithPath: root), tasks: chosenTasks, base: base, directory: URL(fileURLWithPath: output))
        } catch let error as ConfigError { throw ValidationError(error.description) }
        let outputURL = URL(fileURLWithPath: output)
        if !resume, let contents = try? FileManager.default.contentsOfDirectory(atPath: outputURL.path), !contents.isEmpty {
            throw ValidationError("\(output) is not empty: run the same command with --resume to continue there, or choose another --output")
        }
        print("VTAB-1k: \(vtab.tasks.count) task\(vtab.tasks.count == 1 ? "" : "s") (\(vtab.tasks.joined(separator: ", "))), \(base.model) \(base.method), grid \(grid.joined(separator: " "))")
        let (summary, stopped) = try vtab.run { task, config, directory in
            print("\n== \(task) (\(VTABTasks.group(of: task)?.rawValue ?? "not one of the 19 tasks")) ==")
            let (record, outcome) = try SweepCommand.execute(base: config, grid: grid, validation: .automatic, halving: nil, runsFinal: true,
                                                             directory: directory, resume: resume)
            return outcome == .interrupted ? nil : record
        }
        print("\n" + summary.markdown())
        print(stopped ? "stopped; run the same command with --resume to continue" : "wrote \(vtab.summaryURL.path) and \(vtab.tableURL.path)")
        let failed = summary.tasks.filter { $0.status == "failed" }
        if !failed.isEmpty {
            for task in failed { printError("\(task.name): failed: \(task.error ?? "")") }
            throw ExitCode.failure
        }
    }
}
