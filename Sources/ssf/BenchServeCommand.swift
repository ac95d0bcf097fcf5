// `ssf bench serve`: what serving many tasks on one frozen base costs — mixed-task batches against
// merged single-task and per-task batches, latency over loopback HTTP at several client counts, and
// resident memory per loaded task.
import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFServing
import SSFTuning

struct BenchServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Throughput, latency and memory of serving many SSF tasks on one base.",
        discussion: """
        Parts (--parts, comma-separated):
        batches: one batch of --batch images over --tasks tasks, timed in alternation, one round each: \
        merged (one task's merged weights), single (one task, unmerged), mixed (every image its own \
        task, one backbone pass) and grouped (a pass per task over its images, as adapter libraries do).
        http: `ssf serve` in this process on a loopback port; for each --clients count, that many \
        clients send images to POST /v1/tasks/{task}/classify back to back for --seconds, cycling \
        through the tasks; latency percentiles, throughput and the mean batch the server formed.
        memory: resident memory with the --memory-tasks counts of tasks loaded from delta files, \
        after returning freed memory to the system, and the live tensor bytes per task.
        Base weights, SSF vectors and heads are random (speed does not depend on them).
        """)
    @Option(help: "Model name from `ssf models`.") var model = "vit_small_patch16_224"
    @Option(help: "Tasks served.") var tasks = 8
    @Option(help: "Images per batch (and --max-batch of the HTTP server).") var batch = 8
    @Option(help: "Timed rounds of the batch comparison (after one warm-up round).") var rounds = 5
    @Option(name: .customLong("num-classes"), help: "Classes of every task's head.") var numClasses = 100
    @Option(help: "Concurrent client counts of the HTTP part.") var clients = "1,8,32"
    @Option(help: "Seconds of load per client count.") var seconds = 10.0
    @Option(name: .customLong("max-delay-ms"), help: "The HTTP server's batching delay.") var maxDelayMs = 5.0
    @Option(name: .customLong("memory-tasks"), help: "Task counts of the memory part.") var memoryTasks = "1,10,100"
    @Option(help: "JPEG or PNG the clients send (default: a generated 256×256 PNG).") var image: String?
    @Option(help: "Parts to run: batches, http, memory.") var parts = "memory,batches,http"
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        let wanted = Set(parts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        if let unknown = wanted.subtracting(["batches", "http", "memory"]).first { throw ValidationError("unknown part '\(unknown)' (parts: batches, http, memory)") }
        let clientCounts = try counts(clients, "--clients"), taskCounts = try counts(memoryTasks, "--memory-tasks")
        guard tasks >= 1, batch >= 1 else { throw ValidationError("--tasks and --batch must be at least 1") }
        let spec = try ModelRegistry.spec(model)
        print("ssf bench serve: \(model), \(Threading.threads) thread(s), CPU: \(cpuModelName())")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-bench-serve-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try ModelRegistry.create(model, numClasses: numClasses, seed: 0).stateDict()
        let deltaCount = max(tasks, wanted.contains("memory") ? taskCounts.max() ?? 0 : 0)
        let files = try writeDeltas(count: deltaCount, base: base, to: dir.appendingPathComponent("all"))
        let served = Array(files.prefix(tasks))

        if wanted.contains("memory") { try memory(base: base, files: files, counts: taskCounts) }
        if wanted.contains("batches") { try batches(base: base, files: served, size: spec.preprocess.inputSize) }
        if wanted.contains("http") {
            let httpDir = dir.appendingPathComponent("served")
            try FileManager.default.createDirectory(at: httpDir, withIntermediateDirectories: true)
            for file in served { try FileManager.default.copyItem(at: file, to: httpDir.appendingPathComponent(file.lastPathComponent)) }
            try http(base: base, tasks: httpDir, names: served.map { $0.deletingPathExtension().lastPathComponent }, clientCounts: clientCounts)
        }
    }

    private func counts(_ text: String, _ option: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else { throw ValidationError("\(option) takes positive integers separated by commas, got '\(text)'") }
        return values.map { $0! }
    }

    /// `count` delta files `t000.safetensors`…: random SSF vectors near the identity and random heads.
    private func writeDeltas(count: Int, base: [String: Tensor], to dir: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let template = try TuningMethod.ssf.load(model: model, state: base, numClasses: numClasses, seed: 1)
        var delta = DeltaFile(ssfState: template.model.stateDict(), baseModel: model)
        let keys = delta.tensors
        var rng = RandomGenerator(seed: 2)
        return try (0..<count).map { i in
            delta.tensors = keys.mapValues { t in Tensor.randomNormal(t.shape, mean: 0, std: 0.05, using: &rng) }
            for (k, v) in delta.tensors where k.contains("ssf_scale_") { delta.tensors[k] = v + 1 }
            let url = dir.appendingPathComponent(String(format: "t%03d.safetensors", i))
            try delta.save(to: url)
            return url
        }
    }

    private func memory(base: [String: Tensor], files: [URL], counts: [Int]) throws {
        let multi = try MultiTaskModel(model: model, base: base)
        StorageStats.releaseFreedMemory()
        let (rss0, live0) = (StorageStats.residentMiB(), Double(StorageStats.liveBytes) / 1_048_576)
        let fileMiB = Double((try FileManager.default.attributesOfItem(atPath: files[0].path)[.size] as? Int) ?? 0) / 1_048_576
        print(String(format: "memory: base loaded: resident %.1f MiB, tensors %.1f MiB; one delta file %.2f MiB", rss0, live0, fileMiB))
        var loaded = 0
        for n in counts.sorted() {
            while loaded < n { try multi.add("t\(loaded)", delta: DeltaFile(contentsOf: files[loaded])); loaded += 1 }
            StorageStats.releaseFreedMemory()
            let (rss, live) = (StorageStats.residentMiB(), Double(StorageStats.liveBytes) / 1_048_576)
            print(String(format: "memory: %3d task(s): resident %.1f MiB (+%.2f MiB per task), tensors %.1f MiB (+%.2f MiB per task)",
                         n, rss, (rss - rss0) / Double(n), live, (live - live0) / Double(n)))
        }
    }

    private func batches(base: [String: Tensor], files: [URL], size: Int) throws {
        let multi = try MultiTaskModel(model: model, base: base)
        var names: [String] = []
        for file in files {
            let name = file.deletingPathExtension().lastPathComponent
            try multi.add(name, delta: DeltaFile(contentsOf: file))
            names.append(name)
        }
        let merged = try MergedTaskModel(model: model, base: base, task: names[0], delta: DeltaFile(contentsOf: files[0]))
        var rng = RandomGenerator(seed: 3)
        let images = Tensor.randomNormal([batch, 3, size, size], using: &rng)
        let mixed = (0..<batch).map { names[$0 % names.count] }
        let single = [String](repeating: names[0], count: batch)
        let groups = Dictionary(grouping: 0..<batch) { mixed[$0] }.values.map { Array($0) }
        let bodies: [() -> Void] = [
            { _ = try! merged.logits(images, tasks: single) },
            { _ = try! multi.logits(images, tasks: single) },
            { _ = try! multi.logits(images, tasks: mixed) },
            {
                for members in groups {
                    let part = concat(members.map { images.slice(axis: 0, range: $0..<($0 + 1)) }, axis: 0)
                    _ = try! multi.logits(part, tasks: members.map { mixed[$0] })
                }
            },
        ]
        let medians = TurnTimer.medianSeconds(bodies, rounds: rounds, warmup: 1)
        let rates = medians.map { Double(batch) / $0 }
        let labels = ["merged (1 task, merged weights)", "single (1 task, unmerged)", "mixed (\(Set(mixed).count) tasks, one pass)",
                      "grouped (\(groups.count) passes, one per task)"]
        print("batches of \(batch), \(size)×\(size), median of \(rounds) alternating rounds:")
        for (label, rate) in zip(labels, rates) {
            print("  " + label.padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: " %8.2f img/s  (%.3f× merged)", rate, rate / rates[0]))
        }
        print(String(format: "  mixed / grouped: %.2f×", rates[2] / rates[3]))
    }

    private func http(base: [String: Tensor], tasks dir: URL, names: [String], clientCounts: [Int]) throws {
        var options = ServeOptions()
        options.port = 0; options.maxBatch = batch; options.maxDelayMs = maxDelayMs
        options.maxQueue = 4096; options.watchInterval = 0; options.logRequests = false; options.frameworkLogs = false
        let settings = options
        let service = try InferenceService(model: model, base: base, tasks: dir, options: settings) { _ in }
        let body = try image.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } ?? generatedImage()
        let duration = seconds
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Task.detached {
            do {
                let ports = AsyncStream<Int>.makeStream()
                let server = Task { try await serve(service, options: settings) { ports.continuation.yield($0) } }
                var iterator = ports.stream.makeAsyncIterator()
                guard let port = await iterator.next() else { throw ValidationError("the server did not start") }
                print("http: POST /v1/tasks/{task}/classify, \(body.count)-byte image, \(names.count) tasks, --max-batch \(settings.maxBatch), --max-delay-ms \(settings.maxDelayMs), \(duration) s per level")
                do {
                    _ = try await HTTP1Connection.with(port: port) { try await Self.send($0, names[0], body) }  // warm-up
                    for count in clientCounts {
                        let before = service.batchCounts
                        let (latencies, errors, elapsed) = try await Self.load(port, names, body, clients: count, seconds: duration)
                        let after = service.batchCounts
                        let sorted = latencies.sorted()
                        func percentile(_ p: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
                        let meanBatch = Double(after.images - before.images) / Double(max(1, after.batches - before.batches))
                        print(String(format: "  %3d client(s): p50 %7.1f ms  p99 %7.1f ms  %7.2f req/s  mean batch %.2f  errors %d",
                                     count, percentile(0.5), percentile(0.99), Double(latencies.count) / elapsed, meanBatch, errors))
                    }
                } catch { failure = error }
                server.cancel()
                _ = await server.result
            } catch { failure = error }
            done.signal()
        }
        done.wait()
        if let failure { throw failure }
    }

    /// A 256×256 PNG of smooth colour gradients and a few shapes.
    private func generatedImage() throws -> Data {
        let sample = try ProceduralShapesDataset(task: .target, count: 1, seed: 1).sample(at: 0).image
        return try sample.resized(width: 256, height: 256, filter: .bilinear).pngData()
    }

    private static func send(_ connection: HTTP1Connection, _ task: String, _ body: Data) async throws -> Int {
        try await connection.send(.POST, "/v1/tasks/\(task)/classify", body: body, timeout: 120, maxBody: 1 << 20).status
    }

    /// `clients` loops, each on its own keep-alive connection, sending back to back for `seconds`:
    /// the latencies of the answered requests, the count of failed ones, and the seconds it took.
    private static func load(_ port: Int, _ names: [String], _ body: Data, clients: Int, seconds: Double) async throws
        -> ([Double], Int, Double) {
        let start = Date()
        let end = start.addingTimeInterval(seconds)
        let results = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for c in 0..<clients {
                group.addTask {
                    try await HTTP1Connection.with(port: port) { connection in
                        var latencies: [Double] = [], errors = 0, i = c
                        while Date() < end {
                            let t0 = Date()
                            let code = try await send(connection, names[i % names.count], body)
                            if code == 200 { latencies.append(Date().timeIntervalSince(t0)) } else { errors += 1 }
                            i += 1
                        }
                        return (latencies, errors)
                    }
                }
            }
            var all: ([Double], Int) = ([], 0)
            for try await (l, e) in group { all.0 += l; all.1 += e }
            return all
        }
        return (results.0, results.1, Date().timeIntervalSince(start))
    }
}

/// The CPU's model name (Linux's /proc/cpuinfo), for benchmark headers.
func cpuModelName() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
          let colon = line.firstIndex(of: ":") else { return "unknown" }
    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
}
