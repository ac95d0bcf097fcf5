// `ssf serve` over real HTTP on an ephemeral loopback port: the Open Inference Protocol routes, the
// classify route, repository load/unload, metrics and the error codes, answers checked against the
// multi-task model run directly.
import Foundation
import NIOCore
import NIOHTTP1
import XCTest
import SSFData
import SSFEngine
import SSFNN
import SSFTestSupport
@testable import SSFModels
@testable import SSFServing
@testable import SSFTuning

/// The server's log lines, collected.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [[String: Any]] { lock.withLock { lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } } }
}

final class ServerTests: XCTestCase {
    private let modelName = "demo_vit_patch4_32"

    /// A base, two tasks (a: 3 named classes, b: 4) and a delta made on another base.
    private func makeTasks(in dir: URL) throws -> [String: Tensor] {
        let base = try ModelRegistry.create(modelName, numClasses: 8, seed: 1).stateDict()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func delta(_ state: [String: Tensor], classes: Int, seed: UInt64, names: [String]?) throws -> DeltaFile {
            let loaded = try TuningMethod.ssf.load(model: modelName, state: state, numClasses: classes, seed: seed)
            var rng = RandomGenerator(seed: seed)
            for (key, p) in loaded.model.namedParameters() where TuningMethod.isSSF(key) || key.hasPrefix("head.") {
                p.value = Tensor.randomNormal(p.value.shape, mean: key.contains("scale") ? 1 : 0, std: 0.3, using: &rng)
            }
            return DeltaFile(ssfState: loaded.model.stateDict(), baseModel: modelName, classNames: names)
        }
        try delta(base, classes: 3, seed: 5, names: ["cat", "dog", "owl"]).save(to: dir.appendingPathComponent("a.safetensors"))
        try delta(base, classes: 4, seed: 6, names: nil).save(to: dir.appendingPathComponent("b.safetensors"))
        let other = try ModelRegistry.create(modelName, numClasses: 8, seed: 2).stateDict()
        try delta(other, classes: 3, seed: 7, names: nil).save(to: dir.appendingPathComponent("bad.safetensors"))
        return base
    }

    private func png(_ seed: UInt64) throws -> Data {
        try ProceduralShapesDataset(task: .target, count: 1, seed: seed).sample(at: 0).image.pngData()
    }

    private func request(_ port: Int, _ method: HTTPMethod, _ path: String, body: Data? = nil,
                         headers: [(String, String)] = []) async throws -> (Int, Data) {
        let (code, data, _) = try await requestWithHeaders(port, method, path, body: body, headers: headers)
        return (code, data)
    }

    private func requestWithHeaders(_ port: Int, _ method: HTTPMethod, _ path: String, body: Data? = nil,
                                    headers: [(String, String)] = []) async throws -> (Int, Data, HTTPHeaders) {
        let reply = try await HTTP1Connection.request(port: port, method, path, body: body, headers: headers, timeout: 60, maxBody: 16 << 20)
        return (reply.status, reply.body, reply.headers)
    }

