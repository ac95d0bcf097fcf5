// `ssf serve`: one frozen base and the tasks of a directory of delta files, over HTTP — the Open
// Inference Protocol v2 REST routes, a curl-friendly classify route, and Prometheus metrics.
import Foundation
import Hummingbird
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
    public init() {}
}

/// The tasks and the batcher behind the routes.
public final class InferenceService: @unchecked Sendable {
    public let modelName: String
    public let preprocess: PreprocessConfig
    public let tasksDirectory: URL
    let batcher: TaskBatcher
    let metrics = ServeMetrics()
    private let lock = NSLock()
    /// Tasks refused at load, with the reason (shown as not ready).
    private var refused: [String: String] = [:]
    private var classNames: [String: [String]] = [:]
    /// Class count of every task being served; kept here so that metadata and routing never wait
    /// for the batch that holds the model.
    private var served: [String: Int] = [:]
    private let transform: EvalTransform

    /// Builds the model on `base` and loads every `*.safetensors` delta in `tasks`.
    public init(model: String, base: [String: Tensor], tasks: URL, options: ServeOptions, log: @escaping (String) -> Void) throws {
        let served = try MultiTaskModel(model: model, base: base)
        modelName = model
        preprocess = served.spec.preprocess
        tasksDirectory = tasks
        transform = EvalTransform(imageSize: preprocess.inputSize, cropFraction: preprocess.cropFraction,
                                  filter: preprocess.interpolation == .bicubic ? .bicubic : .bilinear,
                                  mean: preprocess.mean, std: preprocess.std)
        batcher = TaskBatcher(model: served, maxBatch: options.maxBatch, maxDelay: options.maxDelayMs / 1000, maxQueue: options.maxQueue)
        let files = (try? FileManager.default.contentsOfDirectory(at: tasks, includingPropertiesForKeys: nil)) ?? []
        for file in files.filter({ $0.pathExtension == "safetensors" }).sorted(by: { $0.path < $1.path }) {
            let name = file.deletingPathExtension().lastPathComponent
            do { try load(name) ; log("task \(name): loaded") } catch { log("task \(name): not loaded: \(error)") }
        }
    }

    /// Loads (or reloads) `<tasks>/<name>.safetensors`.
    public func load(_ name: String) throws {
        let url = tasksDirectory.appendingPathComponent(name + ".safetensors")
        do {
            let delta = try DeltaFile(contentsOf: url)
            let classes = try batcher.withModel { model -> Int in
                try model.add(name, delta: delta)
                return model.tasks[name]!.classes
            }
            lock.withLock { refused[name] = nil; classNames[name] = delta.classNames; served[name] = classes }
        } catch {
            lock.withLock { refused[name] = "\(error)" }
            throw error
        }
    }

    /// Unloads `name`; false when it was not loaded.
    public func unload(_ name: String) -> Bool {
        lock.withLock { classNames[name] = nil; refused[name] = nil; served[name] = nil }
        return batcher.withModel { $0.remove(name) }
    }

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

/// Request counters and histograms in Prometheus's text format.
final class ServeMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private var durationSum = 0.0, durationCount = 0
    private var durationBuckets = [Int](repeating: 0, count: ServeMetrics.bounds.count)
    static let bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    func record(task: String, code: Int, seconds: Double) {
        lock.withLock {
            requests["task=\"\(task)\",code=\"\(code)\"", default: 0] += 1
            durationSum += seconds; durationCount += 1
            for (i, b) in Self.bounds.enumerated() where seconds <= b { durationBuckets[i] += 1 }
        }
    }

    func text(tasks: Int, queue: Int, batches: Int, batchedImages: Int) -> String {
        lock.withLock {
            var out = "# HELP ssf_requests_total Inference requests by task and status code.\n# TYPE ssf_requests_total counter\n"
            for (labels, n) in requests.sorted(by: { $0.key < $1.key }) { out += "ssf_requests_total{\(labels)} \(n)\n" }
            out += "# HELP ssf_request_duration_seconds Time from a request's arrival to its answer.\n# TYPE ssf_request_duration_seconds histogram\n"
            for (b, n) in zip(Self.bounds, durationBuckets) { out += "ssf_request_duration_seconds_bucket{le=\"\(b)\"} \(n)\n" }
            out += "ssf_request_duration_seconds_bucket{le=\"+Inf\"} \(durationCount)\nssf_request_duration_seconds_sum \(durationSum)\nssf_request_duration_seconds_count \(durationCount)\n"
            out += "# HELP ssf_batches_total Backbone passes run.\n# TYPE ssf_batches_total counter\nssf_batches_total \(batches)\n"
            out += "# HELP ssf_batched_images_total Images in those passes.\n# TYPE ssf_batched_images_total counter\nssf_batched_images_total \(batchedImages)\n"
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
                          onServerRunning: { channel in onRunning(channel.localAddress?.port ?? options.port) })
    try await app.runService()
    service.batcher.stop()
}
