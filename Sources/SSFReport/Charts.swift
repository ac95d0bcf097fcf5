// Inline SVG charts: a line chart of a value per epoch and a dot chart of per-class accuracy,
// each with axes, ticks, labels and a legend, one `class="series"` group per run.
import Foundation

/// Escapes text for HTML element content and quoted attribute values.
func escapeHTML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for c in text.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default:
            // Control characters other than tab and newline have no place in a page.
            if c.value < 0x20 && c != "\t" && c != "\n" || c.value == 0x7F { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
        }
    }
    return out
}

/// A run's colour and line style, the same in every chart and the table.
struct SeriesStyle {
    /// Tableau 10: distinct hues that read on white and on dark backgrounds.
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f"]
    let color: String
    /// Dash pattern for runs beyond the palette (nil: solid).
    let dash: String?

    /// A fixed colour and dash (e.g. a reference line).
    init(color: String, dash: String?) {
        self.color = color; self.dash = dash
    }

    init(index: Int) {
        color = Self.palette[index % Self.palette.count]
        let dashes: [String?] = [nil, "6 3", "2 3", "8 3 2 3"]
        dash = dashes[(index / Self.palette.count) % dashes.count]
    }

    /// Presentation attributes of a line.
    var strokeAttributes: String {
        "stroke=\"\(color)\" stroke-width=\"2\" fill=\"none\" stroke-linejoin=\"round\" stroke-linecap=\"round\"" + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")
    }
}

/// Coordinates in SVG text: at most two decimals, no trailing zeros.
func coordinate(_ value: Double) -> String {
    let rounded = (value * 100).rounded() / 100
    if rounded == rounded.rounded() { return String(Int(rounded)) }
    var text = String(format: "%.2f", rounded)
    while text.hasSuffix("0") { text.removeLast() }
    return text
}

/// Round tick positions (1, 2, 2.5 or 5 × 10ⁿ apart) covering a range.
struct Ticks {
    let lower: Double
    let upper: Double
    let step: Double

    /// Ticks covering [low, high] with about `count` intervals.
    init(low: Double, high: Double, count: Int = 5, integer: Bool = false) {
        var low = low, high = high
        if !(high > low) {
            let pad = low == 0 ? 1 : abs(low) * 0.1
            low -= pad; high += pad
        }
        let raw = (high - low) / Double(max(count, 1))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        var step = magnitude * 10
        for factor in [1, 2, 2.5, 5, 10] where magnitude * factor >= raw {
            step = magnitude * factor
            break
        }
        if integer { step = max(1, step.rounded(.up)) }
        self.step = step
        lower = (low / step).rounded(.down) * step
        upper = (high / step).rounded(.up) * step
    }

    var values: [Double] {
        let n = Int(((upper - lower) / step).rounded())
        return (0...max(n, 0)).map { lower + Double($0) * step }
    }

    /// A tick label with as many decimals as the step needs (scientific for tiny steps).
    func label(_ value: Double) -> String {
        let value = abs(value) < step * 1e-6 ? 0 : value
        if step < 1e-3 {
            if value == 0 { return "0" }
            var text = String(format: "%.2e", value)
            // 2.50e-04 → 2.5e-4
            if let e = text.firstIndex(of: "e") {
                var mantissa = String(text[..<e]), exponent = String(text[text.index(after: e)...])
                while mantissa.contains("."), mantissa.hasSuffix("0") { mantissa.removeLast() }
                if mantissa.hasSuffix(".") { mantissa.removeLast() }
                let negative = exponent.hasPrefix("-")
                exponent = String(exponent.drop { $0 == "-" || $0 == "+" || $0 == "0" })
                text = mantissa + "e" + (negative ? "-" : "") + (exponent.isEmpty ? "0" : exponent)
            }
            return text
        }
        // As many decimals as the step has (0.25 → 2, 0.5 → 1, 20 → 0).
        var decimals = 0
        while decimals < 6 {
            let scaled = step * pow(10, Double(decimals))
            if abs(scaled - scaled.rounded()) < 1e-6 * max(1, scaled) { break }
            decimals += 1
        }
        return String(format: "%.\(decimals)f", value)
    }
}

