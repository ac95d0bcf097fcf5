// The report read from run directories written into a temporary directory: the table's numbers,
// each chart's series, escaping of text from files, and errors that name the file and line.
import Foundation
@testable import SSFReport
import XCTest

final class RunReportTests: XCTestCase {
    private var fixtures: RunFixtures!

    override func setUpWithError() throws { fixtures = try RunFixtures() }
    override func tearDown() { fixtures.remove() }

    /// The `<tr data-run="label">` row of the runs table.
    private func row(_ page: String, _ label: String) throws -> String {
        let start = try XCTUnwrap(page.range(of: "<tr data-run=\"\(label)\""), "no row for \(label)")
        let end = try XCTUnwrap(page.range(of: "</tr>", range: start.upperBound..<page.endIndex))
        return String(page[start.lowerBound..<end.upperBound])
    }

    /// The text of a row's cell (without its note) and its note.
    private func cell(_ row: String, _ column: String) throws -> (text: String, note: String?) {
        let start = try XCTUnwrap(row.range(of: "<td data-col=\"\(column)\""), "no \(column) cell")
        let open = try XCTUnwrap(row.range(of: ">", range: start.upperBound..<row.endIndex))
        let close = try XCTUnwrap(row.range(of: "</td>", range: open.upperBound..<row.endIndex))
        let content = row[open.upperBound..<close.lowerBound].replacingOccurrences(of: "<wbr>", with: "")
        guard let note = content.range(of: "<span class=\"note\">") else { return (content, nil) }
        let noteText = content[note.upperBound...].replacingOccurrences(of: "</span>", with: "")
        return (String(content[..<note.lowerBound]), noteText)
    }

    /// The `<svg data-chart="name">…</svg>` element.
    private func chart(_ page: String, _ name: String) throws -> String {
        let start = try XCTUnwrap(page.range(of: "data-chart=\"\(name)\""), "no \(name) chart")
        let open = try XCTUnwrap(page.range(of: "<svg", options: .backwards, range: page.startIndex..<start.lowerBound))
        let close = try XCTUnwrap(page.range(of: "</svg>", range: start.upperBound..<page.endIndex))
        return String(page[open.lowerBound..<close.upperBound])
    }

    private func declaredSeries(_ svg: String) throws -> Int {
        let marker = try XCTUnwrap(svg.range(of: "data-series=\""))
        return try XCTUnwrap(Int(svg[marker.upperBound...].prefix { $0.isNumber }))
    }

