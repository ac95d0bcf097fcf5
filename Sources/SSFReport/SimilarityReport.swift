// The feature-similarity page (`ssf analyze similarity`): CKA between each method's features and a
// reference run's, layer by layer, as a table, a heat map (methods × layers) and curves, in the run
// report's style (the same document shell, CSS and self-check).
import Foundation

/// What the similarity page shows, in plain values.
public struct SimilarityPageContent: Sendable {
    /// One compared run.
    public struct Method: Sendable {
        public var label: String
        /// CKA with the reference at each layer (nil where it is undefined: a constant representation).
        public var values: [Double?]
        /// The run's best top-1 (percent), when its summary has one.
        public var top1: Double?
        public init(label: String, values: [Double?], top1: Double?) { self.label = label; self.values = values; self.top1 = top1 }
    }

    public var title: String
    public var model: String
    /// The reference run's label (usually full fine-tuning) and its top-1.
    public var reference: String
    public var referenceTop1: Double?
    /// e.g. "imagefolder:/data/cifar10 (test): 512 images".
    public var data: String
    public var batchSize: Int
    public var kernel: String
    /// The layers in forward order (e.g. "block 1" … "pre-logits").
    public var layers: [String]
    public var methods: [Method]

    public init(title: String, model: String, reference: String, referenceTop1: Double?, data: String, batchSize: Int, kernel: String,
                layers: [String], methods: [Method]) {
        self.title = title; self.model = model; self.reference = reference; self.referenceTop1 = referenceTop1; self.data = data
        self.batchSize = batchSize; self.kernel = kernel; self.layers = layers; self.methods = methods
    }
}

/// Renders and writes the similarity page.
public enum SimilarityReport {
    public static func html(_ content: SimilarityPageContent, generated: Date = Date()) -> String {
        SimilarityPage(content: content, generated: generated).html()
    }

    /// Renders and writes atomically.
    public static func write(_ content: SimilarityPageContent, to output: URL) throws {
        try RunReport.writePage(html(content), to: output)
    }

    /// The page's two charts as standalone SVG files' text: `heatmap` (runs × layers) and `layers` (curves).
    public static func figures(_ content: SimilarityPageContent) -> (heatmap: String, layers: String) {
        let page = SimilarityPage(content: content, generated: Date())
        return (standaloneSVG(page.heatMapSVG()), standaloneSVG(page.layersChart().svg()))
    }
}

struct SimilarityPage {
    let content: SimilarityPageContent
    let generated: Date

    private var styles: [SeriesStyle] { content.methods.indices.map(SeriesStyle.init(index:)) }

    func html() -> String {
        ReportPage.document(title: content.title, generator: "ssf analyze similarity",
                            body: header() + "<main>\n" + tableSection() + heatMapSection() + curvesSection() + methodSection() + "</main>\n")
    }

    private func swatch(_ index: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(styles[index].color)\" aria-hidden=\"true\"></span>"
    }

    private func header() -> String {
        let suffix = "\(content.model) · \(content.methods.count) run\(content.methods.count == 1 ? "" : "s") against \(content.reference) · \(content.layers.count) layers"
        var out = "<header><h1>\(escapeHTML(content.title))</h1>" + ReportPage.generatedLine(generated, suffix: escapeHTML(suffix))
        let last = content.layers.count - 1
        if last >= 0, let closest = content.methods.indices.filter({ content.methods[$0].values[last] != nil })
            .max(by: { content.methods[$0].values[last]! < content.methods[$1].values[last]! }) {
            out += "<p class=\"lead\">Closest to \(escapeHTML(content.reference)) at the \(escapeHTML(content.layers[last])) layer: "
                + "\(swatch(closest))<strong>\(escapeHTML(content.methods[closest].label))</strong> — CKA "
                + String(format: "%.3f", content.methods[closest].values[last]!) + "</p>"
        }
        return out + "</header>\n"
    }

    private func cell(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? Format.missing }

    private func tableSection() -> String {
        let n = content.layers.count
        var out = "<section id=\"similarity\"><h2>CKA with \(escapeHTML(content.reference))</h2><div class=\"table-wrap\"><table class=\"runs similarity\"><thead><tr>"
        out += "<th scope=\"col\">Run</th><th scope=\"col\" class=\"num\">Top-1</th>"
        out += content.layers.map { "<th scope=\"col\" class=\"num\">\(escapeHTML($0))</th>" }.joined()
        out += "<th scope=\"col\" class=\"num\">Mean</th></tr></thead><tbody>\n"
        for (index, method) in content.methods.enumerated() {
            out += "<tr data-run=\"\(escapeHTML(method.label))\"><th scope=\"row\">\(swatch(index))<span class=\"run-name\">\(escapeHTML(method.label))</span></th>"
            out += "<td class=\"num\">\(method.top1.map(Format.percent) ?? Format.missing)</td>"
            for l in 0..<n { out += "<td class=\"num\" data-layer=\"\(l)\">\(cell(method.values[l]))</td>" }
            let defined = method.values.compactMap { $0 }
            out += "<td class=\"num\">\(cell(defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count)))</td></tr>\n"
        }
        out += "<tr data-run=\"reference\"><th scope=\"row\"><span class=\"run-name\">\(escapeHTML(content.reference)) (reference)</span></th>"
            + "<td class=\"num\">\(content.referenceTop1.map(Format.percent) ?? Format.missing)</td>"
            + String(repeating: "<td class=\"num\">1.000</td>", count: n + 1) + "</tr>\n"
        out += "</tbody></table></div></section>\n"
        return out
    }