/// One run's values in a chart.
struct ChartSeries {
    let label: String
    let style: SeriesStyle
    /// (epoch as shown, 1-based; value)
    let points: [(x: Double, y: Double)]
}

/// A legend laid out in rows under a chart.
struct Legend {
    let svg: String
    let height: Double

    /// Approximate width of text at the chart's 12 px font.
    static func textWidth(_ text: String) -> Double { Double(text.count) * 6.6 }

    static func shorten(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    init(entries: [(label: String, style: SeriesStyle)], left: Double, top: Double, width: Double, marker: Bool) {
        var x = left, y = top + 9
        var parts: [String] = []
        for entry in entries {
            let text = Self.shorten(entry.label, to: 48)
            let itemWidth = 26 + Self.textWidth(text) + 18
            if x > left, x + itemWidth > left + width { x = left; y += 18 }
            let swatch = marker
                ? "<circle cx=\"\(coordinate(x + 9))\" cy=\"\(coordinate(y))\" r=\"4.5\" fill=\"\(entry.style.color)\"/>"
                : "<line x1=\"\(coordinate(x))\" y1=\"\(coordinate(y))\" x2=\"\(coordinate(x + 20))\" y2=\"\(coordinate(y))\" \(entry.style.strokeAttributes)/>"
            parts.append("<g class=\"legend-item\"><title>\(escapeHTML(entry.label))</title>\(swatch)<text x=\"\(coordinate(x + 26))\" y=\"\(coordinate(y))\" dy=\"0.35em\">\(escapeHTML(text))</text></g>")
            x += itemWidth
        }
        svg = "<g class=\"legend\">" + parts.joined() + "</g>"
        height = entries.isEmpty ? 0 : y - top + 12
    }
}

/// A value per epoch, one line per run.
struct LineChart {
    /// The `data-chart` name.
    let name: String
    let title: String
    let yLabel: String
    let series: [ChartSeries]
    /// Bounds the value axis may not pass (accuracy: 0…100).
    var clamp: ClosedRange<Double>? = nil
    /// Start the value axis at zero.
    var fromZero = false
    /// Ring each run's highest point (best top-1).
    var ringMaximum = false
    /// Unit appended to values in tooltips.
    var unit = ""
    /// The horizontal axis: its label and the word before a point's position in tooltips.
    var xLabel = "epoch"

    static let width = 640.0
    static let left = 64.0, right = 20.0, top = 16.0, plotHeight = 250.0

