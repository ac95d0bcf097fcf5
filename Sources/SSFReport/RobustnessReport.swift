// The robustness page of `ssf robustness`: a self-contained HTML file in the run report's style
// (the same document shell, CSS, charts and self-check) with top-1 per corruption and severity,
// the clean accuracy, the mean corruption accuracy and the relative drop, and top-1 against severity.
import Foundation

/// What the robustness page shows, in plain values.
public struct RobustnessPageContent: Sendable {
    /// One corruption's top-1 (percent) at each of the page's severities.
    public struct Row: Sendable {
        public var corruption: String
        public var top1: [Double]
        public init(corruption: String, top1: [Double]) { self.corruption = corruption; self.top1 = top1 }
        public var mean: Double { top1.isEmpty ? 0 : top1.reduce(0, +) / Double(top1.count) }
    }

    public var title: String
    public var model: String
    public var data: String
    public var split: String
    public var images: Int
    public var seed: UInt64
    /// Notes shown under the settings (e.g. "class subset: r200.txt (200 of 1000 head classes)").
    public var notes: [String]
    public var cleanTop1: Double
    public var cleanTop5: Double
    public var severities: [Int]
    public var rows: [Row]

    public init(title: String, model: String, data: String, split: String, images: Int, seed: UInt64, notes: [String] = [],
                cleanTop1: Double, cleanTop5: Double, severities: [Int], rows: [Row]) {
        self.title = title; self.model = model; self.data = data; self.split = split; self.images = images; self.seed = seed
        self.notes = notes; self.cleanTop1 = cleanTop1; self.cleanTop5 = cleanTop5; self.severities = severities; self.rows = rows
    }

    /// Mean corruption accuracy: top-1 averaged over every corruption and severity.
    public var meanCorruptionAccuracy: Double {
        let all = rows.flatMap(\.top1)
        return all.isEmpty ? 0 : all.reduce(0, +) / Double(all.count)
    }

    /// (clean − mCA) / clean; 0 when the clean accuracy is 0.
    public var relativeDrop: Double { cleanTop1 > 0 ? (cleanTop1 - meanCorruptionAccuracy) / cleanTop1 : 0 }

    /// Top-1 at each severity averaged over the corruptions.
    public var severityMeans: [Double] {
        severities.indices.map { i in rows.isEmpty ? 0 : rows.map { $0.top1[i] }.reduce(0, +) / Double(rows.count) }
    }
}

/// Renders and writes the robustness page.
public enum RobustnessReport {
    public static func html(_ content: RobustnessPageContent, generated: Date = Date()) -> String {
        RobustnessPage(content: content, generated: generated).html()
    }

    /// Renders and writes atomically.
    /// The page's two charts as standalone SVG files' text.
    public static func figures(_ content: RobustnessPageContent) -> (perCorruption: String, means: String) {
        let charts = RobustnessPage(content: content, generated: Date()).charts()
        return (standaloneSVG(charts.perCorruption.svg()), standaloneSVG(charts.means.svg()))
    }

    public static func write(_ content: RobustnessPageContent, to output: URL) throws {
        try RunReport.writePage(html(content), to: output)
    }
}

/// The robustness page's sections.
struct RobustnessPage {
    let content: RobustnessPageContent
    let generated: Date

    /// The palette's grey (its tenth colour) is the clean line's, so the corruptions skip it.
    private var styles: [SeriesStyle] { content.rows.indices.map { SeriesStyle(index: $0 < 9 ? $0 : $0 + 1) } }
    private static let cleanStyle = SeriesStyle(color: SeriesStyle.palette[9], dash: "6 4")

    func html() -> String {
        ReportPage.document(title: content.title, generator: "ssf robustness",
                            body: header() + "<main>\n" + tableSection() + chartsSection() + settingsSection() + "</main>\n")
    }

    private func swatch(_ index: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(styles[index].color)\" aria-hidden=\"true\"></span>"
    }

    private func header() -> String {
        let c = content
        let suffix = "\(c.model) on \(c.data) (\(c.split), \(Format.integer(c.images)) images) · \(c.rows.count) corruption\(c.rows.count == 1 ? "" : "s") × \(c.severities.count) severit\(c.severities.count == 1 ? "y" : "ies")"
        return "<header><h1>\(escapeHTML(c.title))</h1>" + ReportPage.generatedLine(generated, suffix: escapeHTML(suffix))
            + "<p class=\"lead\">Clean top-1 <strong>\(Format.percent(c.cleanTop1))</strong> · mean corruption accuracy (mCA) "
            + "<strong>\(Format.percent(c.meanCorruptionAccuracy))</strong> · relative drop <strong>\(String(format: "%.1f %%", 100 * c.relativeDrop))</strong></p>"
            + "</header>\n"
    }