    /// A colour for CKA in [0, 1]: from a pale blue-grey at 0 to a deep blue at 1.
    static func color(_ value: Double) -> String {
        let t = min(max(value, 0), 1)
        let low = (r: 240.0, g: 243.0, b: 246.0), high = (r: 33.0, g: 76.0, b: 140.0)
        let r = Int((low.r + (high.r - low.r) * t).rounded()), g = Int((low.g + (high.g - low.g) * t).rounded()), b = Int((low.b + (high.b - low.b) * t).rounded())
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    private func heatMapSection() -> String {
        "<section id=\"heatmap\"><h2>Layers × runs</h2><div class=\"charts\"><figure>" + heatMapSVG()
            + "<figcaption>CKA with \(escapeHTML(content.reference)) (darker: more similar)</figcaption></figure></div></section>\n"
    }

    func heatMapSVG() -> String {
        let labelWidth = min(220.0, 24 + Double(content.methods.map(\.label.count).max() ?? 4) * 6.6)
        let columns = content.layers.count
        let cellWidth = max(18.0, min(48.0, (640 - labelWidth - 20) / Double(max(columns, 1))))
        let cellHeight = 26.0, top = 8.0
        let width = labelWidth + cellWidth * Double(columns) + 20
        let height = top + cellHeight * Double(content.methods.count) + 54
        var out = "<svg class=\"chart\" data-chart=\"cka_heatmap\" data-series=\"\(content.methods.count)\" viewBox=\"0 0 \(coordinate(width)) \(coordinate(height))\" "
            + "width=\"\(coordinate(width))\" height=\"\(coordinate(height))\" role=\"img\" aria-label=\"CKA with \(escapeHTML(content.reference)) per layer\">"
        for (row, method) in content.methods.enumerated() {
            let y = top + Double(row) * cellHeight
            out += "<g class=\"series\" data-run=\"\(escapeHTML(method.label))\">"
            out += "<text class=\"tick\" x=\"\(coordinate(labelWidth - 8))\" y=\"\(coordinate(y + cellHeight / 2))\" dy=\"0.35em\" text-anchor=\"end\">\(escapeHTML(Legend.shorten(method.label, to: 30)))</text>"
            for (column, value) in method.values.enumerated() {
                let x = labelWidth + Double(column) * cellWidth
                let fill = value.map(Self.color) ?? "#ffffff"
                out += "<rect x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" width=\"\(coordinate(cellWidth - 1))\" height=\"\(coordinate(cellHeight - 1))\" fill=\"\(fill)\">"
                    + "<title>\(escapeHTML(method.label)) · \(escapeHTML(content.layers[column])): CKA \(cell(value))</title></rect>"
            }
            out += "</g>"
        }
        let axisY = top + cellHeight * Double(content.methods.count)
        let step = max(1, Int((Double(columns) * 28 / (cellWidth * Double(columns))).rounded(.up)))
        for column in stride(from: 0, to: columns, by: step) {
            let x = labelWidth + (Double(column) + 0.5) * cellWidth
            let label = column == columns - 1 && content.layers[column] == "pre-logits" ? "pre" : "\(column + 1)"
            out += "<text class=\"tick\" x=\"\(coordinate(x))\" y=\"\(coordinate(axisY + 14))\" text-anchor=\"middle\">\(label)</text>"
        }
        out += "<text class=\"axis-label\" x=\"\(coordinate(labelWidth + cellWidth * Double(columns) / 2))\" y=\"\(coordinate(axisY + 32))\" text-anchor=\"middle\">layer</text>"
        // Colour scale.
        let scaleX = labelWidth, scaleY = axisY + 40
        for i in 0..<10 {
            out += "<rect x=\"\(coordinate(scaleX + Double(i) * 14))\" y=\"\(coordinate(scaleY))\" width=\"14\" height=\"8\" fill=\"\(Self.color(Double(i) / 9))\"/>"
        }
        out += "<text class=\"tick\" x=\"\(coordinate(scaleX - 4))\" y=\"\(coordinate(scaleY + 4))\" dy=\"0.35em\" text-anchor=\"end\">0</text>"
        out += "<text class=\"tick\" x=\"\(coordinate(scaleX + 144))\" y=\"\(coordinate(scaleY + 4))\" dy=\"0.35em\">1</text>"
        return out + "</svg>"
    }

    private func curvesSection() -> String {
        "<section id=\"curves\"><h2>Per layer</h2><div class=\"charts\"><figure>" + layersChart().svg()
            + "<figcaption>CKA with \(escapeHTML(content.reference)) at each layer; the last is the pre-logit features</figcaption></figure></div></section>\n"
    }

    func layersChart() -> LineChart {
        let series = content.methods.enumerated().map { index, method in
            ChartSeries(label: method.label, style: styles[index],
                        points: method.values.enumerated().compactMap { l, v in v.map { (x: Double(l + 1), y: $0) } })
        }
        var chart = LineChart(name: "cka_layers", title: "CKA per layer", yLabel: "CKA with \(content.reference)", series: series)
        chart.clamp = 0...1
        chart.xLabel = "layer"
        return chart
    }

    private func methodSection() -> String {
        "<section id=\"method\"><h2>How it is measured</h2><p class=\"explain\">"
            + "Images: \(escapeHTML(content.data)), every model seeing the same images in the same order. Layers: each block's output "
            + "(flattened per image), then the pre-logit features the head reads. Minibatch CKA with the \(escapeHTML(content.kernel)) kernel over "
            + "minibatches of \(content.batchSize): the unbiased HSIC estimator (Song et al., 2012) averaged over minibatches before the ratio "
            + "(Nguyen, Raghu &amp; Kornblith, 2021), in Float64. 1 means the two representations agree up to an orthogonal transform and a scale.</p></section>\n"
    }
}
