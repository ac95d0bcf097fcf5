// `ssf robustness`: top-1 on the clean split and under every ImageNet-C corruption and severity,
// the mean corruption accuracy and the relative drop; a JSON record and an HTML page with --output.
import ArgumentParser
import Foundation
import SSFData
import SSFFormats
import SSFReport
import SSFTraining

struct RobustnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robustness",
        abstract: "Top-1 under ImageNet-C corruptions at each severity: per corruption, mean (mCA) and the drop from clean.",
        discussion: """
        Evaluates the split once clean and once per corruption and severity. Each image is resized and \
        cropped as for `ssf eval`, then corrupted with the published ImageNet-C parameters (Hendrycks & \
        Dietterich, 2019) — their values at 224 pixels, spatial ones scaled by the image side / 224 — and \
        normalised. The random corruptions draw their fields from --seed and the image's index, so a run \
        repeats exactly. mCA is top-1 averaged over every corruption and severity; the relative drop is \
        (clean − mCA) / clean. Corruptions: \(Corruption.validNames).
        """)
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var dataOptions: EvalDataOptions
    @Option(help: "Comma-separated corruptions (default: all).") var corruptions: String?
    @Option(help: "Comma-separated severities from 1-5.") var severities = "1,2,3,4,5"
    @Option(help: "Seed of the corruptions' random fields.") var seed: UInt64 = 0
    @Option(help: "Directory to write robustness.json and robustness.html into (created if missing).") var output: String?
    @Option(help: "Page title (default: \"Robustness of MODEL\").") var title: String?
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print the results as one JSON object instead of the table.") var json = false

    func validate() throws {
        _ = try chosenCorruptions()
        _ = try chosenSeverities()
    }

    func chosenCorruptions() throws -> [Corruption] {
        guard let corruptions else { return Corruption.allCases }
        let names = corruptions.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--corruptions: no names given; valid names: \(Corruption.validNames)") }
        var out: [Corruption] = []
        for name in names {
            do { out.append(try Corruption(named: name)) } catch let error as CorruptionError { throw ValidationError("--corruptions: \(error.description)") }
        }
        guard Set(out).count == out.count else { throw ValidationError("--corruptions: a corruption is listed twice") }
        return out
    }

    func chosenSeverities() throws -> [Int] {
        let parts = severities.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let values = parts.compactMap { Int($0) }
        guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ Corruption.severities.contains($0) }) else {
            throw ValidationError("--severities: '\(severities)' is not a comma-separated list of integers from 1 to 5")
        }
        guard Set(values).count == values.count else { throw ValidationError("--severities: a severity is listed twice") }
        return values.sorted()
    }

    func run() throws {
        threadOptions.apply()
        let corruptions = try chosenCorruptions(), severities = try chosenSeverities()
        let prepared = try PreparedEvaluation.prepare(model: modelOptions, data: dataOptions, seed: seed)
        let total = 1 + corruptions.count * severities.count
        let start = Date()
        func progress(_ step: Int, _ what: String, _ result: EvaluationResult) {
            printError(String(format: "[%d/%d] %@: top-1 %.2f %% (%d images, %.1f s; %.0f s so far)", step, total, what, result.top1,
                              result.images, result.seconds, Date().timeIntervalSince(start)))
        }
        let clean = try prepared.evaluate()
        progress(1, "clean", clean)
        var rows: [RobustnessPageContent.Row] = []
        var step = 1
        for corruption in corruptions {
            var top1: [Double] = []
            for severity in severities {
                let spec = CorruptionSpec(corruption, severity: severity)
                let result = try prepared.evaluate(corruption: spec)
                step += 1
                progress(step, spec.description, result)
                top1.append(result.top1)
            }
            rows.append(RobustnessPageContent.Row(corruption: corruption.rawValue, top1: top1))
        }
        var notes: [String] = []
        if let subset = prepared.classSubset, let file = dataOptions.classSubset {
            notes.append("Class subset: \(file) (\(subset.columns.count) of the head's \(prepared.loaded.model.numClasses) classes)")
        }
        notes.append("Input: \(prepared.preprocess.inputSize) pixels, " + (prepared.config.directResize ? "direct resize" : "resize and center crop (crop fraction \(prepared.preprocess.cropFraction))"))
        let content = RobustnessPageContent(title: title ?? "Robustness of \(prepared.modelName)", model: prepared.modelName, data: prepared.data,
                                            split: prepared.split, images: clean.images, seed: seed, notes: notes,
                                            cleanTop1: clean.top1, cleanTop5: clean.top5, severities: severities, rows: rows)
        let record = Self.record(content, clean: clean, classSubset: dataOptions.classSubset)
        if json {
            print(record.serialized)
        } else {
            print(Self.table(content))
        }
        if let output {
            let folder = URL(fileURLWithPath: output)
            do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
                throw ValidationError("--output \(output): cannot create the directory (\(error.localizedDescription))")
            }
            let jsonURL = folder.appendingPathComponent("robustness.json")
            do { try Data((record.serialized + "\n").utf8).write(to: jsonURL, options: .atomic) } catch {
                throw ValidationError("\(jsonURL.path): cannot be written (\(error.localizedDescription))")
            }
            let page = folder.appendingPathComponent("robustness.html")
            try RobustnessReport.write(content, to: page)
            let figures = RobustnessReport.figures(content)
            try Data(figures.perCorruption.utf8).write(to: folder.appendingPathComponent("robustness-corruptions.svg"), options: .atomic)
            try Data(figures.means.utf8).write(to: folder.appendingPathComponent("robustness-severity.svg"), options: .atomic)
            printError("wrote \(jsonURL.path), \(page.path) and the figures robustness-corruptions.svg, robustness-severity.svg")
        }
    }

    /// The plain-text table: top-1 per corruption and severity with each corruption's mean, then the summary.
    static func table(_ c: RobustnessPageContent) -> String {
        let nameWidth = max(c.rows.map(\.corruption.count).max() ?? 0, "mean over corruptions".count)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        func right(_ s: String) -> String { String(repeating: " ", count: max(0, 8 - s.count)) + s }
        func cell(_ v: Double) -> String { right(String(format: "%.2f", v)) }
        var lines = [pad("top-1 %", nameWidth) + c.severities.map { right("sev \($0)") }.joined() + right("mean")]
        for row in c.rows { lines.append(pad(row.corruption, nameWidth) + row.top1.map(cell).joined() + cell(row.mean)) }
        lines.append(pad("mean over corruptions", nameWidth) + c.severityMeans.map(cell).joined() + cell(c.meanCorruptionAccuracy))
        lines.append("")
        lines.append(String(format: "clean top-1 %.2f %%  mCA %.2f %%  relative drop %.1f %%  (%@ on %@, %@, %d images, seed %llu)",
                            c.cleanTop1, c.meanCorruptionAccuracy, 100 * c.relativeDrop, c.model, c.data, c.split, c.images, c.seed))
        return lines.joined(separator: "\n")
    }

    /// robustness.json: the settings, the clean result, top-1 per corruption and severity, mCA and the drop.
    static func record(_ c: RobustnessPageContent, clean: EvaluationResult, classSubset: String?) -> JSONValue {
        let corruptions = c.rows.map { row in
            JSONMember(row.corruption, [
                JSONMember("top1", .orderedObject(zip(c.severities, row.top1).map { JSONMember(String($0), JSONValue($1, decimals: 4)) })),
                JSONMember("mean", JSONValue(row.mean, decimals: 4)),
            ].asObject)
        }
        var members: [JSONMember] = [
            JSONMember("model", JSONValue(c.model)), JSONMember("data", JSONValue(c.data)), JSONMember("split", JSONValue(c.split)),
            JSONMember("images", JSONValue(c.images)), JSONMember("seed", .number(String(c.seed))),
            JSONMember("severities", .array(c.severities.map { JSONValue($0) })),
        ]
        if let classSubset { members.append(JSONMember("class_subset", JSONValue(classSubset))) }
        members += [
            JSONMember("clean", [JSONMember("top1", JSONValue(clean.top1, decimals: 4)), JSONMember("top5", JSONValue(clean.top5, decimals: 4)),
                                 JSONMember("loss", JSONValue(clean.loss, decimals: 6))].asObject),
            JSONMember("corruptions", .orderedObject(corruptions)),
            JSONMember("severity_means", .orderedObject(zip(c.severities, c.severityMeans).map { JSONMember(String($0), JSONValue($1, decimals: 4)) })),
            JSONMember("mca", JSONValue(c.meanCorruptionAccuracy, decimals: 4)),
            JSONMember("relative_drop", JSONValue(c.relativeDrop, decimals: 6)),
        ]
        return .orderedObject(members)
    }
}