    /// Polls `path` until it answers `code` (the directory watcher is asynchronous), for at most 20 s.
    private func waitFor(_ code: Int, _ port: Int, _ path: String) async throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if try await request(port, .GET, path).0 == code { return }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        XCTFail("\(path) did not answer \(code) within 20 s")
    }

    private func json(_ data: Data) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], String(decoding: data, as: UTF8.self))
    }

    /// `serve` on an ephemeral loopback port: the service, the server task and the bound port.
    private func startServer(tasks dir: URL, base: [String: Tensor], merged: URL? = nil, log: LogLines? = nil,
                             _ configure: (inout ServeOptions) -> Void) async throws -> (InferenceService, Task<Void, Error>, Int) {
        var options = ServeOptions()
        options.port = 0
        options.frameworkLogs = false  // the cancelled server's shutdown lines
        configure(&options)
        let settings = options
        let sink: @Sendable (String) -> Void = { log?.append($0) }
        let service = try merged.map { try InferenceService(model: modelName, base: base, merged: $0, options: settings, log: sink) }
            ?? InferenceService(model: modelName, base: base, tasks: dir, options: settings, log: sink)
        let portStream = AsyncStream<Int>.makeStream()
        let server = Task { try await serve(service, options: settings) { portStream.continuation.yield($0) } }
        var iterator = portStream.stream.makeAsyncIterator()
        let first = await iterator.next()
        return (service, server, try XCTUnwrap(first))
    }

    func testRoutesAnswersAndErrors() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try makeTasks(in: dir)
        let log = LogLines()
        let (service, server, port) = try await startServer(tasks: dir, base: base, log: log) {
            $0.maxBatch = 8; $0.maxDelayMs = 2; $0.maxBodyBytes = 256 << 10; $0.watchInterval = 0
        }
        XCTAssertEqual(service.taskNames, ["a", "b"])

        // Health and metadata.
        var (code, body) = try await request(port, .GET, "/v2/health/live")
        XCTAssertEqual(code, 200)
        (code, body) = try await request(port, .GET, "/v2/health/ready")
        XCTAssertEqual(code, 200)
        (code, body) = try await request(port, .GET, "/v2")
        XCTAssertEqual(try json(body)["extensions"] as? [String], ["binary_tensor_data", "model_repository"])
        (code, body) = try await request(port, .GET, "/v2/models/a")
        XCTAssertEqual(code, 200)
        XCTAssertEqual((try json(body)["parameters"] as? [String: Any])?["class_names"] as? [String], ["cat", "dog", "owl"])
        (code, body) = try await request(port, .GET, "/v2/models/nope")
        XCTAssertEqual(code, 404)
        XCTAssertTrue((try json(body)["error"] as? String)?.contains("serving: a, b") == true)
        (code, body) = try await request(port, .GET, "/v2/models/bad/ready")
        XCTAssertEqual(code, 503)
        XCTAssertTrue((try json(body)["error"] as? String)?.contains("different \(modelName) checkpoint") == true, String(decoding: body, as: UTF8.self))

        // FP32 infer: the multi-task model's logits.
        var rng = RandomGenerator(seed: 3)
        let images = Tensor.randomNormal([2, 3, 32, 32], using: &rng)
        let payload: [String: Any] = ["inputs": [["name": "INPUT", "datatype": "FP32", "shape": [2, 3, 32, 32], "data": images.scalars.map(Double.init)]]]
        (code, body) = try await request(port, .POST, "/v2/models/a/infer", body: try JSONSerialization.data(withJSONObject: payload))
        XCTAssertEqual(code, 200, String(decoding: body, as: UTF8.self))
        let outputs = try XCTUnwrap(try json(body)["outputs"] as? [[String: Any]])
        XCTAssertEqual(outputs[0]["shape"] as? [Int], [2, 3])
        let served = try XCTUnwrap(outputs[0]["data"] as? [Double]).map(Float.init)
        let direct = try MultiTaskModel(model: modelName, base: base)
        try direct.add("a", delta: DeltaFile(contentsOf: dir.appendingPathComponent("a.safetensors")))
        let expected = try direct.logits(images, tasks: ["a", "a"]).flatMap { $0 }
        for (x, y) in zip(served, expected) { XCTAssertEqual(x, y, accuracy: 1e-5) }

        // BYTES infer with top-k labels, and the classify route.
        let image = try png(9)
        let bytes: [String: Any] = ["inputs": [["name": "IMAGE", "datatype": "BYTES", "shape": [1], "data": [image.base64EncodedString()]]],
                                    "parameters": ["top_k": 2]]
        (code, body) = try await request(port, .POST, "/v2/models/a/infer", body: try JSONSerialization.data(withJSONObject: bytes))
        XCTAssertEqual(code, 200, String(decoding: body, as: UTF8.self))
        let labelled = try XCTUnwrap(try json(body)["outputs"] as? [[String: Any]])
        XCTAssertEqual(labelled.count, 2)
        XCTAssertEqual((labelled[1]["data"] as? [String])?.count, 2)
        (code, body) = try await request(port, .POST, "/v1/tasks/a/classify", body: image)
        XCTAssertEqual(code, 200, String(decoding: body, as: UTF8.self))
        let top = try XCTUnwrap(try json(body)["top"] as? [[String: Any]])
        XCTAssertEqual(top.count, 3)
        XCTAssertTrue(["cat", "dog", "owl"].contains(top[0]["label"] as? String ?? ""))

        // Errors: 400 (not JSON, wrong shape, not an image), 404 (unknown task), 413 (too large).
        (code, _) = try await request(port, .POST, "/v2/models/a/infer", body: Data("{nope".utf8))
        XCTAssertEqual(code, 400)
        let wrong: [String: Any] = ["inputs": [["name": "INPUT", "datatype": "FP32", "shape": [1, 3, 16, 16], "data": [Double](repeating: 0, count: 768)]]]
        (code, body) = try await request(port, .POST, "/v2/models/a/infer", body: try JSONSerialization.data(withJSONObject: wrong))
        XCTAssertEqual(code, 400)
        XCTAssertTrue((try json(body)["error"] as? String)?.contains("[N, 3, 32, 32]") == true)
        (code, _) = try await request(port, .POST, "/v1/tasks/a/classify", body: Data("not an image".utf8))
        XCTAssertEqual(code, 400)
        (code, _) = try await request(port, .POST, "/v1/tasks/zzz/classify", body: image)
        XCTAssertEqual(code, 404)
        (code, _) = try await request(port, .POST, "/v1/tasks/a/classify", body: Data(count: 300 << 10))
        XCTAssertEqual(code, 413)

        // Mixed tasks in flight at once are answered, each with its own head's width.
        let widths = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in ["a", "b", "a", "b", "b"] {
                group.addTask {
                    let (c, data) = try await self.request(port, .POST, "/v1/tasks/\(task)/classify", body: try self.png(11))
                    XCTAssertEqual(c, 200)
                    return (try self.json(data)["top"] as? [[String: Any]])?.count ?? -1
                }
            }
            var out: [Int] = []
            for try await w in group { out.append(w) }
            return out.sorted()
        }
        XCTAssertEqual(widths, [3, 3, 4, 4, 4])

        // Unload and load while serving.
        (code, _) = try await request(port, .POST, "/v2/repository/models/b/unload")
        XCTAssertEqual(code, 200)
        (code, _) = try await request(port, .GET, "/v2/models/b")
        XCTAssertEqual(code, 404)
        (code, _) = try await request(port, .POST, "/v2/repository/models/b/load")
        XCTAssertEqual(code, 200)
        (code, _) = try await request(port, .GET, "/v2/models/b/ready")
        XCTAssertEqual(code, 200)
        (code, body) = try await request(port, .POST, "/v2/repository/models/bad/load")
        XCTAssertEqual(code, 400)

        // Metrics.
        (code, body) = try await request(port, .GET, "/metrics")
        let text = String(decoding: body, as: UTF8.self)
        XCTAssertTrue(text.contains("ssf_requests_total{task=\"a\",code=\"200\"}"), text)
        XCTAssertTrue(text.contains("ssf_tasks_loaded 2"), text)
        XCTAssertTrue(text.contains("ssf_queue_duration_seconds_count"), text)
        XCTAssertTrue(text.contains("ssf_batch_size_bucket{le=\"8.0\"}"), text)

        // Structured logs: one JSON line per request, and the refused delta with its reason.
        let lines = log.all
        XCTAssertTrue(lines.contains { $0["event"] as? String == "request" && $0["status"] as? Int == 413 && $0["task"] as? String == "a" })
        XCTAssertTrue(lines.contains { $0["event"] as? String == "request" && $0["path"] as? String == "/v2/models/a/infer" && $0["images"] as? Int == 2 })
        XCTAssertTrue(lines.contains { $0["event"] as? String == "task_refused" && $0["task"] as? String == "bad" && ($0["error"] as? String)?.contains("different") == true })

        server.cancel()
        _ = await server.result
    }

    /// The binary-data extension: FP32 and BYTES inputs after a JSON header, binary logits and
    /// classification strings back, and malformed framing refused.
    func testBinaryTensorData() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try makeTasks(in: dir)
        let (_, server, port) = try await startServer(tasks: dir, base: base) { $0.maxDelayMs = 2; $0.watchInterval = 0 }
        let direct = try MultiTaskModel(model: modelName, base: base)
        try direct.add("b", delta: DeltaFile(contentsOf: dir.appendingPathComponent("b.safetensors")))

        func framed(_ header: [String: Any], _ tail: Data) throws -> (Data, [(String, String)]) {
            var body = try JSONSerialization.data(withJSONObject: header)
            let length = body.count
            body.append(tail)
            return (body, [("Inference-Header-Content-Length", "\(length)")])
        }
        func split(_ body: Data, _ headers: HTTPHeaders) throws -> ([String: Any], Data) {
            let n = try XCTUnwrap(headers.first(name: "Inference-Header-Content-Length").flatMap { Int($0) })
            return (try json(body.prefix(n)), body.dropFirst(n))
        }

        // FP32 in, logits out, both binary.
        var rng = RandomGenerator(seed: 4)
        let images = Tensor.randomNormal([3, 3, 32, 32], using: &rng)
        let raw = images.scalars.withUnsafeBytes { Data($0) }
        var (body, headers) = try framed(["inputs": [["name": "INPUT", "datatype": "FP32", "shape": [3, 3, 32, 32], "parameters": ["binary_data_size": raw.count]]],
                                          "outputs": [["name": "logits", "parameters": ["binary_data": true]]], "id": "r1"], raw)
        var (code, answer, responseHeaders) = try await requestWithHeaders(port, .POST, "/v2/models/b/infer", body: body, headers: headers)
        XCTAssertEqual(code, 200, String(decoding: answer, as: UTF8.self))
        var (header, tail) = try split(answer, responseHeaders)
        XCTAssertEqual(header["id"] as? String, "r1")
        let output = try XCTUnwrap((header["outputs"] as? [[String: Any]])?.first)
        XCTAssertEqual(output["shape"] as? [Int], [3, 4])
        XCTAssertEqual((output["parameters"] as? [String: Any])?["binary_data_size"] as? Int, 48)
        let served = tail.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let expected = try direct.logits(images, tasks: ["b", "b", "b"]).flatMap { $0 }
        XCTAssertEqual(served.count, expected.count)
        for (x, y) in zip(served, expected) { XCTAssertEqual(x, y, accuracy: 1e-5) }

        // BYTES in (length-prefixed PNGs), logits as JSON and top-2 classification strings as binary.
        var images2 = Data()
        for seed in [1, 2] as [UInt64] {
            let png = try self.png(seed)
            var n = UInt32(png.count).littleEndian
            withUnsafeBytes(of: &n) { images2.append(contentsOf: $0) }
            images2.append(png)
        }
        (body, headers) = try framed(["inputs": [["name": "IMAGE", "datatype": "BYTES", "shape": [2], "parameters": ["binary_data_size": images2.count]]],
                                      "outputs": [["name": "logits", "parameters": ["binary_data": false]],
                                                  ["name": "labels", "parameters": ["classification": 2, "binary_data": true]]]], images2)
        (code, answer, responseHeaders) = try await requestWithHeaders(port, .POST, "/v2/models/b/infer", body: body, headers: headers)
        XCTAssertEqual(code, 200, String(decoding: answer, as: UTF8.self))
        (header, tail) = try split(answer, responseHeaders)
        let outputs = try XCTUnwrap(header["outputs"] as? [[String: Any]])
        XCTAssertEqual((outputs[0]["data"] as? [Double])?.count, 8)
        XCTAssertEqual(outputs[1]["shape"] as? [Int], [2, 2])
        var labels: [String] = []
        var i = tail.startIndex
        while i < tail.endIndex {
            let n = Int(tail[i]) | Int(tail[i + 1]) << 8 | Int(tail[i + 2]) << 16 | Int(tail[i + 3]) << 24
            labels.append(String(decoding: tail[(i + 4)..<(i + 4 + n)], as: UTF8.self))
            i += 4 + n
        }
        XCTAssertEqual(labels.count, 4)
        XCTAssertTrue(labels.allSatisfy { $0.split(separator: ":").count == 3 && $0.hasSuffix(":class \($0.split(separator: ":")[1])") }, "\(labels)")

        // Framing errors: a size past the end, bytes belonging to no input, a header length that is not a number.
        (body, headers) = try framed(["inputs": [["name": "INPUT", "datatype": "FP32", "shape": [3, 3, 32, 32], "parameters": ["binary_data_size": raw.count + 4]]]], raw)
        (code, answer) = try await request(port, .POST, "/v2/models/b/infer", body: body, headers: headers)
        XCTAssertEqual(code, 400)
        XCTAssertTrue((try json(answer)["error"] as? String)?.contains("binary_data_size") == true)
        (body, headers) = try framed(["inputs": [["name": "INPUT", "datatype": "FP32", "shape": [1, 3, 32, 32], "parameters": ["binary_data_size": 12288]]]], raw)
        (code, answer) = try await request(port, .POST, "/v2/models/b/infer", body: body, headers: headers)
        XCTAssertEqual(code, 400)
        XCTAssertTrue((try json(answer)["error"] as? String)?.contains("belong to no input") == true, String(decoding: answer, as: UTF8.self))
        (code, _) = try await request(port, .POST, "/v2/models/b/infer", body: body, headers: [("Inference-Header-Content-Length", "x")])
        XCTAssertEqual(code, 400)
        server.cancel()
        _ = await server.result
    }

    /// The tasks directory is watched: a delta copied in is served, a removed one is dropped, one
    /// made on another base shows as not ready with its reason, and the others keep serving.
    func testWatchedDirectoryAddsReplacesAndRemovesTasks() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try makeTasks(in: dir)
        let (service, server, port) = try await startServer(tasks: dir, base: base) { $0.maxDelayMs = 2; $0.watchInterval = 0.1 }
        let fm = FileManager.default
        try fm.copyItem(at: dir.appendingPathComponent("b.safetensors"), to: dir.appendingPathComponent("c.safetensors"))
        try await waitFor(200, port, "/v2/models/c/ready")
        try fm.removeItem(at: dir.appendingPathComponent("b.safetensors"))
        try await waitFor(404, port, "/v2/models/b")
        try fm.copyItem(at: dir.appendingPathComponent("bad.safetensors"), to: dir.appendingPathComponent("bad2.safetensors"))
        try await waitFor(503, port, "/v2/models/bad2/ready")
        // Replacing a's delta by c's (4 classes, no names) is picked up.
        try fm.removeItem(at: dir.appendingPathComponent("a.safetensors"))
        try fm.copyItem(at: dir.appendingPathComponent("c.safetensors"), to: dir.appendingPathComponent("a.safetensors"))
        let deadline = Date().addingTimeInterval(20)
        while service.loaded["a"] != 4 && Date() < deadline { try await Task.sleep(nanoseconds: 50_000_000) }
        XCTAssertEqual(service.loaded, ["a": 4, "c": 4])
        let (code, body) = try await request(port, .POST, "/v1/tasks/c/classify", body: try png(2))
        XCTAssertEqual(code, 200, String(decoding: body, as: UTF8.self))
        server.cancel()
        _ = await server.result
    }

    /// `--merged`: one task from merged weights, with the unmerged task's logits; the repository
    /// routes are refused and other tasks are unknown.
    func testMergedTaskServesTheUnmergedLogits() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try makeTasks(in: dir)
        let (service, server, port) = try await startServer(tasks: dir, base: base, merged: dir.appendingPathComponent("a.safetensors")) {
            $0.maxDelayMs = 2
        }
        XCTAssertEqual(service.taskNames, ["a"])
        var rng = RandomGenerator(seed: 8)
        let images = Tensor.randomNormal([2, 3, 32, 32], using: &rng)
        let payload: [String: Any] = ["inputs": [["name": "INPUT", "datatype": "FP32", "shape": [2, 3, 32, 32], "data": images.scalars.map(Double.init)]]]
        var (code, body) = try await request(port, .POST, "/v2/models/a/infer", body: try JSONSerialization.data(withJSONObject: payload))
        XCTAssertEqual(code, 200, String(decoding: body, as: UTF8.self))
        let served = try XCTUnwrap((try json(body)["outputs"] as? [[String: Any]])?.first?["data"] as? [Double]).map(Float.init)
        let direct = try MultiTaskModel(model: modelName, base: base)
        try direct.add("a", delta: DeltaFile(contentsOf: dir.appendingPathComponent("a.safetensors")))
        let expected = try direct.logits(images, tasks: ["a", "a"]).flatMap { $0 }
        XCTAssertLessThanOrEqual(try XCTUnwrap(zip(served, expected).map { abs($0 - $1) }.max()), 1e-4)
        (code, body) = try await request(port, .GET, "/v2/models/a")
        XCTAssertEqual((try json(body)["parameters"] as? [String: Any])?["class_names"] as? [String], ["cat", "dog", "owl"])
        (code, body) = try await request(port, .POST, "/v2/repository/models/b/load")
        XCTAssertEqual(code, 409)
        XCTAssertTrue((try json(body)["error"] as? String)?.contains("merged") == true)
        (code, _) = try await request(port, .POST, "/v1/tasks/b/classify", body: try png(1))
        XCTAssertEqual(code, 404)
        (code, body) = try await request(port, .GET, "/v2")
        XCTAssertEqual(try json(body)["extensions"] as? [String], ["binary_tensor_data"])
        server.cancel()
        _ = await server.result
        // A delta made on another base is refused with the reason.
        XCTAssertThrowsError(try InferenceService(model: modelName, base: base, merged: dir.appendingPathComponent("bad.safetensors"),
                                                  options: ServeOptions(), log: { _ in })) { error in
            XCTAssertTrue("\(error)".contains("different \(modelName) checkpoint"), "\(error)")
        }
    }

    /// A full queue answers 503 with Retry-After; the request already queued is still answered.
    func testFullQueueAnswers503() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try makeTasks(in: dir)
        let (service, server, port) = try await startServer(tasks: dir, base: base) {
            $0.maxBatch = 8; $0.maxDelayMs = 1500; $0.maxQueue = 1
        }
        let image = try png(3)
        // The first image waits up to 1.5 s for its batch to fill; meanwhile the queue is full.
        let waiting = Task { try await self.request(port, .POST, "/v1/tasks/a/classify", body: image) }
        while service.batcher.depth == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        let refused = try await HTTP1Connection.request(port: port, .POST, "/v1/tasks/b/classify", body: image, timeout: 30)
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.headers.first(name: "Retry-After"), "1")
        let (code, _) = try await waiting.value
        XCTAssertEqual(code, 200)
        server.cancel()
        _ = await server.result
    }

    /// The client gives up on an answer that does not come in time, and names the request.
    func testClientTimesOutOnAnAnswerThatDoesNotCome() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try makeTasks(in: dir)
        let (_, server, port) = try await startServer(tasks: dir, base: base) { $0.maxBatch = 8; $0.maxDelayMs = 1500; $0.watchInterval = 0 }
        let start = Date()
        do {
            _ = try await HTTP1Connection.request(port: port, .POST, "/v1/tasks/a/classify", body: try png(4), timeout: 0.3)
            XCTFail("the request was answered within 0.3 s although its batch waits 1.5 s")
        } catch let error as HTTP1ClientError {
            guard case .timedOut = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("/v1/tasks/a/classify"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.2)
        // Two requests in a row on one kept-alive connection.
        try await HTTP1Connection.with(port: port) { connection in
            for _ in 0..<2 {
                let reply = try await connection.send(.GET, "/v2/health/ready")
                XCTAssertEqual(reply.status, 200)
            }
        }
        server.cancel()
        _ = await server.result
    }

    /// `ssf bench serve` runs its three parts on the demo model and prints their figures.
    func testBenchServeRunsEveryPart() throws {
        guard let ssf = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        let (status, text) = try runBuiltSSF(ssf, ["bench", "serve", "--model", modelName, "--tasks", "3", "--batch", "3", "--rounds", "1",
                                                   "--clients", "1,3", "--seconds", "0.5", "--memory-tasks", "1,4", "--threads", "1"])
        XCTAssertEqual(status, 0, text)
        for expected in ["memory:   4 task(s)", "mixed (3 tasks, one pass)", "grouped (3 passes, one per task)", "  3 client(s): p50", "errors 0"] {
            XCTAssertTrue(text.contains(expected), "no '\(expected)' in:\n\(text)")
        }
    }

    /// `ssf serve` as a process: SIGTERM with a request in flight answers it, then exits 0.
    func testSIGTERMAnswersTheRequestInFlightAndExitsZero() async throws {
        guard let ssf = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try makeTasks(in: dir.appendingPathComponent("tasks"))
        let baseFile = dir.appendingPathComponent("base.safetensors")
        try SafeTensors.save(base, to: baseFile)
        let process = Process()
        process.executableURL = ssf
        process.arguments = ["serve", "--model", modelName, "--base", baseFile.path, "--tasks", dir.appendingPathComponent("tasks").path,
                             "--port", "0", "--max-batch", "8", "--max-delay-ms", "1500", "--threads", "1"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line names the port.
        var text = ""
        let handle = out.fileHandleForReading
        while !text.contains("\n") {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let address = try XCTUnwrap(text.range(of: "127.0.0.1:"), text)
        let port = try XCTUnwrap(Int(text[address.upperBound...].prefix { $0.isNumber }), text)
        let inFlight = Task { try await self.request(port, .POST, "/v1/tasks/a/classify", body: try self.png(5)) }
        try await Task.sleep(nanoseconds: 400_000_000)  // queued, waiting for its batch
        process.terminate()  // SIGTERM
        let (code, body) = try await inFlight.value
        XCTAssertEqual(code, 200, String(decoding: body, as: UTF8.self))
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
    }
}
