// The sweep page: a self-contained HTML file in the run report's style (the same document shell,
// CSS, charts and self-check): a table of every trial with its validation top-1 per rung and the
// chosen one marked, the final run's test figures, and each trial's per-epoch curves.
import Foundation

/// What the sweep page shows, in plain values (the sweep's record is SSFTraining's `SweepRecord`).
public struct SweepPageContent: Sendable {
    /// One trial of the grid.
    public struct Trial: Sendable {
        /// `NNN-key=value,...` (the run directory's name).
        public var name: String
        /// The trial's value of each of the page's `keys`, as text.
        public var values: [String]
        /// Validation top-1 (percent) and epochs of each rung it ran; nil where it did not finish that rung.
        public var valTop1ByRung: [Double?]
        public var epochsByRung: [Int?]
        /// Training seconds over all its runs.
        public var trainSeconds: Double?
        /// `pending`, `interrupted`, `failed`, `pruned`, `finished`.
        public var status: String
        public var error: String?
        public var chosen: Bool
        /// The run whose per-epoch curves are drawn (its highest rung); nil before it ran.
        public var runDirectory: URL?

        public init(name: String, values: [String], valTop1ByRung: [Double?], epochsByRung: [Int?], trainSeconds: Double?, status: String,
                    error: String? = nil, chosen: Bool, runDirectory: URL?) {
            self.name = name; self.values = values; self.valTop1ByRung = valTop1ByRung; self.epochsByRung = epochsByRung
            self.trainSeconds = trainSeconds; self.status = status; self.error = error; self.chosen = chosen; self.runDirectory = runDirectory
        }
    }

    /// The chosen configuration's final run.
    public struct Final: Sendable {
        public var status: String
        public var epochs: Int
        public var trainSplit: String
        public var trainImages: Int
        public var testSplit: String
        public var testImages: Int
        public var testTop1: Double?
        public var testTop5: Double?
        public var trainSeconds: Double?
        /// The run directory (its own report.html is linked).
        public var directory: URL

        public init(status: String, epochs: Int, trainSplit: String, trainImages: Int, testSplit: String, testImages: Int, testTop1: Double?,
                    testTop5: Double?, trainSeconds: Double?, directory: URL) {
            self.status = status; self.epochs = epochs; self.trainSplit = trainSplit; self.trainImages = trainImages; self.testSplit = testSplit
            self.testImages = testImages; self.testTop1 = testTop1; self.testTop5 = testTop5; self.trainSeconds = trainSeconds; self.directory = directory
        }
    }

    public var title: String
    /// `running`, `interrupted` or `finished`.
    public var status: String
    /// The grid's keys, in order.
    public var keys: [String]
    public var rungs: Int
    /// How the trials were validated, e.g. "a stratified 20 % holdout of train (seed 42): 640 training, 160 validation images".
    public var validation: String
    /// How rungs and the choice work, in a sentence or two.
    public var method: String
    public var trials: [Trial]
    public var final: Final?

    public init(title: String, status: String, keys: [String], rungs: Int, validation: String, method: String, trials: [Trial], final: Final?) {
        self.title = title; self.status = status; self.keys = keys; self.rungs = rungs; self.validation = validation; self.method = method
        self.trials = trials; self.final = final
    }
}

/// Renders and writes the sweep page.
public enum SweepReport {
    /// The page; the trials' curves are read from their run directories' metrics.jsonl.
    public static func html(_ content: SweepPageContent, generated: Date = Date()) -> String {
        SweepPage(content: content, generated: generated).html()
    }

    /// Renders and writes atomically.
    public static func write(_ content: SweepPageContent, to output: URL) throws {
        try RunReport.writePage(html(content), to: output)
    }
}

/// The sweep page's sections.
struct SweepPage {
    let content: SweepPageContent
    let generated: Date

    private var styles: [SeriesStyle] { content.trials.indices.map(SeriesStyle.init(index:)) }
    private var chosen: Int? { content.trials.firstIndex { $0.chosen } }

    func html() -> String {
        ReportPage.document(title: content.title, generator: "ssf sweep",
                            body: header() + "<main>\n" + trialsSection() + finalSection() + curvesSection() + sourcesSection() + "</main>\n")
    }

    private func swatch(_ index: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(styles[index].color)\" aria-hidden=\"true\"></span>"
    }