    func svg() -> String {
        let width = Self.width, left = Self.left, top = Self.top
        let plotWidth = width - left - Self.right, bottom = top + Self.plotHeight
        let drawn = series.filter { !$0.points.isEmpty }
        let legend = Legend(entries: drawn.map { ($0.label, $0.style) }, left: left, top: bottom + 46, width: plotWidth, marker: false)
        let height = bottom + 46 + legend.height + 8
        var out = "<svg class=\"chart\" data-chart=\"\(name)\" data-series=\"\(drawn.count)\" viewBox=\"0 0 \(coordinate(width)) \(coordinate(height))\" "
            + "width=\"\(coordinate(width))\" height=\"\(coordinate(height))\" role=\"img\" aria-label=\"\(escapeHTML(title))\">"
        out += "<rect class=\"plot\" x=\"\(coordinate(left))\" y=\"\(coordinate(top))\" width=\"\(coordinate(plotWidth))\" height=\"\(coordinate(Self.plotHeight))\"/>"
        guard !drawn.isEmpty else {
            out += "<text class=\"empty\" x=\"\(coordinate(left + plotWidth / 2))\" y=\"\(coordinate(top + Self.plotHeight / 2))\" text-anchor=\"middle\">no run recorded this value</text></svg>"
            return out
        }
        let xs = drawn.flatMap { $0.points.map(\.x) }, ys = drawn.flatMap { $0.points.map(\.y) }
        let xTicks = Ticks(low: 1, high: max(xs.max()!, 2), count: 6, integer: true)
        let xLow = 1.0, xHigh = max(xs.max()!, 2)
        var yLow = fromZero ? min(0, ys.min()!) : ys.min()!, yHigh = ys.max()!
        if let clamp { yLow = max(yLow, clamp.lowerBound); yHigh = min(yHigh, clamp.upperBound) }
        var yTicks = Ticks(low: yLow, high: yHigh, count: 5)
        if let clamp, yTicks.lower < clamp.lowerBound || yTicks.upper > clamp.upperBound {
            yTicks = Ticks(low: max(yTicks.lower, clamp.lowerBound), high: min(yTicks.upper, clamp.upperBound), count: 5)
        }
        let px = { (x: Double) in left + (x - xLow) / (xHigh - xLow) * plotWidth }
        let py = { (y: Double) in bottom - (y - yTicks.lower) / (yTicks.upper - yTicks.lower) * Self.plotHeight }

        for value in yTicks.values {
            let y = coordinate(py(value))
            out += "<line class=\"grid\" x1=\"\(coordinate(left))\" y1=\"\(y)\" x2=\"\(coordinate(left + plotWidth))\" y2=\"\(y)\"/>"
            out += "<text class=\"tick\" x=\"\(coordinate(left - 8))\" y=\"\(y)\" dy=\"0.35em\" text-anchor=\"end\">\(yTicks.label(value))</text>"
        }
        // Epoch 1 is labelled too unless a round tick is close by.
        var xValues = xTicks.values.filter { $0 >= xLow && $0 <= xHigh }
        if let first = xValues.first, first > xLow, first - xLow >= xTicks.step * 0.4 { xValues.insert(xLow, at: 0) }
        for value in xValues {
            let x = coordinate(px(value))
            out += "<line class=\"tick-mark\" x1=\"\(x)\" y1=\"\(coordinate(bottom))\" x2=\"\(x)\" y2=\"\(coordinate(bottom + 5))\"/>"
            out += "<text class=\"tick\" x=\"\(x)\" y=\"\(coordinate(bottom + 18))\" text-anchor=\"middle\">\(Int(value))</text>"
        }
        out += "<line class=\"axis\" x1=\"\(coordinate(left))\" y1=\"\(coordinate(bottom))\" x2=\"\(coordinate(left + plotWidth))\" y2=\"\(coordinate(bottom))\"/>"
        out += "<line class=\"axis\" x1=\"\(coordinate(left))\" y1=\"\(coordinate(top))\" x2=\"\(coordinate(left))\" y2=\"\(coordinate(bottom))\"/>"
        out += "<text class=\"axis-label\" x=\"\(coordinate(left + plotWidth / 2))\" y=\"\(coordinate(bottom + 36))\" text-anchor=\"middle\">\(escapeHTML(xLabel))</text>"
        out += "<text class=\"axis-label\" transform=\"translate(14 \(coordinate(top + Self.plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(escapeHTML(yLabel))</text>"

        let markers = drawn.map(\.points.count).max()! <= 40
        for s in drawn {
            out += "<g class=\"series\" data-run=\"\(escapeHTML(s.label))\"><title>\(escapeHTML(s.label))</title>"
            let d = s.points.enumerated().map { i, p in (i == 0 ? "M" : "L") + coordinate(px(p.x)) + " " + coordinate(py(p.y)) }.joined(separator: " ")
            out += "<path d=\"\(d)\" \(s.style.strokeAttributes)/>"
            if markers || s.points.count == 1 {
                for p in s.points {
                    out += "<circle cx=\"\(coordinate(px(p.x)))\" cy=\"\(coordinate(py(p.y)))\" r=\"3.2\" fill=\"\(s.style.color)\" class=\"marker\">"
                        + "<title>\(escapeHTML(s.label)) · \(escapeHTML(xLabel)) \(Int(p.x)): \(Self.valueText(p.y))\(unit)</title></circle>"
                }
            }
            if ringMaximum, let best = s.points.max(by: { $0.y < $1.y }) {
                out += "<circle cx=\"\(coordinate(px(best.x)))\" cy=\"\(coordinate(py(best.y)))\" r=\"7\" fill=\"none\" stroke=\"\(s.style.color)\" stroke-width=\"1.5\">"
                    + "<title>\(escapeHTML(s.label)) · best: \(Self.valueText(best.y))\(unit) at epoch \(Int(best.x))</title></circle>"
            }
            out += "</g>"
        }
        out += legend.svg + "</svg>"
        return out
    }