    func testTableHasARowPerRunWithItsNumbers() throws {
        let page = try RunReport.html(runDirectories: try fixtures.makeThreeRuns(), title: "Fruit")
        XCTAssertEqual(page.components(separatedBy: "<tr data-run=").count - 1, 3)
        XCTAssertTrue(page.contains("<h1>Fruit</h1>"))

        let ssf = try row(page, "cifar-ssf")
        XCTAssertEqual(try cell(ssf, "model").text, "vit_base_patch16_224")
        XCTAssertEqual(try cell(ssf, "method").text, "ssf")
        XCTAssertEqual(try cell(ssf, "best_top1").text, "91.00 %")
        XCTAssertEqual(try cell(ssf, "best_top1").note, "epoch 5 · val")
        XCTAssertTrue(ssf.contains("<td data-col=\"best_top1\" class=\"num top\">"), "the highest best top-1 is marked")
        XCTAssertEqual(try cell(ssf, "final_top1").text, "91.00 %")
        XCTAssertEqual(try cell(ssf, "trainable_params").text, "282,724")
        XCTAssertEqual(try cell(ssf, "train_seconds").text, "1 min 15 s")
        XCTAssertEqual(try cell(ssf, "images_per_s").text, "415.3")
        XCTAssertEqual(try cell(ssf, "delta_bytes").text, "1.13 MiB")
        XCTAssertEqual(try cell(ssf, "peak_rss_mib").text, "1,844 MiB")
        XCTAssertEqual(try cell(ssf, "train_seconds").note, "5 epochs")
        XCTAssertEqual(try cell(ssf, "data").text, "imagefolder:/data/fruit")
        XCTAssertFalse(ssf.contains("unfinished"))

        let linear = try row(page, "cifar-linear")
        XCTAssertEqual(try cell(linear, "method").text, "linear")
        XCTAssertEqual(try cell(linear, "best_top1").text, "75.00 %")
        XCTAssertFalse(linear.contains("class=\"num top\""))
        XCTAssertEqual(try cell(linear, "trainable_params").text, "76,900")
        XCTAssertEqual(try cell(linear, "train_seconds").text, "1 h 02 min")
        XCTAssertEqual(try cell(linear, "delta_bytes").text, "—", "no delta file")

        // Unfinished: method and model from config.yaml, best top-1 and time from the two epochs so far.
        let lora = try row(page, "cifar-lora")
        XCTAssertTrue(lora.contains("<span class=\"badge\" title=\"no summary.json: still running or stopped\">unfinished</span>"))
        XCTAssertEqual(try cell(lora, "method").text, "lora")
        XCTAssertEqual(try cell(lora, "model").text, "vit_base_patch16_224")
        XCTAssertEqual(try cell(lora, "best_top1").text, "70.00 %")
        XCTAssertEqual(try cell(lora, "best_top1").note, "epoch 2 · so far")
        XCTAssertEqual(try cell(lora, "final_top1").text, "—")
        XCTAssertEqual(try cell(lora, "trainable_params").text, "—")
        XCTAssertEqual(try cell(lora, "train_seconds").text, "26.0 s")
        XCTAssertEqual(try cell(lora, "train_seconds").note, "2 of 10 epochs · so far")
        XCTAssertTrue(page.contains("3 runs (1 unfinished)"))
        XCTAssertTrue(page.contains("Highest top-1: <strong>91.00 %</strong>"))
    }

    func testEachChartDeclaresOneSeriesPerRunWithValues() throws {
        let page = try RunReport.html(runDirectories: try fixtures.makeThreeRuns(), title: "Fruit")
        for (name, expected) in [("loss", 3), ("eval_loss", 3), ("top1", 3), ("lr", 3), ("per_class", 2)] {
            let svg = try chart(page, name)
            XCTAssertEqual(try declaredSeries(svg), expected, name)
            XCTAssertEqual(svg.components(separatedBy: "class=\"series\"").count - 1, expected, name)
            XCTAssertTrue(svg.contains("class=\"legend\""), name)
        }
        // One point per epoch: five markers for a five-epoch run, two for the unfinished one.
        let top1 = try chart(page, "top1")
        let groups = top1.components(separatedBy: "<g class=\"series\"").dropFirst()
        XCTAssertEqual(groups.map { $0.components(separatedBy: "class=\"marker\"").count - 1 }, [5, 5, 2])
        // Per-class: one dot per class and run.
        XCTAssertEqual(try chart(page, "per_class").components(separatedBy: "class=\"dot\"").count - 1, 8)
    }

    func testTextFromFilesIsEscaped() throws {
        var runs = try fixtures.makeThreeRuns()
        runs.append(try fixtures.makeRun("a<i>&'b", method: "bias<x>",
                                         metrics: RunFixtures.metricsLines(epochs: 2, startLoss: 2, startTop1: 50, gain: 5),
                                         summary: RunFixtures.summary(method: "bias<x>", best: 60, bestEpoch: 2, final: 60, params: 10, seconds: 1,
                                                                      perClass: [RunFixtures.oddClass: 60], delta: nil)))
        let page = try RunReport.html(runDirectories: runs, title: "<Fruit & co>")
        XCTAssertFalse(page.contains(RunFixtures.oddClass))
        XCTAssertTrue(page.contains("&lt;b&gt;&amp;&quot;x"))
        XCTAssertFalse(page.contains("a<i>"))
        XCTAssertTrue(page.contains("a&lt;i&gt;&amp;&#39;b"))
        XCTAssertFalse(page.contains("bias<x>"))
        XCTAssertTrue(page.contains("<title>&lt;Fruit &amp; co&gt;</title>"))
        // Only the page's own markup: no element the files could have opened.
        XCTAssertFalse(page.contains("<i>") || page.contains("<b>") || page.contains("<x>"))
    }