    private func header() -> String {
        let t = content.trials
        let ran = t.filter { $0.valTop1ByRung.contains { $0 != nil } }.count
        var suffix = "\(t.count) trial\(t.count == 1 ? "" : "s")"
        if content.rungs > 1 { suffix += " · \(content.rungs) rungs of successive halving" }
        suffix += " · " + (content.status == "finished" ? "finished" : "\(content.status): \(ran) of \(t.count) trials have a result")
        var out = "<header><h1>\(escapeHTML(content.title))</h1>" + ReportPage.generatedLine(generated, suffix: escapeHTML(suffix))
        if let chosen {
            let trial = t[chosen]
            let val = trial.valTop1ByRung.compactMap { $0 }.last
            out += "<p class=\"lead\">Chosen on validation top-1: \(swatch(chosen))<strong>\(escapeHTML(trial.name))</strong>"
                + (val.map { " — validation top-1 \(Format.percent($0))" } ?? "")
            if let final = content.final, let top1 = final.testTop1 {
                out += "; retrained on \(escapeHTML(final.trainSplit)): test top-1 <strong>\(Format.percent(top1))</strong>"
            }
            out += "</p>"
        }
        return out + "</header>\n"
    }

    private func trialsSection() -> String {
        var columns: [(name: String, numeric: Bool)] = [("Trial", false)]
        columns += content.keys.map { ($0, false) }
        columns += (0..<content.rungs).map { (content.rungs == 1 ? "Validation top-1" : "Validation top-1, rung \($0)", true) }
        if content.rungs > 1 { columns.append(("Rung reached", true)) }
        columns += [("Training time", true), ("Status", false)]
        var out = "<section id=\"trials\"><h2>Trials</h2><div class=\"table-wrap\"><table class=\"runs trials\"><thead><tr>"
        out += columns.map { "<th scope=\"col\"\($0.numeric ? " class=\"num\"" : "")>\(escapeHTML($0.name))</th>" }.joined()
        out += "</tr></thead><tbody>\n"
        let best = (0..<content.rungs).map { rung in content.trials.compactMap { $0.valTop1ByRung.indices.contains(rung) ? $0.valTop1ByRung[rung] : nil }.max() }
        for (index, trial) in content.trials.enumerated() {
            out += "<tr data-trial=\"\(escapeHTML(trial.name))\"\(trial.chosen ? " class=\"chosen\"" : "")>"
            let badge = trial.chosen ? "<span class=\"badges\"><span class=\"badge chosen\" title=\"chosen on validation top-1\">chosen</span></span>" : ""
            out += "<th scope=\"row\" data-col=\"trial\">\(swatch(index))<span class=\"run-name\">\(escapeHTML(trial.name))</span>\(badge)</th>"
            for (key, value) in zip(content.keys, trial.values) { out += "<td data-col=\"\(escapeHTML(key))\">\(escapeHTML(value))</td>" }
            for rung in 0..<content.rungs {
                let value = trial.valTop1ByRung.indices.contains(rung) ? trial.valTop1ByRung[rung] : nil
                let epochs = trial.epochsByRung.indices.contains(rung) ? trial.epochsByRung[rung] : nil
                let top = value != nil && value == best[rung] && content.trials.count > 1
                out += "<td data-col=\"val_top1_rung\(rung)\" class=\"num\(value == nil ? " missing" : "")\(top ? " top" : "")\">"
                    + (value.map(Format.percent) ?? Format.missing)
                    + (epochs.map { "<span class=\"note\">\($0) epoch\($0 == 1 ? "" : "s")</span>" } ?? "") + "</td>"
            }
            if content.rungs > 1 {
                let reached = trial.valTop1ByRung.lastIndex { $0 != nil }
                out += "<td data-col=\"rung\" class=\"num\(reached == nil ? " missing" : "")\">\(reached.map(String.init) ?? Format.missing)</td>"
            }
            out += "<td data-col=\"train_seconds\" class=\"num\(trial.trainSeconds == nil ? " missing" : "")\">\(trial.trainSeconds.map(Format.duration) ?? Format.missing)</td>"
            out += "<td data-col=\"status\">\(escapeHTML(trial.status))"
                + (trial.error.map { "<span class=\"note\">\(escapeHTML(String($0.prefix(160))))</span>" } ?? "") + "</td>"
            out += "</tr>\n"
        }
        out += "</tbody></table></div>"
        out += "<p class=\"explain\">\(escapeHTML(content.validation)). \(escapeHTML(content.method)) "
            + "Validation top-1 is the last epoch's; the test split plays no part in the choice. \(Format.missing) means the trial has no result there.</p>"
        return out + "</section>\n"
    }

    private func finalSection() -> String {
        var out = "<section id=\"final\"><h2>Final run</h2>"
        guard let final = content.final else {
            let why = chosen == nil ? "No configuration has been chosen yet." : "The sweep ran without a final run (--no-final)."
            return out + "<p class=\"empty\">\(why)</p></section>\n"
        }
        let settings = chosen.map { content.trials[$0].name } ?? Format.missing
        let rows: [(String, String, String?)] = [
            ("Configuration", settings, nil),
            ("Test top-1", final.testTop1.map(Format.percent) ?? Format.missing, final.testTop5.map { "top-5 " + Format.percent($0) }),
            ("Trained on", "\(final.trainSplit)", "\(Format.integer(final.trainImages)) images, \(final.epochs) epoch\(final.epochs == 1 ? "" : "s")"),
            ("Measured on", final.testSplit, "\(Format.integer(final.testImages)) images, once, after the last epoch"),
            ("Training time", final.trainSeconds.map(Format.duration) ?? Format.missing, nil),
            ("Status", final.status, nil),
        ]
        out += "<div class=\"table-wrap\"><table class=\"runs final\"><tbody>\n"
        for (name, value, note) in rows {
            out += "<tr><th scope=\"row\">\(escapeHTML(name))</th><td data-col=\"\(escapeHTML(name.lowercased().replacingOccurrences(of: " ", with: "_")))\">"
                + escapeHTML(value) + (note.map { "<span class=\"note\">\(escapeHTML($0))</span>" } ?? "") + "</td></tr>\n"
        }
        out += "</tbody></table></div>"
        out += "<p class=\"explain\">The chosen configuration retrained from scratch on all the training images (the trials' training and "
            + "validation images together). Its run directory has its own page: "
            + "<a href=\"\(escapeHTML(final.directory.lastPathComponent))/report.html\"><code>\(escapeHTML(final.directory.path))/report.html</code></a>.</p>"
        return out + "</section>\n"
    }

    private func curvesSection() -> String {
        let records: [RunRecord?] = content.trials.map { trial in trial.runDirectory.flatMap { try? RunRecord(directory: $0) } }
        let charts: [(name: String, caption: String, yLabel: String, value: (EpochRecord) -> Double?, configure: (inout LineChart) -> Void)] = [
            ("val_top1", "Validation top-1 (ring: best epoch)", "validation top-1 %", { $0.top1 }, { $0.clamp = 0...100; $0.ringMaximum = true; $0.unit = " %" }),
            ("train_loss", "Training loss", "training loss", { $0.trainLoss }, { _ in }),
        ]
        var out = "<section id=\"curves\"><h2>Per epoch</h2><div class=\"charts\">\n"
        for chart in charts {
            var series: [ChartSeries] = []
            for (index, record) in records.enumerated() {
                guard let record else { continue }
                let points = record.epochs.compactMap { e in chart.value(e).flatMap { $0.isFinite ? (x: Double(e.epoch + 1), y: $0) : nil } }
                if !points.isEmpty { series.append(ChartSeries(label: content.trials[index].name, style: styles[index], points: points)) }
            }
            var line = LineChart(name: chart.name, title: chart.caption, yLabel: chart.yLabel, series: series)
            chart.configure(&line)
            let missing = content.trials.count - series.count
            out += "<figure class=\"card\"><figcaption>\(escapeHTML(chart.caption))"
            if missing > 0 { out += "<span class=\"note\">\(missing) trial\(missing == 1 ? " has" : "s have") no epochs yet</span>" }
            if content.rungs > 1 { out += "<span class=\"note\">each trial's run at the highest rung it reached</span>" }
            out += "</figcaption>" + line.svg() + "</figure>\n"
        }
        return out + "</div></section>\n"
    }

    private func sourcesSection() -> String {
        var out = "<section id=\"sources\"><h2>Run directories</h2><ul class=\"sources\">"
        for (index, trial) in content.trials.enumerated() {
            guard let directory = trial.runDirectory else { continue }
            out += "<li>\(swatch(index))<strong>\(escapeHTML(trial.name))</strong> <code>\(escapeHTML(directory.path))</code></li>"
        }
        if let final = content.final { out += "<li><strong>final</strong> <code>\(escapeHTML(final.directory.path))</code></li>" }
        return out + "</ul><p class=\"explain\">Written by <code>ssf sweep</code> with <code>sweep.json</code> beside it. "
            + "The page is self-contained: it loads nothing from the network.</p></section>\n"
    }
}
