// The report page: one self-contained HTML file (inline CSS and SVG, a small inline self-check
// script, a content security policy that forbids every network request) rendered from run records.
import Foundation

/// Renders run records as one HTML page; reads nothing.
public struct ReportPage {
    public let runs: [RunRecord]
    public let title: String
    public let generated: Date

    public init(runs: [RunRecord], title: String, generated: Date = Date()) {
        self.runs = runs; self.title = title; self.generated = generated
    }

    private var styles: [SeriesStyle] { runs.indices.map(SeriesStyle.init(index:)) }

    public func html() -> String {
        Self.document(title: title, body: header() + "<main>\n" + runsSection() + curvesSection() + perClassSection() + sourcesSection() + "</main>\n")
    }

    /// A whole page around `body` (the header and main elements): the head with the inline CSS and the
    /// error collector, and after the body the self-check script and its output element.
    static func document(title: String, generator: String = "ssf report", body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
        <meta name="generator" content="\(escapeHTML(generator))">
        <title>\(escapeHTML(title))</title>
        <style>\(css)</style>
        <script>\(errorCollector)</script>
        </head>
        <body>

        """ + body + "<pre id=\"report-check\" hidden></pre>\n<script>\(selfCheck)</script>\n</body>\n</html>\n"
    }

    /// The page header's "Generated …" line.
    static func generatedLine(_ generated: Date, suffix: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss xxx"
        return "<p class=\"meta\">Generated <time datetime=\"\(ISO8601DateFormatter().string(from: generated))\">"
            + "\(formatter.string(from: generated))</time> · \(suffix)</p>"
    }

    // MARK: Sections

    private func header() -> String {
        let unfinished = runs.filter { !$0.finished }.count
        let count = "\(runs.count) run\(runs.count == 1 ? "" : "s")" + (unfinished > 0 ? " (\(unfinished) unfinished)" : "")
        var out = "<header><h1>\(escapeHTML(title))</h1>" + Self.generatedLine(generated, suffix: count)
        if let leader = runs.indices.filter({ bestTop1(runs[$0]) != nil }).max(by: { bestTop1(runs[$0])!.value < bestTop1(runs[$1])!.value }) {
            let run = runs[leader], best = bestTop1(run)!
            var details = [run.method, run.model].compactMap { $0 }
            if let params = run.summary?.trainableParams { details.append("\(Format.integer(params)) trainable parameters") }
            out += "<p class=\"lead\">\(runs.count == 1 ? "Best" : "Highest") top-1: <strong>\(Format.percent(best.value))</strong> — \(swatch(leader))\(escapeHTML(run.label))"
                + (details.isEmpty ? "" : " (\(escapeHTML(details.joined(separator: ", "))))") + (run.finished ? "" : " so far") + "</p>"
        }
        return out + "</header>\n"
    }

    private func swatch(_ index: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(styles[index].color)\" aria-hidden=\"true\"></span>"
    }

    /// Best top-1 and its epoch (1-based): from the summary, or the epochs so far of an unfinished run.
    private func bestTop1(_ run: RunRecord) -> (value: Double, epoch: Int?)? {
        if let summary = run.summary {
            return summary.bestTop1.flatMap { $0 >= 0 ? ($0, summary.bestEpoch) : nil }
        }
        return run.epochs.filter { $0.top1 != nil }.max { $0.top1! < $1.top1! }.map { ($0.top1!, $0.epoch + 1) }
    }

    private func runsSection() -> String {
        let columns = ["Run", "Model", "Method", "Best top-1", "Final top-1", "Trainable params", "Training time", "Images/s",
                       "Delta file", "Peak memory", "Data"]
        let numeric: Set<String> = ["Best top-1", "Final top-1", "Trainable params", "Training time", "Images/s", "Delta file", "Peak memory"]
        let highest = runs.compactMap { bestTop1($0)?.value }.max()
        var out = "<section id=\"runs\"><h2>Runs</h2><div class=\"table-wrap\"><table class=\"runs\"><thead><tr>"
        out += columns.map { name in
            let text = name.replacingOccurrences(of: "top-1", with: "<span class=\"nowrap\">top-1</span>")
            return "<th scope=\"col\"\(numeric.contains(name) ? " class=\"num\"" : "")>\(text)</th>"
        }.joined()
        out += "</tr></thead><tbody>\n"
        for (index, run) in runs.enumerated() {
            let s = run.summary
            func cell(_ key: String, _ text: String?, note: String? = nil, numeric: Bool = true, extraClass: String = "", breakable: Bool = false) -> String {
                let classes = ([numeric ? "num" : nil, text == nil ? "missing" : nil, extraClass.isEmpty ? nil : extraClass].compactMap { $0 }).joined(separator: " ")
                // Long paths may break after a slash or colon.
                let shown = text.map { breakable ? escapeHTML($0).replacingOccurrences(of: "/", with: "/<wbr>").replacingOccurrences(of: ":", with: ":<wbr>") : escapeHTML($0) }
                return "<td data-col=\"\(key)\"\(classes.isEmpty ? "" : " class=\"\(classes)\"")>\(shown ?? Format.missing)"
                    + (note.map { "<span class=\"note\">\(escapeHTML($0))</span>" } ?? "") + "</td>"
            }
            var status = ""
            if !run.finished {
                let why = run.resumable ? "stopped early: ssf train --resume continues it" : "no summary.json: still running or stopped"
                status = "<span class=\"badges\"><span class=\"badge\" title=\"\(why)\">unfinished</span></span>"
            }
            out += "<tr data-run=\"\(escapeHTML(run.label))\"\(run.finished ? "" : " class=\"unfinished\"")>"
            out += "<th scope=\"row\" data-col=\"run\">\(swatch(index))<span class=\"run-name\" title=\"\(escapeHTML(run.directory.path))\">\(escapeHTML(run.label))</span>\(status)</th>"
            out += cell("model", run.model, numeric: false)
            out += cell("method", run.method, numeric: false)
            let best = bestTop1(run)
            var bestNote = best?.epoch.map { "epoch \($0)" }
            if let on = s?.selectedOn, bestNote != nil { bestNote! += " · \(on)" }
            if !run.finished, best != nil { bestNote = (bestNote.map { $0 + " · " } ?? "") + "so far" }
            out += cell("best_top1", best.map { Format.percent($0.value) }, note: bestNote,
                        extraClass: best != nil && best?.value == highest && runs.count > 1 ? "top" : "")
            out += cell("final_top1", s?.finalTop1.map(Format.percent), note: s?.finalTop5.map { "top-5 " + Format.percent($0) })
            out += cell("trainable_params", s?.trainableParams.map(Format.integer))
            let seconds = s?.trainSeconds ?? (run.finished ? nil : run.epochs.compactMap(\.epochSeconds).reduce(nil) { ($0 ?? 0) + $1 })
            // The epoch count goes under the time: "9 epochs", or "5 of 9 epochs · so far" while unfinished.
            var epochNote = s?.epochs.map { "\($0) epoch\($0 == 1 ? "" : "s")" }
            if !run.finished {
                let total = run.configEpochs ?? run.epochs.count
                epochNote = "\(run.epochs.count)" + (run.configEpochs.map { " of \($0)" } ?? "") + " epoch\(total == 1 ? "" : "s") · so far"
            }
            out += cell("train_seconds", seconds.map(Format.duration), note: epochNote)
            out += cell("images_per_s", s?.trainImagesPerSecond.map { String(format: "%.1f", $0) })
            out += cell("delta_bytes", s?.deltaBytes.map(Format.bytes))
            out += cell("peak_rss_mib", s?.peakRSSMiB.map { Format.integer(Int($0.rounded())) + " MiB" })
            let images = [s?.trainImages.map { "\(Format.integer($0)) train" }, s?.evalImages.map { "\(Format.integer($0)) \(s?.selectedOn ?? "eval")" }]
                .compactMap { $0 }.joined(separator: " · ")
            out += cell("data", run.data, note: images.isEmpty ? nil : images, numeric: false, breakable: true)
            out += "</tr>\n"
        }
        out += "</tbody></table></div>"
        out += "<p class=\"explain\">Best top-1 is the highest top-1 over the epochs on the evaluation split (the epoch and split are under it); "
            + "final top-1 is the last epoch's. Training time (the epochs under it) and images/s count training only. "
            + "Unfinished runs have no summary.json yet; their figures come from the epochs so far. \(Format.missing) means the run did not record the value.</p>"
        return out + "</section>\n"
    }

    private func curvesSection() -> String {
        let charts: [(name: String, caption: String, yLabel: String, value: (EpochRecord) -> Double?, configure: (inout LineChart) -> Void)] = [
            ("loss", "Training loss", "training loss", { $0.trainLoss }, { _ in }),
            ("eval_loss", "Evaluation loss", "eval loss", { $0.evalLoss }, { _ in }),
            ("top1", "Top-1 accuracy (ring: best epoch)", "top-1 %", { $0.top1 }, { $0.clamp = 0...100; $0.ringMaximum = true; $0.unit = " %" }),
            ("lr", "Learning rate (at the end of the epoch)", "learning rate", { $0.lr }, { $0.fromZero = true }),
        ]
        var out = "<section id=\"curves\"><h2>Per epoch</h2><div class=\"charts\">\n"
        for chart in charts {
            var series: [ChartSeries] = []
            var missing: [String] = []
            for (index, run) in runs.enumerated() {
                let points = run.epochs.compactMap { e in chart.value(e).flatMap { $0.isFinite ? (x: Double(e.epoch + 1), y: $0) : nil } }
                if points.isEmpty { missing.append(run.label) } else { series.append(ChartSeries(label: run.label, style: styles[index], points: points)) }
            }
            var line = LineChart(name: chart.name, title: chart.caption, yLabel: chart.yLabel, series: series)
            chart.configure(&line)
            out += "<figure class=\"card\"><figcaption>\(escapeHTML(chart.caption))"
            if !missing.isEmpty { out += "<span class=\"note\">not recorded by \(escapeHTML(missing.joined(separator: ", ")))</span>" }
            if series.count > 1, series.dropFirst().allSatisfy({ $0.points.elementsEqual(series[0].points) { $0.x == $1.x && $0.y == $1.y } }) {
                out += "<span class=\"note\">the runs' lines coincide</span>"
            }
            out += "</figcaption>" + line.svg() + "</figure>\n"
        }
        return out + "</div></section>\n"
    }

    private func perClassSection() -> String {
        let withClasses = runs.indices.filter { !(runs[$0].summary?.perClassTop1?.isEmpty ?? true) }
        var out = "<section id=\"per-class\"><h2>Per-class top-1 accuracy</h2>"
        guard !withClasses.isEmpty else {
            return out + "<p class=\"empty\">No run has per-class accuracy yet (it is in a finished run's summary.json).</p></section>\n"
        }
        let names = Set(withClasses.flatMap { runs[$0].summary!.perClassTop1!.keys })
            .sorted { $0.compare($1, options: [.numeric, .caseInsensitive]) == .orderedAscending }
        let chart = PerClassChart(classes: names, runs: withClasses.map { (runs[$0].label, styles[$0], runs[$0].summary!.perClassTop1!) })
        let without = runs.indices.filter { !withClasses.contains($0) }.map { runs[$0].label }
        out += "<figure class=\"card wide\"><figcaption>Final epoch, \(names.count) class\(names.count == 1 ? "" : "es")"
            + (withClasses.count > 1 ? "; the grey bar spans the runs' accuracies for each class" : "")
            + (without.isEmpty ? "" : "<span class=\"note\">no per-class accuracy in \(escapeHTML(without.joined(separator: ", ")))</span>")
            + "</figcaption>" + chart.svg() + "</figure>"
        out += "<details class=\"card\"><summary>Per-class table (\(names.count) classes × \(withClasses.count) run\(withClasses.count == 1 ? "" : "s"))</summary>"
        out += "<div class=\"table-wrap\"><table class=\"per-class\"><thead><tr><th scope=\"col\">Class</th>"
        out += withClasses.map { "<th scope=\"col\" class=\"num\">\(swatch($0))\(escapeHTML(runs[$0].label))</th>" }.joined() + "</tr></thead><tbody>\n"
        for name in names {
            let values = withClasses.map { runs[$0].summary!.perClassTop1![name] }
            let high = values.compactMap { $0 }.max()
            out += "<tr><th scope=\"row\">\(escapeHTML(name))</th>"
            out += values.map { value in
                guard let value else { return "<td class=\"num missing\">\(Format.missing)</td>" }
                return "<td class=\"num\(value == high && withClasses.count > 1 ? " top" : "")\">\(String(format: "%.1f", value))</td>"
            }.joined() + "</tr>\n"
        }
        return out + "</tbody></table></div></details></section>\n"
    }

    private func sourcesSection() -> String {
        var out = "<section id=\"sources\"><h2>Run directories</h2><ul class=\"sources\">"
        for (index, run) in runs.enumerated() {
            out += "<li>\(swatch(index))<strong>\(escapeHTML(run.label))</strong> <code>\(escapeHTML(run.directory.path))</code></li>"
        }
        return out + "</ul><p class=\"explain\">Written by <code>ssf report</code>. The page is self-contained: it loads nothing from the network.</p></section>\n"
    }

    // MARK: Inline CSS and scripts

    static let css = """
    :root{--bg:#f5f6f8;--card:#fff;--text:#1d2430;--muted:#5f6b7a;--line:#dde2e8;--grid:#e8ecf0;--axis:#9aa5b1;--plot:#fcfcfd;--band:#f4f6f8;--spread:#c9d0d8;--accent:#2f6fb0;--top:#e9f4ea;--badge:#b45309;color-scheme:light dark}
    @media (prefers-color-scheme:dark){:root{--bg:#14181d;--card:#1c2128;--text:#e6e9ed;--muted:#9aa5b1;--line:#2d343d;--grid:#2a3038;--axis:#5c6672;--plot:#191e24;--band:#20262d;--spread:#47505b;--accent:#79b0e6;--top:#1f3324;--badge:#f59e0b}}
    *{box-sizing:border-box}
    body{margin:0;background:var(--bg);color:var(--text);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif}
    header,main{max-width:1280px;margin:0 auto;padding:0 24px}
    header{padding-top:28px}
    h1{font-size:26px;margin:0 0 4px;font-weight:650;letter-spacing:-.01em}
    h2{font-size:17px;margin:30px 0 12px;font-weight:650}
    .meta{color:var(--muted);margin:0}
    .lead{margin:12px 0 0;font-size:15px}
    .card,.table-wrap{background:var(--card);border:1px solid var(--line);border-radius:10px}
    .table-wrap{overflow-x:auto}
    table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
    th,td{padding:8px 9px;text-align:left;vertical-align:top;border-bottom:1px solid var(--line);white-space:nowrap}
    thead th{font-size:11.5px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600;background:var(--band);white-space:normal;vertical-align:bottom}
    table.runs{font-size:13.5px}
    tbody tr:last-child>*{border-bottom:none}
    tbody tr:hover{background:var(--band)}
    .num{text-align:right}
    .nowrap{white-space:nowrap}
    td[data-col=data]{white-space:normal;min-width:120px;max-width:220px;overflow-wrap:anywhere}
    .note{display:block;font-size:11.5px;color:var(--muted)}
    .missing{color:var(--muted)}
    .top{background:var(--top);font-weight:650}
    tr.unfinished .run-name{font-style:italic}
    tr.chosen>*{background:var(--top)}
    .badge.chosen{color:var(--accent)}
    table.final{width:auto}
    table.final th{font-weight:600;color:var(--muted)}
    a{color:var(--accent)}
    .badges{display:block;margin:2px 0 0 18px}
    .badge{display:inline-block;margin-right:6px;padding:0 7px;border-radius:9px;font-size:11px;font-weight:600;color:var(--badge);border:1px solid currentColor}
    .swatch{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:8px;vertical-align:baseline}
    .explain{color:var(--muted);font-size:12.5px;margin:8px 2px 0;max-width:920px}
    .empty{color:var(--muted)}
    .charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:18px}
    figure{margin:0;padding:14px 16px 8px}
    figure.wide{margin-bottom:14px}
    figcaption{font-weight:600;margin-bottom:6px}
    figcaption .note{font-weight:400}
    svg.chart{display:block;width:100%;height:auto}
    svg.chart text{font-size:12px;fill:var(--muted)}
    svg.chart .class-name{fill:var(--text)}
    svg.chart .legend text{fill:var(--text)}
    svg.chart .axis-label{font-size:12px;fill:var(--muted)}
    svg.chart .plot{fill:var(--plot)}
    svg.chart .band{fill:var(--band)}
    svg.chart .grid{stroke:var(--grid);stroke-width:1}
    svg.chart .axis,svg.chart .tick-mark{stroke:var(--axis);stroke-width:1}
    svg.chart .spread{stroke:var(--spread);stroke-width:4;stroke-linecap:round}
    svg.chart .marker,svg.chart .dot{stroke:var(--card);stroke-width:1}
    svg.chart .series:hover path{stroke-width:3.5}
    svg.chart .series:hover circle{r:5.5}
    svg.chart .empty{fill:var(--muted);font-size:14px}
    details{padding:10px 16px}
    details summary{cursor:pointer;font-weight:600}
    details .table-wrap{border:none;margin-top:8px;max-height:640px;overflow:auto}
    details thead th{position:sticky;top:0}
    table.per-class td,table.per-class th{padding:3px 12px}
    ul.sources{list-style:none;padding:0;margin:0}
    ul.sources li{margin:3px 0}
    code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;color:var(--muted);word-break:break-all}
    main{padding-bottom:40px}
    """

    /// Collects script errors and blocked requests from the start of the page.
    static let errorCollector = """
    window.reportErrors=[];\
    window.onerror=function(message,source,line){window.reportErrors.push(String(message)+(line?' (line '+line+')':''));};\
    document.addEventListener('securitypolicyviolation',function(e){window.reportErrors.push('blocked '+e.blockedURI+' ('+e.violatedDirective+')');});
    """

    /// Counts each chart's series and those with a rendered extent, and writes the result as JSON
    /// into #report-check (read by the browser test); the page does not need it.
    static let selfCheck = """
    (function(){\
    function check(){\
    var charts={};\
    var svgs=document.querySelectorAll('svg[data-chart]');\
    for(var i=0;i<svgs.length;i++){\
    var svg=svgs[i],series=svg.querySelectorAll('.series'),rendered=0;\
    for(var j=0;j<series.length;j++){\
    try{var box=series[j].getBBox();if(box.width>0||box.height>0)rendered++;}\
    catch(e){window.reportErrors.push('getBBox: '+e.message);}\
    }\
    charts[svg.getAttribute('data-chart')]={declared:Number(svg.getAttribute('data-series')),series:series.length,rendered:rendered};\
    }\
    document.getElementById('report-check').textContent=JSON.stringify({errors:window.reportErrors||['the error collector did not run'],charts:charts});\
    }\
    check();\
    window.addEventListener('load',check);\
    })();
    """
}

/// How the report writes numbers.
enum Format {
    static let missing = "—"

    static func percent(_ value: Double) -> String { String(format: "%.2f %%", value) }

    /// 282724 → "282,724".
    static func integer(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// 8.4 s, 3 min 12 s, 2 h 05 min.
    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return String(format: "%d min %02d s", whole / 60, whole % 60) }
        return String(format: "%d h %02d min", whole / 3600, (whole % 3600) / 60)
    }

    /// Binary units: 1.13 MiB.
    static func bytes(_ count: Int) -> String {
        let value = Double(count)
        if count < 1024 { return "\(count) B" }
        if value < 1024 * 1024 { return String(format: "%.1f KiB", value / 1024) }
        if value < 1024 * 1024 * 1024 { return String(format: "%.2f MiB", value / 1_048_576) }
        return String(format: "%.2f GiB", value / 1_073_741_824)
    }
}