    private func tableSection() -> String {
        let c = content
        var out = "<section id=\"robustness\"><h2>Top-1 per corruption and severity</h2><div class=\"table-wrap\"><table class=\"runs robustness\"><thead><tr>"
        out += "<th scope=\"col\">Corruption</th>" + c.severities.map { "<th scope=\"col\" class=\"num\">Severity \($0)</th>" }.joined()
            + "<th scope=\"col\" class=\"num\">Mean</th></tr></thead><tbody>\n"
        let best = c.rows.map(\.mean).max()
        for (index, row) in c.rows.enumerated() {
            out += "<tr data-corruption=\"\(escapeHTML(row.corruption))\"><th scope=\"row\">\(swatch(index))\(escapeHTML(row.corruption))</th>"
            for (severity, value) in zip(c.severities, row.top1) {
                out += "<td data-col=\"severity\(severity)\" class=\"num\">\(Format.percent(value))</td>"
            }
            let top = c.rows.count > 1 && row.mean == best
            out += "<td data-col=\"mean\" class=\"num\(top ? " top" : "")\">\(Format.percent(row.mean))</td></tr>\n"
        }
        out += "<tr data-corruption=\"mean\"><th scope=\"row\">Mean over corruptions</th>"
        for (severity, value) in zip(c.severities, c.severityMeans) {
            out += "<td data-col=\"severity\(severity)\" class=\"num\">\(Format.percent(value))</td>"
        }
        out += "<td data-col=\"mca\" class=\"num\"><strong>\(Format.percent(c.meanCorruptionAccuracy))</strong><span class=\"note\">mCA</span></td></tr>\n"
        out += "<tr data-corruption=\"clean\"><th scope=\"row\">Clean</th>"
            + "<td class=\"num\" colspan=\"\(c.severities.count + 1)\">\(Format.percent(c.cleanTop1))<span class=\"note\">top-5 \(Format.percent(c.cleanTop5))</span></td></tr>\n"
        out += "</tbody></table></div>"
        out += "<p class=\"explain\">Top-1 accuracy with each corruption applied at each severity after the evaluation resize and crop. "
            + "The mean corruption accuracy (mCA) averages top-1 over every corruption and severity; the relative drop is "
            + "(clean − mCA) / clean. The corruptions follow ImageNet-C (Hendrycks &amp; Dietterich, 2019) with its published "
            + "parameters for 224-pixel images; spatial parameters scale with the image side / 224.</p>"
        return out + "</section>\n"
    }

    private func chartsSection() -> String {
        let (lines, means) = charts()
        return "<section id=\"curves\"><h2>Against severity</h2><div class=\"charts\">\n"
            + "<figure class=\"card\"><figcaption>Top-1 per corruption<span class=\"note\">dashed: clean</span></figcaption>" + lines.svg() + "</figure>\n"
            + "<figure class=\"card\"><figcaption>Mean over corruptions<span class=\"note\">dashed: clean</span></figcaption>" + means.svg() + "</figure>\n"
            + "</div></section>\n"
    }

    /// Top-1 per corruption against severity, and the mean over corruptions, each with the clean line.
    func charts() -> (perCorruption: LineChart, means: LineChart) {
        let c = content
        let xs = c.severities.map(Double.init)
        let clean = ChartSeries(label: "clean", style: Self.cleanStyle, points: xs.map { (x: $0, y: c.cleanTop1) })
        var perCorruption = c.rows.enumerated().map { index, row in
            ChartSeries(label: row.corruption, style: styles[index], points: zip(xs, row.top1).map { (x: $0, y: $1) })
        }
        perCorruption.append(clean)
        var lines = LineChart(name: "top1_by_severity", title: "Top-1 against severity", yLabel: "top-1 %", series: perCorruption)
        lines.clamp = 0...100; lines.unit = " %"; lines.xLabel = "severity"
        let meanSeries = [ChartSeries(label: "mean over corruptions", style: SeriesStyle(index: 0), points: zip(xs, c.severityMeans).map { (x: $0, y: $1) }), clean]
        var means = LineChart(name: "mean_by_severity", title: "Mean top-1 over corruptions against severity", yLabel: "top-1 %", series: meanSeries)
        means.clamp = 0...100; means.unit = " %"; means.xLabel = "severity"; means.fromZero = true
        return (lines, means)
    }

    private func settingsSection() -> String {
        let c = content
        var items = ["Model: <code>\(escapeHTML(c.model))</code>", "Data: <code>\(escapeHTML(c.data))</code> (split \(escapeHTML(c.split)), \(Format.integer(c.images)) images)",
                     "Seed of the corruptions' random fields: \(c.seed)"]
        items += c.notes.map(escapeHTML)
        return "<section id=\"settings\"><h2>Settings</h2><ul class=\"sources\">" + items.map { "<li>\($0)</li>" }.joined()
            + "</ul><p class=\"explain\">Written by <code>ssf robustness</code> with <code>robustness.json</code> beside it. "
            + "The page is self-contained: it loads nothing from the network.</p></section>\n"
    }
}
