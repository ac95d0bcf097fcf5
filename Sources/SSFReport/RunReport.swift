// The report's entry points: read run directories, render one page, write it atomically.
import Foundation

/// An offline HTML page comparing training runs: a table of results and per-epoch and per-class charts.
public enum RunReport {
    /// Reads the run directories and renders one page.
    public static func html(runDirectories: [URL], title: String) throws -> String {
        guard !runDirectories.isEmpty else { throw ReportError("no run directories given") }
        return ReportPage(runs: try RunRecord.read(runDirectories), title: title).html()
    }

    /// Renders and writes atomically.
    public static func write(runDirectories: [URL], title: String, to output: URL) throws {
        try writePage(try html(runDirectories: runDirectories, title: title), to: output)
    }

    /// Writes a page atomically; the error names the output and the problem.
    static func writePage(_ page: String, to output: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ReportError("\(output.path): cannot be written (it is a directory)")
        }
        let folder = output.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: folder.path) else {
            throw ReportError("\(output.path): cannot be written (no folder \(folder.path))")
        }
        do {
            try Data(page.utf8).write(to: output, options: .atomic)
        } catch {
            throw ReportError("\(output.path): cannot be written (\(error.localizedDescription))")
        }
    }
}
