// The sweep page: its trials table (validation top-1 per rung, the chosen row), the final run's test
// figures, the curves drawn from the trials' run directories, escaping, and the page's self-check in
// headless Chromium.
import Foundation
import SSFReport
import XCTest

final class SweepReportTests: XCTestCase {
    private var fixtures: RunFixtures!

    override func setUpWithError() throws { fixtures = try RunFixtures() }
    override func tearDown() { fixtures.remove() }

    /// Four trials over two rungs: two reached rung 1 (one chosen), one was pruned, one has not run.
    private func content(final: Bool = true) throws -> SweepPageContent {
        let metrics = { (epochs: Int, top1: Double) in RunFixtures.metricsLines(epochs: epochs, startLoss: 2.3, startTop1: top1, gain: 5) }
        let a = try fixtures.makeRun("trials/000-lr=0.001/rung-1", method: "ssf", metrics: metrics(6, 60), summary: nil)
        let b = try fixtures.makeRun("trials/001-lr=0.01/rung-1", method: "ssf", metrics: metrics(6, 50), summary: nil)
        let c = try fixtures.makeRun("trials/002-aa=_b_/rung-0", method: "ssf", metrics: metrics(2, 40), summary: nil)
        let finalDirectory = try fixtures.makeRun("final", method: "ssf", metrics: metrics(6, 70), summary: nil)
        let trials = [
            SweepPageContent.Trial(name: "000-lr=0.001", values: ["0.001", "null"], valTop1ByRung: [62.5, 85.25], epochsByRung: [2, 6],
                                   trainSeconds: 40, status: "finished", chosen: true, runDirectory: a),
            SweepPageContent.Trial(name: "001-lr=0.01", values: ["0.01", "null"], valTop1ByRung: [61, 80], epochsByRung: [2, 6],
                                   trainSeconds: 41, status: "finished", chosen: false, runDirectory: b),
            SweepPageContent.Trial(name: "002-aa=_b_", values: ["0.001", RunFixtures.oddClass], valTop1ByRung: [45, nil], epochsByRung: [2, nil],
                                   trainSeconds: 10, status: "pruned", chosen: false, runDirectory: c),
            SweepPageContent.Trial(name: "003-lr=0.1", values: ["0.1", "null"], valTop1ByRung: [nil, nil], epochsByRung: [nil, nil],
                                   trainSeconds: nil, status: "pending", chosen: false, runDirectory: nil),
        ]
        return SweepPageContent(
            title: "ssf sweep: fruit", status: final ? "finished" : "interrupted", keys: ["lr", "aa"], rungs: 2,
            validation: "Trials train on train (640 images) and are validated on val (160 images)",
            method: "Successive halving with η = 3 over 2 rungs.", trials: trials,
            final: final ? SweepPageContent.Final(status: "finished", epochs: 6, trainSplit: "train+val", trainImages: 800, testSplit: "test",
                                                   testImages: 400, testTop1: 83.1, testTop5: 97.5, trainSeconds: 52, directory: finalDirectory) : nil)
    }

    func testTrialsTableChoiceFinalFiguresAndCurves() throws {
        let html = SweepReport.html(try content())
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<meta name=\"generator\" content=\"ssf sweep\">"))
        XCTAssertTrue(html.contains("Content-Security-Policy"))
        for name in ["000-lr=0.001", "001-lr=0.01", "002-aa=_b_", "003-lr=0.1"] { XCTAssertTrue(html.contains("data-trial=\"\(name)\""), name) }
        XCTAssertEqual(html.components(separatedBy: "<tr data-trial=\"000-lr=0.001\" class=\"chosen\">").count - 1, 1)
        XCTAssertEqual(html.components(separatedBy: "class=\"chosen\"").count - 1, 1, "only the chosen row is marked")
        XCTAssertTrue(html.contains(">chosen</span>"))
        XCTAssertTrue(html.contains("Validation top-1, rung 0") && html.contains("Validation top-1, rung 1"))
        XCTAssertTrue(html.contains("85.25 %"))
        XCTAssertTrue(html.contains("test top-1 <strong>83.10 %</strong>"), "the lead names the final test figure")
        XCTAssertTrue(html.contains("top-5 97.50 %"))
        XCTAssertTrue(html.contains("final/report.html"))
        // The odd value arrives escaped.
        XCTAssertFalse(html.contains(RunFixtures.oddClass))
        XCTAssertTrue(html.contains("&lt;b&gt;&amp;&quot;x"))
        // Three trials have epochs to draw; the pending one is noted.
        XCTAssertTrue(html.contains("data-chart=\"val_top1\" data-series=\"3\""))
        XCTAssertTrue(html.contains("data-chart=\"train_loss\" data-series=\"3\""))
        XCTAssertTrue(html.contains("1 trial has no epochs yet"))
        XCTAssertTrue(html.contains("<pre id=\"report-check\" hidden></pre>"))
    }

    func testUnfinishedSweepWithoutFinalRun() throws {
        var page = try content(final: false)
        XCTAssertTrue(SweepReport.html(page).contains("--no-final"))
        XCTAssertTrue(SweepReport.html(page).contains("interrupted: 3 of 4 trials have a result"))
        for i in page.trials.indices { page.trials[i].chosen = false }
        XCTAssertTrue(SweepReport.html(page).contains("No configuration has been chosen yet."))
        XCTAssertFalse(SweepReport.html(page).contains("Chosen on validation top-1"))
    }

    func testUnwritableOutputNamesThePath() throws {
        let output = fixtures.url("missing/report.html")
        XCTAssertThrowsError(try SweepReport.write(try content(), to: output)) { error in
            XCTAssertTrue("\(error)".contains(output.path), "\(error)")
        }
    }

    func testSelfCheckInHeadlessChromium() throws {
        let browser = try HeadlessBrowser(scratch: fixtures.root)
        let page = fixtures.url("sweep.html")
        try SweepReport.write(try content(), to: page)
        try browser.assertSelfCheck(of: page, charts: ["val_top1": 3, "train_loss": 3])
    }
}