    /// A value in a tooltip: four significant digits.
    static func valueText(_ value: Double) -> String {
        if value != 0, abs(value) < 1e-3 { return String(format: "%.3g", value) }
        return String(format: abs(value) >= 100 ? "%.1f" : (abs(value) >= 1 ? "%.3f" : "%.4f"), value)
    }
}

/// Per-class top-1 accuracy as a dot chart: one row per class, one dot per run, in up to three
/// columns so that a hundred classes stay legible.
struct PerClassChart {
    /// Class names in display order.
    let classes: [String]
    /// One entry per run with per-class accuracy: its label, style and class → percent.
    let runs: [(label: String, style: SeriesStyle, values: [String: Double])]

    static let width = 1160.0

    var columns: Int { classes.count <= 24 ? 1 : (classes.count <= 60 ? 2 : 3) }

    func svg() -> String {
        let columns = self.columns
        let rowsPerColumn = max(1, (classes.count + columns - 1) / columns)
        let rowHeight = columns == 1 ? 22.0 : 17.0
        let panelWidth = Self.width / Double(columns)
        let labelWidth = columns == 1 ? 220.0 : min(170, panelWidth * 0.4)
        let plotWidth = panelWidth - labelWidth - 26
        let top = 26.0, plotHeight = Double(rowsPerColumn) * rowHeight
        let bottom = top + plotHeight
        let legend = Legend(entries: runs.map { ($0.label, $0.style) }, left: labelWidth, top: bottom + 28, width: Self.width - labelWidth, marker: true)
        let height = bottom + 28 + legend.height + 8
        let labelLimit = Int(labelWidth / 6.4)
        var out = "<svg class=\"chart per-class\" data-chart=\"per_class\" data-series=\"\(runs.count)\" viewBox=\"0 0 \(coordinate(Self.width)) \(coordinate(height))\" "
            + "width=\"\(coordinate(Self.width))\" height=\"\(coordinate(height))\" role=\"img\" aria-label=\"Per-class top-1 accuracy\">"
        func position(_ index: Int) -> (x0: Double, y: Double) {
            let column = index / rowsPerColumn, row = index % rowsPerColumn
            return (Double(column) * panelWidth + labelWidth, top + (Double(row) + 0.5) * rowHeight)
        }
        let px = { (x0: Double, value: Double) in x0 + max(0, min(100, value)) / 100 * plotWidth }
        for column in 0..<columns {
            let x0 = Double(column) * panelWidth + labelWidth
            let rows = min(rowsPerColumn, classes.count - column * rowsPerColumn)
            guard rows > 0 else { continue }
            let panelBottom = top + Double(rows) * rowHeight
            for row in stride(from: 1, to: rows, by: 2) {
                out += "<rect class=\"band\" x=\"\(coordinate(x0 - labelWidth + 4))\" y=\"\(coordinate(top + Double(row) * rowHeight))\" width=\"\(coordinate(labelWidth + plotWidth - 4))\" height=\"\(coordinate(rowHeight))\"/>"
            }
            for value in stride(from: 0.0, through: 100, by: 25) {
                let x = coordinate(px(x0, value))
                out += "<line class=\"grid\" x1=\"\(x)\" y1=\"\(coordinate(top))\" x2=\"\(x)\" y2=\"\(coordinate(panelBottom))\"/>"
                out += "<text class=\"tick\" x=\"\(x)\" y=\"\(coordinate(top - 8))\" text-anchor=\"middle\">\(Int(value))</text>"
                out += "<text class=\"tick\" x=\"\(x)\" y=\"\(coordinate(panelBottom + 14))\" text-anchor=\"middle\">\(Int(value))</text>"
            }
            out += "<line class=\"axis\" x1=\"\(coordinate(x0))\" y1=\"\(coordinate(top))\" x2=\"\(coordinate(x0))\" y2=\"\(coordinate(panelBottom))\"/>"
        }
        out += "<text class=\"axis-label\" x=\"\(coordinate(labelWidth - 8))\" y=\"\(coordinate(top - 8))\" text-anchor=\"end\">top-1 %</text>"
        for (index, name) in classes.enumerated() {
            let (x0, y) = position(index)
            out += "<text class=\"class-name\" x=\"\(coordinate(x0 - 10))\" y=\"\(coordinate(y))\" dy=\"0.35em\" text-anchor=\"end\">"
                + "<title>\(escapeHTML(name))</title>\(escapeHTML(Legend.shorten(name, to: labelLimit)))</text>"
            let values = runs.compactMap { $0.values[name] }
            if values.count > 1, let low = values.min(), let high = values.max(), high > low {
                out += "<line class=\"spread\" x1=\"\(coordinate(px(x0, low)))\" y1=\"\(coordinate(y))\" x2=\"\(coordinate(px(x0, high)))\" y2=\"\(coordinate(y))\"/>"
            }
        }
        // Each run's dots sit a little above or below the row's centre so that equal values stay visible.
        let dodge = runs.count > 1 ? min(3.0, (rowHeight - 10) / Double(runs.count - 1)) : 0
        for (index, run) in runs.enumerated() {
            out += "<g class=\"series\" data-run=\"\(escapeHTML(run.label))\"><title>\(escapeHTML(run.label))</title>"
            let hollow = index >= SeriesStyle.palette.count
            let offset = (Double(index) - Double(runs.count - 1) / 2) * dodge
            for (classIndex, name) in classes.enumerated() {
                guard let value = run.values[name] else { continue }
                let (x0, row) = position(classIndex)
                let y = row + offset
                let fill = hollow ? "fill=\"none\" stroke=\"\(run.style.color)\" stroke-width=\"2\"" : "fill=\"\(run.style.color)\""
                out += "<circle class=\"dot\" cx=\"\(coordinate(px(x0, value)))\" cy=\"\(coordinate(y))\" r=\"\(columns == 1 ? "5" : "4.2")\" \(fill)>"
                    + "<title>\(escapeHTML(run.label)) · \(escapeHTML(name)): \(String(format: "%.1f", value)) %</title></circle>"
            }
            out += "</g>"
        }
        out += legend.svg + "</svg>"
        return out
    }
}

/// A chart as a file of its own (e.g. for a Markdown page): the namespace, a white background and
/// the chart styles the report page would give it (the light palette), inline.
func standaloneSVG(_ chart: String) -> String {
    let style = "<style>text{font:12px system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,\"DejaVu Sans\",sans-serif;fill:#5f6b7a}"
        + ".legend text,.class-name{fill:#1d2430}.plot{fill:#fcfcfd}.band{fill:#f4f6f8}.grid{stroke:#e8ecf0;stroke-width:1}"
        + ".axis,.tick-mark{stroke:#9aa5b1;stroke-width:1}.spread{stroke:#c9d0d8;stroke-width:4;stroke-linecap:round}"
        + ".marker,.dot{stroke:#fff;stroke-width:1}.empty{fill:#5f6b7a;font-size:14px}</style>"
    guard chart.hasPrefix("<svg "), let close = chart.firstIndex(of: ">") else { return chart }
    let opening = "<svg xmlns=\"http://www.w3.org/2000/svg\" " + chart[chart.index(chart.startIndex, offsetBy: 5)..<close] + ">"
    return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + opening + style
        + "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>" + chart[chart.index(after: close)...] + "\n"
}
