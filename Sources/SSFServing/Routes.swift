// The HTTP routes: Open Inference Protocol v2 (health, metadata, infer, repository load/unload),
// `POST /v1/tasks/{task}/classify` for a raw image, and `/metrics`.
import Foundation
import Hummingbird
import NIOCore
import SSFEngine

/// A request the server answers with an error status and `{"error": "..."}`.
struct ServeError: Error {
    let status: HTTPResponse.Status
    let message: String
}

func jsonResponse(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func errorResponse(_ error: ServeError) -> Response {
    var response = jsonResponse(["error": error.message], status: error.status)
    if error.status == .serviceUnavailable { response.headers[.retryAfter] = "1" }
    return response
}

/// The router of `ssf serve`.
public func makeRouter(_ service: InferenceService, options: ServeOptions) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("/v2/health/live") { _, _ in jsonResponse(["live": true]) }
    router.get("/v2/health/ready") { _, _ in
        let ready = !service.loaded.isEmpty
        return jsonResponse(["ready": ready], status: ready ? .ok : .serviceUnavailable)
    }
    router.get("/v2") { _, _ in
        jsonResponse(["name": "ssf", "version": "1", "extensions": ["model_repository"], "model": service.modelName])
    }
    router.get("/v2/models/:task") { _, context in
        let task = try context.parameters.require("task")
        do { return jsonResponse(try metadata(service, task)) } catch let error as ServeError { return errorResponse(error) }
    }
    router.get("/v2/models/:task/ready") { _, context in
        let task = try context.parameters.require("task")
        if service.loaded[task] != nil { return jsonResponse(["name": task, "ready": true]) }
        if let reason = service.refusal(of: task) { return jsonResponse(["name": task, "ready": false, "error": reason], status: .serviceUnavailable) }
        return errorResponse(unknownTask(service, task))
    }
    router.post("/v2/models/:task/infer") { request, context in
        try await answer(service, request, context, limit: options.maxBodyBytes) { task, body in
            jsonResponse(try await infer(service, task: task, body: body))
        }
    }
    router.post("/v1/tasks/:task/classify") { request, context in
        try await answer(service, request, context, limit: options.maxBodyBytes) { task, body in
            let row = try await run(service, try decode(service, body, label: "the request body"), task: task)
            return jsonResponse(["task": task, "top": top(row, k: 5, names: service.names(of: task))])
        }
    }
    router.post("/v2/repository/models/:task/load") { _, context in
        let task = try context.parameters.require("task")
        do {
            try service.load(task)
            return jsonResponse(["name": task, "loaded": true])
        } catch {
            return errorResponse(ServeError(status: .badRequest, message: "task \(task) was not loaded: \(error)"))
        }
    }
    router.post("/v2/repository/models/:task/unload") { _, context in
        let task = try context.parameters.require("task")
        guard service.unload(task) else { return errorResponse(unknownTask(service, task)) }
        return jsonResponse(["name": task, "loaded": false])
    }
    router.get("/metrics") { _, _ in
        let text = service.metrics.text(tasks: service.loaded.count, queue: service.batcher.depth,
                                        batches: service.batcher.batches, batchedImages: service.batcher.batchedImages)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
    return router
}

/// An inference request for a served task: its body collected within `limit`, `body` run on it, the
/// outcome counted in the metrics; a `ServeError` becomes its status and message.
private func answer(_ service: InferenceService, _ request: Request, _ context: BasicRequestContext, limit: Int,
                    _ body: (String, Data) async throws -> Response) async throws -> Response {
    let started = Date()
    let task = try context.parameters.require("task")
    let response: Response
    do {
        guard service.loaded[task] != nil else { throw unknownTask(service, task) }
        response = try await body(task, try await collect(request, limit: limit))
    } catch let error as ServeError {
        response = errorResponse(error)
    }
    service.metrics.record(task: task, code: Int(response.status.code), seconds: Date().timeIntervalSince(started))
    return response
}

private func unknownTask(_ service: InferenceService, _ task: String) -> ServeError {
    ServeError(status: .notFound, message: "unknown task '\(task)' (serving: \(service.loaded.keys.sorted().joined(separator: ", ")))")
}

private func collect(_ request: Request, limit: Int) async throws -> Data {
    do {
        let buffer = try await request.body.collect(upTo: limit)
        return Data(buffer.readableBytesView)
    } catch {
        throw ServeError(status: .contentTooLarge, message: "the request body is over the \(limit) byte limit")
    }
}

private func metadata(_ service: InferenceService, _ task: String) throws -> [String: Any] {
    guard let classes = service.loaded[task] else { throw unknownTask(service, task) }
    let s = service.preprocess.inputSize
    var parameters: [String: Any] = ["base_model": service.modelName]
    if let names = service.names(of: task) { parameters["class_names"] = names }
    return ["name": task, "platform": "ssf", "versions": ["1"],
            "inputs": [["name": "INPUT", "datatype": "FP32", "shape": [-1, 3, s, s]],
                       ["name": "IMAGE", "datatype": "BYTES", "shape": [-1]]],
            "outputs": [["name": "logits", "datatype": "FP32", "shape": [-1, classes]],
                        ["name": "labels", "datatype": "BYTES", "shape": [-1, -1]]],
            "parameters": parameters]
}

private func decode(_ service: InferenceService, _ data: Data, label: String) throws -> Tensor {
    do { return try service.image(from: data, label: label) } catch {
        throw ServeError(status: .badRequest, message: "\(label) is not a decodable JPEG or PNG image: \(error)")
    }
}

private func run(_ service: InferenceService, _ image: Tensor, task: String) async throws -> [Float] {
    do { return try await service.batcher.logits(image, task: task) } catch is QueueFull {
        throw ServeError(status: .serviceUnavailable, message: "the queue is full (\(service.batcher.maxQueue) images); retry later")
    } catch let error as ServeError { throw error } catch {
        throw ServeError(status: .internalServerError, message: "\(error)")
    }
}

/// The `k` most probable classes of a logits row.
private func top(_ row: [Float], k: Int, names: [String]?) -> [[String: Any]] {
    let m = row.max() ?? 0
    let e = row.map { exp(Double($0 - m)) }
    let total = e.reduce(0, +)
    return e.enumerated().sorted { $0.element > $1.element }.prefix(k).map { i, p in
        ["label": names.map { i < $0.count ? $0[i] : "class \(i)" } ?? "class \(i)", "index": i, "probability": p / total]
    }
}

/// `POST /v2/models/{task}/infer` with a JSON body: one input, FP32 `[N, 3, S, S]` or BYTES images (base64).
private func infer(_ service: InferenceService, task: String, body: Data) async throws -> [String: Any] {
    guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
        throw ServeError(status: .badRequest, message: "the body is not a JSON object")
    }
    guard let inputs = object["inputs"] as? [[String: Any]], let input = inputs.first, inputs.count == 1 else {
        throw ServeError(status: .badRequest, message: "'inputs' must hold exactly one input (INPUT as FP32 [N,3,H,W], or IMAGE as BYTES)")
    }
    let parameters = object["parameters"] as? [String: Any] ?? [:]
    let topK = (parameters["top_k"] as? Int) ?? 0
    let datatype = input["datatype"] as? String ?? ""
    let shape = (input["shape"] as? [Int]) ?? []
    var images: [Tensor] = []
    let s = service.preprocess.inputSize
    switch datatype {
    case "FP32":
        guard shape.count == 4, shape[1] == 3, shape[2] == s, shape[3] == s, shape[0] > 0 else {
            throw ServeError(status: .badRequest, message: "FP32 input must have shape [N, 3, \(s), \(s)], got \(shape)")
        }
        guard let values = (input["data"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.floatValue }), values.count == shape.reduce(1, *) else {
            throw ServeError(status: .badRequest, message: "FP32 input needs \(shape.reduce(1, *)) numbers in 'data'")
        }
        let per = 3 * s * s
        images = (0..<shape[0]).map { n in Tensor(shape: [3, s, s], Array(values[(n * per)..<((n + 1) * per)])) }
    case "BYTES":
        guard let items = input["data"] as? [String], !items.isEmpty else {
            throw ServeError(status: .badRequest, message: "BYTES input needs 'data' as a list of base64-encoded images")
        }
        images = try items.enumerated().map { i, text in
            guard let data = Data(base64Encoded: text) else { throw ServeError(status: .badRequest, message: "image \(i) is not base64") }
            return try decode(service, data, label: "image \(i)")
        }
    default:
        throw ServeError(status: .badRequest, message: "datatype '\(datatype)' is not FP32 or BYTES")
    }
    let rows = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
        for (i, image) in images.enumerated() { group.addTask { (i, try await run(service, image, task: task)) } }
        var out = [[Float]](repeating: [], count: images.count)
        for try await (i, row) in group { out[i] = row }
        return out
    }
    let classes = rows.first?.count ?? 0
    var outputs: [[String: Any]] = [["name": "logits", "datatype": "FP32", "shape": [rows.count, classes], "data": rows.flatMap { $0.map(Double.init) }]]
    if topK > 0 {
        let names = service.names(of: task)
        let labels = rows.flatMap { row in top(row, k: topK, names: names).map { "\($0["probability"] as! Double):\($0["index"] as! Int):\($0["label"] as! String)" } }
        outputs.append(["name": "labels", "datatype": "BYTES", "shape": [rows.count, min(topK, classes)], "data": labels])
    }
    return ["model_name": task, "outputs": outputs]
}
