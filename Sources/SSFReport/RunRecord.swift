// Reading a training run directory (`metrics.jsonl`, `summary.json`, `config.yaml`) into a
// `RunRecord`: every field optional, so older runs and unfinished ones still read.
import Foundation

/// Input a report cannot be made from: the message names the file (and line) and the problem.
public struct ReportError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One line of `metrics.jsonl`, as training writes it and reports read it; a value an older run
/// did not write (or an epoch that was not evaluated) is nil.
public struct EpochRecord: Encodable, Equatable, Sendable {
    /// 0-based, as written.
    public var epoch: Int
    public var trainLoss: Double?
    public var evalLoss: Double?
    public var top1: Double?
    public var top5: Double?
    public var lr: Double?
    public var imagesPerSecond: Double?
    public var epochSeconds: Double?

    public init(epoch: Int, trainLoss: Double? = nil, evalLoss: Double? = nil, top1: Double? = nil, top5: Double? = nil,
                lr: Double? = nil, imagesPerSecond: Double? = nil, epochSeconds: Double? = nil) {
        self.epoch = epoch; self.trainLoss = trainLoss; self.evalLoss = evalLoss; self.top1 = top1; self.top5 = top5
        self.lr = lr; self.imagesPerSecond = imagesPerSecond; self.epochSeconds = epochSeconds
    }

    /// The keys of `metrics.jsonl`.
    public enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", evalLoss = "eval_loss", top1, top5, lr, imagesPerSecond = "images_per_s"
        case epochSeconds = "epoch_seconds"
    }

    /// The line as written: one JSON object, keys sorted.
    public func jsonLine() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }
}

/// `summary.json` of a finished run, as training writes it and reports and commands read it; a key
/// an older run did not write is nil.
public struct RunSummary: Encodable, Equatable, Sendable {
    public var model: String?
    public var method: String?
    public var data: String?
    public var epochs: Int?
    public var bestTop1: Double?
    /// 1-based, as written.
    public var bestEpoch: Int?
    public var finalTop1: Double?
    public var finalTop5: Double?
    public var finalEvalLoss: Double?
    public var trainableParams: Int?
    public var trainSeconds: Double?
    public var selectedOn: String?
    public var trainImages: Int?
    public var evalImages: Int?
    public var ema: Bool?
    public var peakRSSMiB: Double?
    public var trainImagesPerSecond: Double?
    public var deltaBytes: Int?
    /// Class name → top-1 percent.
    public var perClassTop1: [String: Double]?
    /// Batch-norm mode used (`train` or `frozen`), the new head's initialisation, the first batch's loss.
    public var batchNorm: String?
    public var headInit: String?
    public var firstBatchLoss: Double?

    public init() {}

    /// The keys of `summary.json`.
    public enum CodingKeys: String, CodingKey {
        case model, method, data, epochs, bestTop1 = "best_top1", bestEpoch = "best_epoch", finalTop1 = "final_top1"
        case finalTop5 = "final_top5", finalEvalLoss = "final_eval_loss", trainableParams = "trainable_params"
        case trainSeconds = "train_seconds", selectedOn = "selected_on", trainImages = "train_images", evalImages = "eval_images"
        case ema, peakRSSMiB = "peak_rss_mib", trainImagesPerSecond = "train_images_per_s", deltaBytes = "delta_bytes"
        case perClassTop1 = "per_class_top1", batchNorm = "bn", headInit = "head_init", firstBatchLoss = "first_batch_loss"
    }

    /// The file's contents: pretty-printed, keys sorted.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// The summary in `directory`, nil when the run has not finished.
    public static func read(inRunDirectory directory: URL) throws -> RunSummary? {
        let url = directory.appendingPathComponent("summary.json")
        return FileManager.default.fileExists(atPath: url.path) ? try RunRecord.readSummary(url) : nil
    }
}

/// Everything a report shows of one run directory.
public struct RunRecord: Equatable, Sendable {
    public var directory: URL
    /// How the run is named in the table and the legends (the directory's name, made unique).
    public var label: String
    /// Sorted by epoch.
    public var epochs: [EpochRecord]
    /// nil when the run has not finished (no `summary.json`).
    public var summary: RunSummary?
    /// From `config.yaml`, for runs without a summary.
    public var configModel: String?
    public var configMethod: String?
    public var configData: String?
    /// Epochs the configuration asks for (cosine + cooldown), when `config.yaml` says.
    public var configEpochs: Int?
    /// A stopped run left `resume.safetensors`.
    public var resumable: Bool

