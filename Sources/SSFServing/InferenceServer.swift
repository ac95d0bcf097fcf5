// `ssf serve`: one frozen base and the tasks of a directory of delta files, over HTTP — the Open
// Inference Protocol v2 REST routes, a curl-friendly classify route, and Prometheus metrics.
import Foundation
import Hummingbird
import Logging
import NIOCore
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTuning

/// What `ssf serve` is started with.
public struct ServeOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8000
    public var maxBatch = 16
    public var maxDelayMs = 5.0
    public var maxQueue = 256
    public var maxBodyBytes = 16 << 20
    /// How often the tasks directory is scanned for added, replaced and removed deltas (0: never).
    public var watchInterval: TimeInterval = 2
    /// One JSON line per request on the log.
    public var logRequests = true
    /// The HTTP framework's own log lines (connection errors, shutdown) on standard output.
    public var frameworkLogs = true
    public init() {}
}

/// The tasks and the batcher behind the routes: many tasks on one shared base, or one task merged.
public final class InferenceService: @unchecked Sendable {
    public let modelName: String
    public let preprocess: PreprocessConfig
    /// The directory the tasks come from (nil when serving one merged task).
    public let tasksDirectory: URL?
    /// The task served from merged weights, when that is the mode.
    public let mergedTask: String?
    let batcher: TaskBatcher
    let metrics = ServeMetrics()
    let log: @Sendable (String) -> Void
    private let multi: MultiTaskModel?
    private let lock = NSLock()
    /// Tasks refused at load, with the reason (shown as not ready).
    private var refused: [String: String] = [:]
    private var classNames: [String: [String]] = [:]
    /// Class count of every task being served; kept here so that metadata and routing never wait
    /// for the batch that holds the model.
    private var served: [String: Int] = [:]
    /// The tasks directory as last scanned, and the version of each file last loaded (or refused).
    private var lastScan: [String: FileVersion] = [:], applied: [String: FileVersion] = [:]
    private let transform: EvalTransform

    struct FileVersion: Equatable { let modified: Date; let size: Int }

    /// Builds the model on `base` and loads every `*.safetensors` delta in `tasks`.
    public convenience init(model: String, base: [String: Tensor], tasks: URL, options: ServeOptions, log: @escaping @Sendable (String) -> Void) throws {
        let served = try MultiTaskModel(model: model, base: base)
        self.init(model: model, preprocess: served.spec.preprocess, batchModel: served, multi: served, tasks: tasks, merged: nil, options: options, log: log)
        rescan(initial: true)
    }

    /// Serves the single task of `delta` (named by its file stem) from weights merged into `base`.
    public convenience init(model: String, base: [String: Tensor], merged delta: URL, options: ServeOptions, log: @escaping @Sendable (String) -> Void) throws {
        let name = delta.deletingPathExtension().lastPathComponent
        let task = try MergedTaskModel(model: model, base: base, task: name, delta: try DeltaFile(contentsOf: delta))
        self.init(model: model, preprocess: task.spec.preprocess, batchModel: task, multi: nil, tasks: nil, merged: name, options: options, log: log)
        served = [name: task.classes]
        if let names = task.classNames { classNames[name] = names }
        log(logLine(["event": "task_loaded", "task": name, "merged": true, "merge_max_abs_diff": Double(task.maxDifference)]))
    }

    private init(model: String, preprocess: PreprocessConfig, batchModel: any TaskBatchModel, multi: MultiTaskModel?, tasks: URL?, merged: String?,
                 options: ServeOptions, log: @escaping @Sendable (String) -> Void) {
        modelName = model
        self.preprocess = preprocess
        tasksDirectory = tasks
        mergedTask = merged
        self.multi = multi
        self.log = log
        transform = InferenceService.transform(preprocess)
        let metrics = self.metrics
        batcher = TaskBatcher(model: batchModel, maxBatch: options.maxBatch, maxDelay: options.maxDelayMs / 1000, maxQueue: options.maxQueue,
                              observe: { metrics.observeBatch(size: $0, waits: $1) })
    }

    private static func transform(_ p: PreprocessConfig) -> EvalTransform {
        EvalTransform(imageSize: p.inputSize, cropFraction: p.cropFraction, filter: p.interpolation == .bicubic ? .bicubic : .bilinear,
                      mean: p.mean, std: p.std)
    }

    /// Why this server cannot load or unload tasks, if it cannot.
    var repositoryRefusal: String? {
        mergedTask.map { "this server serves \($0) from merged weights (--merged); it loads and unloads no tasks" }
    }

    /// Loads (or reloads) `<tasks>/<name>.safetensors`.
    public func load(_ name: String) throws {
        guard let multi, let dir = tasksDirectory else { throw TaskLoadError(task: name, problem: repositoryRefusal ?? "no tasks directory") }
        let url = dir.appendingPathComponent(name + ".safetensors")
        let version = InferenceService.version(of: url)
        do {
            let delta = try DeltaFile(contentsOf: url)
            let classes = try batcher.betweenBatches { () -> Int in
                try multi.add(name, delta: delta)
                return multi.tasks[name]!.classes
            }
            lock.withLock { refused[name] = nil; classNames[name] = delta.classNames; served[name] = classes; applied[name] = version }
            log(logLine(["event": "task_loaded", "task": name, "classes": classes]))
        } catch {
            lock.withLock { refused[name] = "\(error)"; applied[name] = version }
            log(logLine(["event": "task_refused", "task": name, "error": "\(error)"]))
            throw error
        }
    }

    /// Unloads `name`; false when it was not loaded.
    public func unload(_ name: String) -> Bool {
        guard let multi else { return false }
        let removed = lock.withLock { () -> Bool in
            refused[name] = nil; classNames[name] = nil
            return served.removeValue(forKey: name) != nil
        }
        _ = batcher.betweenBatches { multi.remove(name) }
        if removed { log(logLine(["event": "task_unloaded", "task": name])) }
        return removed
    }