    func testPageIsSelfContained() throws {
        let output = fixtures.url("out.html")
        try RunReport.write(runDirectories: try fixtures.makeThreeRuns(), title: "Fruit", to: output)
        let page = try String(contentsOf: output, encoding: .utf8)
        XCTAssertTrue(page.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(page.hasSuffix("</html>\n"))
        for external in ["http:", "https:", "src=", "href=", "url(", "@import", "<link", "<img"] {
            XCTAssertFalse(page.contains(external), "the page refers to something outside itself: \(external)")
        }
        XCTAssertTrue(page.contains("Content-Security-Policy\" content=\"default-src 'none';"))
        XCTAssertTrue(page.contains("<pre id=\"report-check\" hidden></pre>"))
        // No temporary file left next to the output.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fixtures.root.path).sorted(), ["cifar-linear", "cifar-lora", "cifar-ssf", "out.html"])
    }

    func testUnwritableOutputNamesThePath() throws {
        let runs = try fixtures.makeThreeRuns()
        let output = fixtures.url("no/such/dir/report.html")
        XCTAssertThrowsError(try RunReport.write(runDirectories: runs, title: "t", to: output)) { error in
            XCTAssertEqual(String(describing: error), "\(output.path): cannot be written (no folder \(output.deletingLastPathComponent().path))")
        }
        let directory = fixtures.url("cifar-ssf")
        XCTAssertThrowsError(try RunReport.write(runDirectories: runs, title: "t", to: directory)) { error in
            XCTAssertEqual(String(describing: error), "\(directory.path): cannot be written (it is a directory)")
        }
    }

    func testMalformedMetricsNameTheFileAndLine() throws {
        let good = RunFixtures.metricsLines(epochs: 3, startLoss: 2, startTop1: 50, gain: 5)
        let cases: [(lines: [String], expected: String)] = [
            ([good[0], #"{"epoch": 1, "top1": "#, good[2]], ":2: not valid JSON"),
            ([good[0], good[1], #"{"epoch": 2, "top1": "high"}"#], ":3: 'top1' is not a number"),
            ([#"{"top1": 50}"#], ":1: no 'epoch'"),
            ([good[0], "[1, 2]"], ":2: expected a JSON object"),
            ([#"{"epoch": 1.5}"#], ":1: 'epoch' is not an integer"),
        ]
        for (index, c) in cases.enumerated() {
            let dir = try fixtures.makeRun("bad\(index)", method: "ssf", metrics: c.lines, summary: nil)
            XCTAssertThrowsError(try RunReport.html(runDirectories: [dir], title: "t")) { error in
                let message = String(describing: error)
                XCTAssertTrue(message.contains(dir.appendingPathComponent("metrics.jsonl").path + c.expected), message)
            }
        }
    }

    func testMalformedSummaryNamesTheFile() throws {
        let metrics = RunFixtures.metricsLines(epochs: 1, startLoss: 2, startTop1: 50, gain: 5)
        let broken = try fixtures.makeRun("broken", method: "ssf", metrics: metrics, summary: nil)
        try Data("{\"best_top1\": ".utf8).write(to: broken.appendingPathComponent("summary.json"))
        let wrongType = try fixtures.makeRun("wrong", method: "ssf", metrics: metrics, summary: ["best_top1": "ninety", "per_class_top1": [:]])
        let badClasses = try fixtures.makeRun("classes", method: "ssf", metrics: metrics, summary: ["per_class_top1": ["a": "x"]])
        let expectations = [(broken, "summary.json: not valid JSON"), (wrongType, "summary.json: 'best_top1' is not a number"),
                            (badClasses, "summary.json: 'per_class_top1' holds a value that is not a number")]
        for (dir, expected) in expectations {
            XCTAssertThrowsError(try RunReport.html(runDirectories: [dir], title: "t")) { error in
                XCTAssertTrue(String(describing: error).contains(dir.path + "/" + expected), "\(error)")
            }
        }
    }

    func testDirectoryThatIsNotARunIsNamed() throws {
        let empty = fixtures.url("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try RunReport.html(runDirectories: [empty], title: "t")) { error in
            XCTAssertEqual(String(describing: error), "\(empty.path) is not a run directory: it has no metrics.jsonl")
        }
        let missing = fixtures.url("missing")
        XCTAssertThrowsError(try RunReport.html(runDirectories: [missing], title: "t")) { error in
            XCTAssertEqual(String(describing: error), "\(missing.path): no such directory")
        }
        XCTAssertThrowsError(try RunReport.html(runDirectories: [], title: "t")) { error in
            XCTAssertEqual(String(describing: error), "no run directories given")
        }
    }

    func testOlderRunWithoutNewerFieldsShowsDashes() throws {
        // An older trainer: no lr or throughput per epoch; no delta size, memory, throughput or per-class accuracy in the summary.
        let metrics = (0..<3).map { #"{"epoch":\#($0),"eval_loss":1.2,"top1":\#(60 + $0),"top5":90,"train_loss":1.5}"# }
        let old = try fixtures.makeRun("old", method: "ssf", metrics: metrics,
                                       summary: ["model": "vit_base_patch16_224", "method": "ssf", "best_top1": 62, "best_epoch": 3,
                                                 "final_top1": 62, "trainable_params": 282_724, "train_seconds": 30], config: false)
        var runs = try fixtures.makeThreeRuns()
        runs.insert(old, at: 0)
        let page = try RunReport.html(runDirectories: runs, title: "t")
        let row = try row(page, "old")
        for column in ["images_per_s", "delta_bytes", "peak_rss_mib", "data"] {
            XCTAssertEqual(try cell(row, column).text, "—", column)
        }
        XCTAssertEqual(try cell(row, "best_top1").text, "62.00 %")
        XCTAssertEqual(try cell(row, "best_top1").note, "epoch 3")
        XCTAssertEqual(try declaredSeries(try chart(page, "lr")), 3)
        XCTAssertTrue(page.contains("Learning rate (at the end of the epoch)<span class=\"note\">not recorded by old</span>"))
        XCTAssertEqual(try declaredSeries(try chart(page, "loss")), 4)
        XCTAssertTrue(page.contains("no per-class accuracy in old, cifar-lora"))
    }

    func testCollidingDirectoryNamesGetDistinctLabels() throws {
        let metrics = RunFixtures.metricsLines(epochs: 2, startLoss: 2, startTop1: 50, gain: 5)
        let a = try fixtures.makeRun("flowers/run", method: "ssf", metrics: metrics, summary: nil)
        let b = try fixtures.makeRun("cars/run", method: "ssf", metrics: metrics, summary: nil)
        let c = try fixtures.makeRun("single", method: "ssf", metrics: metrics, summary: nil)
        XCTAssertEqual(try RunRecord.read([a, b, c]).map(\.label), ["flowers/run", "cars/run", "single"])
        XCTAssertEqual(try RunRecord.read([a, a]).map(\.label), ["run", "run #2"])
    }

    func testTickLabelsAndNumberFormats() {
        let lr = Ticks(low: 0, high: 1e-3, count: 5)
        XCTAssertEqual(lr.values.map(lr.label), ["0", "2e-4", "4e-4", "6e-4", "8e-4", "1e-3"])
        let loss = Ticks(low: 0.43, high: 2.31, count: 5)
        XCTAssertEqual(loss.values.map(loss.label), ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5"])
        let epochs = Ticks(low: 1, high: 100, count: 6, integer: true)
        XCTAssertEqual(epochs.step, 20)
        let flat = Ticks(low: 5, high: 5)
        XCTAssertLessThan(flat.lower, 5)
        XCTAssertGreaterThan(flat.upper, 5)
        XCTAssertEqual(Format.integer(85_875_556), "85,875,556")
        XCTAssertEqual(Format.integer(999), "999")
        XCTAssertEqual(Format.duration(8.44), "8.4 s")
        XCTAssertEqual(Format.duration(192), "3 min 12 s")
        XCTAssertEqual(Format.bytes(512), "512 B")
        XCTAssertEqual(Format.bytes(2048), "2.0 KiB")
        XCTAssertEqual(escapeHTML("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;")
    }
}