    public var finished: Bool { summary != nil }
    public var model: String? { summary?.model ?? configModel }
    public var method: String? { summary?.method ?? configMethod }
    public var data: String? { summary?.data ?? configData }

    /// Reads one run directory; `label` defaults to the directory's name.
    public init(directory: URL, label: String? = nil) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw ReportError("\(directory.path): no such directory")
        }
        guard isDirectory.boolValue else { throw ReportError("\(directory.path) is a file, not a run directory") }
        let metricsURL = directory.appendingPathComponent("metrics.jsonl")
        guard fm.fileExists(atPath: metricsURL.path) else {
            throw ReportError("\(directory.path) is not a run directory: it has no metrics.jsonl")
        }
        self.directory = directory
        self.label = label ?? directory.standardizedFileURL.lastPathComponent
        epochs = try Self.readMetrics(metricsURL)
        let summaryURL = directory.appendingPathComponent("summary.json")
        summary = fm.fileExists(atPath: summaryURL.path) ? try Self.readSummary(summaryURL) : nil
        let configURL = directory.appendingPathComponent("config.yaml")
        let config = fm.fileExists(atPath: configURL.path) ? try Self.readConfig(configURL) : [:]
        configModel = config["model"].flatMap { $0.isEmpty ? nil : $0 }
        configMethod = config["method"].flatMap { $0.isEmpty ? nil : $0 }
        configData = config["data"].flatMap { $0.isEmpty ? nil : $0 }
        if let cosine = config["epochs"].flatMap({ Int($0) }) {
            configEpochs = cosine + (config["cooldown_epochs"].flatMap { Int($0) } ?? 0)
        }
        resumable = fm.fileExists(atPath: directory.appendingPathComponent("resume.safetensors").path)
    }

    /// Reads the given run directories, giving each a distinct label: the directory's name, or
    /// more of its path where two names collide.
    public static func read(_ directories: [URL]) throws -> [RunRecord] {
        var records = try directories.map { try RunRecord(directory: $0) }
        let labels = distinctLabels(directories.map { $0.standardizedFileURL.pathComponents.filter { $0 != "/" } })
        for i in records.indices { records[i].label = labels[i] }
        return records
    }

    /// The shortest path suffixes that tell different directories apart; the same directory given
    /// twice is numbered.
    static func distinctLabels(_ paths: [[String]]) -> [String] {
        let labels = paths.indices.map { i -> String in
            var depth = 1
            while depth < paths[i].count,
                  paths.indices.contains(where: { j in paths[j] != paths[i] && paths[j].suffix(depth).elementsEqual(paths[i].suffix(depth)) }) {
                depth += 1
            }
            return paths[i].isEmpty ? "/" : paths[i].suffix(depth).joined(separator: "/")
        }
        var seen: [String: Int] = [:]
        return labels.map { label in
            seen[label, default: 0] += 1
            return seen[label]! > 1 ? "\(label) #\(seen[label]!)" : label
        }
    }

    // MARK: Files

    static func readMetrics(_ url: URL) throws -> [EpochRecord] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ReportError("\(url.path): cannot be read as UTF-8 text (\(error.localizedDescription))")
        }
        var records: [EpochRecord] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let place = "\(url.path):\(index + 1)"
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) else {
                throw ReportError("\(place): not valid JSON: \(line.prefix(80))")
            }
            guard let fields = object as? [String: Any] else { throw ReportError("\(place): expected a JSON object, found \(line.prefix(80))") }
            let values = Fields(fields, place: place)
            typealias K = EpochRecord.CodingKeys
            guard let epoch = try values.int(K.epoch) else { throw ReportError("\(place): no 'epoch'") }
            guard epoch >= 0 else { throw ReportError("\(place): 'epoch' is \(epoch), expected 0 or more") }
            records.append(EpochRecord(epoch: epoch, trainLoss: try values.double(K.trainLoss), evalLoss: try values.double(K.evalLoss),
                                       top1: try values.double(K.top1), top5: try values.double(K.top5), lr: try values.double(K.lr),
                                       imagesPerSecond: try values.double(K.imagesPerSecond), epochSeconds: try values.double(K.epochSeconds)))
        }
        return records.sorted { $0.epoch < $1.epoch }
    }

    static func readSummary(_ url: URL) throws -> RunSummary {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) } catch {
            throw ReportError("\(url.path): not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw ReportError("\(url.path): expected a JSON object") }
        let values = Fields(fields, place: url.path)
        typealias K = RunSummary.CodingKeys
        var s = RunSummary()
        s.model = try values.string(K.model); s.method = try values.string(K.method); s.data = try values.string(K.data)
        s.epochs = try values.int(K.epochs); s.bestTop1 = try values.double(K.bestTop1); s.bestEpoch = try values.int(K.bestEpoch)
        s.finalTop1 = try values.double(K.finalTop1); s.finalTop5 = try values.double(K.finalTop5)
        s.finalEvalLoss = try values.double(K.finalEvalLoss); s.trainableParams = try values.int(K.trainableParams)
        s.trainSeconds = try values.double(K.trainSeconds); s.selectedOn = try values.string(K.selectedOn)
        s.trainImages = try values.int(K.trainImages); s.evalImages = try values.int(K.evalImages); s.ema = try values.bool(K.ema)
        s.peakRSSMiB = try values.double(K.peakRSSMiB); s.trainImagesPerSecond = try values.double(K.trainImagesPerSecond)
        s.deltaBytes = try values.int(K.deltaBytes); s.batchNorm = try values.string(K.batchNorm)
        s.headInit = try values.string(K.headInit); s.firstBatchLoss = try values.double(K.firstBatchLoss)
        if let raw = fields[K.perClassTop1.rawValue], !(raw is NSNull) {
            guard let perClass = raw as? [String: Any] else { throw ReportError("\(url.path): 'per_class_top1' is not an object") }
            s.perClassTop1 = try perClass.mapValues { value in
                guard let number = Fields.number(value) else {
                    throw ReportError("\(url.path): 'per_class_top1' holds a value that is not a number: \(value)")
                }
                return number
            }
        }
        return s
    }

    /// The top-level `key: value` lines of `config.yaml` (the flat mapping `ssf train` writes).
    static func readConfig(_ url: URL) throws -> [String: String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ReportError("\(url.path): cannot be read as UTF-8 text")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let first = line.first, first != " ", first != "\t", first != "#", first != "-",
                  let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let q = value.first, q == "'" || q == "\"", value.last == q {
                value = String(value.dropFirst().dropLast())
                value = q == "'" ? value.replacingOccurrences(of: "''", with: "'") : value.replacingOccurrences(of: "\\\"", with: "\"")
            } else if let comment = value.range(of: " #") {
                value = value[..<comment.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            if value == "null" || value == "~" { continue }
            values[key] = value
        }
        return values
    }
}

/// Typed access to a JSON object's values; a present value of the wrong type is an error naming the key.
private struct Fields {
    let object: [String: Any]
    let place: String

    init(_ object: [String: Any], place: String) { self.object = object; self.place = place }

    /// JSON numbers arrive as NSNumber (so do true and false, which read as 1 and 0).
    static func number(_ value: Any) -> Double? { (value as? NSNumber)?.doubleValue }

    private func present(_ key: String) -> Any? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        return value
    }

    func double(_ key: some CodingKey) throws -> Double? { try double(key.stringValue) }
    func int(_ key: some CodingKey) throws -> Int? { try int(key.stringValue) }
    func string(_ key: some CodingKey) throws -> String? { try string(key.stringValue) }
    func bool(_ key: some CodingKey) throws -> Bool? { try bool(key.stringValue) }

    func double(_ key: String) throws -> Double? {
        guard let value = present(key) else { return nil }
        guard let number = Self.number(value) else { throw ReportError("\(place): '\(key)' is not a number: \(value)") }
        return number
    }

    func int(_ key: String) throws -> Int? {
        guard let number = try double(key) else { return nil }
        guard number.rounded() == number, abs(number) < 1e15 else { throw ReportError("\(place): '\(key)' is not an integer: \(number)") }
        return Int(number)
    }

    func string(_ key: String) throws -> String? {
        guard let value = present(key) else { return nil }
        guard let text = value as? String else { throw ReportError("\(place): '\(key)' is not a string: \(value)") }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = present(key) else { return nil }
        guard let flag = value as? Bool else { throw ReportError("\(place): '\(key)' is not true or false: \(value)") }
        return flag
    }
}
