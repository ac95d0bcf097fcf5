// `ssf report`: one offline HTML page comparing training runs (table, per-epoch and per-class charts).
import ArgumentParser
import Foundation
import SSFReport

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page comparing training runs.",
        discussion: """
        Reads each run directory's metrics.jsonl, summary.json and config.yaml (runs without a summary.json \
        are shown as unfinished) and writes a table of results and charts of training loss, evaluation loss, \
        top-1 accuracy and learning rate per epoch, and per-class accuracy. The page has no external resources.
        """)

    @Argument(help: "Run directories written by `ssf train`.") var runs: [String] = []
    @Option(help: "HTML file to write.") var output = "report.html"
    @Option(help: "Page title (default: \"SSF training report\").") var title: String?

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run directory") }
    }

    func run() throws {
        let output = URL(fileURLWithPath: self.output)
        try RunReport.write(runDirectories: runs.map { URL(fileURLWithPath: $0) }, title: title ?? "SSF training report", to: output)
        print("wrote \(output.standardizedFileURL.path) (\(runs.count) run\(runs.count == 1 ? "" : "s"))")
    }
}