    /// Brings the served tasks in line with the tasks directory: a new or changed delta is loaded
    /// once it has looked the same for two scans in a row (so a file still being copied is not read
    /// half-written; `initial` loads at once), and a removed one is unloaded. A task unloaded through
    /// the repository route stays unloaded until its file changes.
    public func rescan(initial: Bool = false) {
        guard let dir = tasksDirectory, multi != nil else { return }
        let files = ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.pathExtension == "safetensors" }
        var current: [String: FileVersion] = [:]
        for file in files { if let v = InferenceService.version(of: file) { current[file.deletingPathExtension().lastPathComponent] = v } }
        let (previous, done) = lock.withLock { (lastScan, applied) }
        for (name, version) in current.sorted(by: { $0.key < $1.key }) where done[name] != version && (initial || previous[name] == version) {
            try? load(name)
        }
        for name in done.keys.sorted() where current[name] == nil {
            lock.withLock { applied[name] = nil; refused[name] = nil }
            _ = unload(name)
        }
        lock.withLock { lastScan = current }
    }

    private static func version(of url: URL) -> FileVersion? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let modified = attributes[.modificationDate] as? Date, let size = attributes[.size] as? Int else { return nil }
        return FileVersion(modified: modified, size: size)
    }

    /// Backbone passes run so far and the images they held.
    public var batchCounts: (batches: Int, images: Int) { metrics.batchCounts }

    var loaded: [String: Int] { lock.withLock { served } }
    /// The tasks being served, sorted.
    public var taskNames: [String] { loaded.keys.sorted() }
    func names(of task: String) -> [String]? { lock.withLock { classNames[task] } }
    func refusal(of task: String) -> String? { lock.withLock { refused[task] } }

    /// Preprocesses an encoded image as the model's evaluation transform does: `[3, S, S]`.
    func image(from data: Data, label: String) throws -> Tensor {
        transform(try RGBImage(encoded: data, path: label))
    }
}

/// One structured log line: a JSON object with the time first.
func logLine(_ fields: [String: Any]) -> String {
    var object = fields
    object["time"] = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}

/// A Prometheus histogram with fixed bucket bounds.
struct Histogram {
    let bounds: [Double]
    private(set) var counts: [Int]
    private(set) var sum = 0.0, count = 0

    init(bounds: [Double]) { self.bounds = bounds; counts = [Int](repeating: 0, count: bounds.count) }

    mutating func observe(_ value: Double) {
        sum += value; count += 1
        for (i, b) in bounds.enumerated() where value <= b { counts[i] += 1 }
    }

    func text(_ name: String, help: String) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (b, n) in zip(bounds, counts) { out += "\(name)_bucket{le=\"\(b)\"} \(n)\n" }
        return out + "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
    }
}

/// Request counters and histograms in Prometheus's text format.
final class ServeMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private static let seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    private var duration = Histogram(bounds: seconds)
    private var queueWait = Histogram(bounds: seconds)
    private var batchSize = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64, 128])
    private var images = 0

    func record(task: String, code: Int, seconds: Double) {
        lock.withLock {
            requests["task=\"\(task)\",code=\"\(code)\"", default: 0] += 1
            duration.observe(seconds)
        }
    }

    func observeBatch(size: Int, waits: [TimeInterval]) {
        lock.withLock {
            batchSize.observe(Double(size)); images += size
            for w in waits { queueWait.observe(w) }
        }
    }

    /// Backbone passes run and the images they held.
    var batchCounts: (batches: Int, images: Int) { lock.withLock { (batchSize.count, images) } }

    func text(tasks: Int, queue: Int) -> String {
        lock.withLock {
            var out = "# HELP ssf_requests_total Inference requests by task and status code.\n# TYPE ssf_requests_total counter\n"
            for (labels, n) in requests.sorted(by: { $0.key < $1.key }) { out += "ssf_requests_total{\(labels)} \(n)\n" }
            out += duration.text("ssf_request_duration_seconds", help: "Time from a request's arrival to its answer.")
            out += queueWait.text("ssf_queue_duration_seconds", help: "Time an image waited in the queue for its batch.")
            out += batchSize.text("ssf_batch_size", help: "Images per backbone pass.")
            out += "# HELP ssf_batched_images_total Images run through the backbone.\n# TYPE ssf_batched_images_total counter\nssf_batched_images_total \(images)\n"
            out += "# HELP ssf_tasks_loaded Tasks being served.\n# TYPE ssf_tasks_loaded gauge\nssf_tasks_loaded \(tasks)\n"
            out += "# HELP ssf_queue_depth Images waiting for a batch.\n# TYPE ssf_queue_depth gauge\nssf_queue_depth \(queue)\n"
            return out
        }
    }
}

/// Serves until SIGTERM or SIGINT: then stops accepting, answers the requests in flight, and returns.
/// `onRunning` hears the bound port (useful with port 0).
public func serve(_ service: InferenceService, options: ServeOptions, onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
    let app = Application(router: makeRouter(service, options: options),
                          configuration: .init(address: .hostname(options.host, port: options.port), serverName: "ssf"),
                          onServerRunning: { channel in onRunning(channel.localAddress?.port ?? options.port) },
                          logger: {
                              var logger = Logger(label: "ssf")
                              logger.logLevel = options.frameworkLogs ? .info : .critical
                              return logger
                          }())
    let watcher = Task {
        guard options.watchInterval > 0 else { return }
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(options.watchInterval * 1e9))
            if !Task.isCancelled { service.rescan() }
        }
    }
    defer { watcher.cancel(); service.batcher.stop() }
    try await app.runService()
}
