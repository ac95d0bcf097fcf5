// The HTTP routes: Open Inference Protocol v2 (health, metadata, infer in JSON or with the
// binary-data extension, repository load/unload), `POST /v1/tasks/{task}/classify` for a raw image,
// and `/metrics`.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SSFEngine
import SSFFormats
import SSFTuning

/// A request the server answers with an error status and `{"error": "..."}`.
struct ServeError: Error {
    let status: HTTPResponse.Status
    let message: String
}

func jsonResponse(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
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
        jsonResponse(["name": "ssf", "version": "1", "extensions": service.mergedTask == nil ? ["binary_tensor_data", "model_repository"] : ["binary_tensor_data"],
                      "model": service.modelName])
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
        try await answer(service, request, context, options: options) { task, body, images in
            let headerLength = request.headers[inferenceHeaderLength].map { Int($0) } ?? nil
            if request.headers[inferenceHeaderLength] != nil && headerLength == nil {
                throw ServeError(status: .badRequest, message: "Inference-Header-Content-Length is not a number")
            }
            return try await infer(service, task: task, body: body, headerLength: headerLength, images: &images)
        }
    }
    router.post("/v1/tasks/:task/classify") { request, context in
        try await answer(service, request, context, options: options) { task, body, images in
            images = 1
            let row = try await run(service, try await decode(service, body, label: "the request body"), task: task)
            return jsonResponse(["task": task, "top": top(row, k: 5, names: service.names(of: task))])
        }
    }
    router.post("/v2/repository/models/:task/load") { _, context in
        let task = try context.parameters.require("task")
        if let refusal = service.repositoryRefusal { return errorResponse(ServeError(status: .conflict, message: refusal)) }
        do {
            try service.load(task)
            return jsonResponse(["name": task, "loaded": true])
        } catch {
            return errorResponse(ServeError(status: .badRequest, message: "task \(task) was not loaded: \(error)"))
        }
    }
    router.post("/v2/repository/models/:task/unload") { _, context in
        let task = try context.parameters.require("task")
        if let refusal = service.repositoryRefusal { return errorResponse(ServeError(status: .conflict, message: refusal)) }
        guard service.unload(task) else { return errorResponse(unknownTask(service, task)) }
        return jsonResponse(["name": task, "loaded": false])
    }
    router.get("/metrics") { _, _ in
        let text = service.metrics.text(tasks: service.loaded.count, queue: service.batcher.depth)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
    return router
}

let inferenceHeaderLength = HTTPField.Name("Inference-Header-Content-Length")!

/// An inference request for a served task: its body collected within the limit, `body` run on it
/// (setting the image count), the outcome counted in the metrics and logged; a `ServeError` becomes
/// its status and message.
private func answer(_ service: InferenceService, _ request: Request, _ context: BasicRequestContext, options: ServeOptions,
                    _ body: (String, Data, inout Int) async throws -> Response) async throws -> Response {
    let started = Date()
    let task = try context.parameters.require("task")
    let response: Response
    var images = 0
    var problem: String?
    do {
        guard service.loaded[task] != nil else { throw unknownTask(service, task) }
        response = try await body(task, try await collect(request, limit: options.maxBodyBytes), &images)
    } catch let error as ServeError {
        response = errorResponse(error)
        problem = error.message
    }
    let seconds = Date().timeIntervalSince(started)
    service.metrics.record(task: task, code: Int(response.status.code), seconds: seconds)
    if options.logRequests {
        var fields: [String: Any] = ["event": "request", "method": "\(request.method)", "path": request.uri.path, "task": task,
                                     "status": Int(response.status.code), "images": images, "duration_ms": (seconds * 1e5).rounded() / 100]
        if let problem { fields["error"] = problem }
        service.log(logLine(fields))
    }
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

/// Decodes and preprocesses an image on a worker thread, off the threads that serve connections.
private func decode(_ service: InferenceService, _ data: Data, label: String) async throws -> Tensor {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result {
                do { return try service.image(from: data, label: label) } catch {
                    throw ServeError(status: .badRequest, message: "\(label) is not a decodable JPEG or PNG image: \(error)")
                }
            })
        }
    }
}

private func run(_ service: InferenceService, _ image: Tensor, task: String) async throws -> [Float] {
    do { return try await service.batcher.logits(image, task: task) } catch is QueueFull {
        throw ServeError(status: .serviceUnavailable, message: "the queue is full (\(service.batcher.maxQueue) images); retry later")
    } catch let error as ServeError { throw error } catch let error as TaskLoadError {
        throw ServeError(status: .notFound, message: "\(error)")
    } catch {
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

private func appendBytesElement(_ bytes: [UInt8], to data: inout Data) {
    var n = UInt32(bytes.count).littleEndian
    withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
    data.append(contentsOf: bytes)
}

/// `POST /v2/models/{task}/infer`: one input, FP32 `[N, 3, S, S]` or BYTES encoded images, as JSON
/// `data` (images base64) or, with `Inference-Header-Content-Length`, as binary data after the
/// JSON header. Answers `logits` and, with `top_k` (or an output's `classification`), `labels`
/// ("probability:index:label"), each as JSON or binary as the request asks.
private func infer(_ service: InferenceService, task: String, body: Data, headerLength: Int?, images count: inout Int) async throws -> Response {
    let request: InferRequest
    do { request = try InferRequest.parse(body: body, headerLength: headerLength, inputSize: service.preprocess.inputSize) } catch let error as InferRequestError {
        throw ServeError(status: .badRequest, message: error.message)
    }
    count = request.count
    let images: [Tensor]
    switch request.images {
    case .tensors(let tensors): images = tensors
    case .encoded(let encoded):
        images = try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
            for (i, data) in encoded.enumerated() { group.addTask { (i, try await decode(service, data, label: "image \(i)")) } }
            var out = [Tensor?](repeating: nil, count: encoded.count)
            for try await (i, image) in group { out[i] = image }
            return out.map { $0! }
        }
    }
    let wanted = request.outputs
    let rows = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
        for (i, image) in images.enumerated() { group.addTask { (i, try await run(service, image, task: task)) } }
        var out = [[Float]](repeating: [], count: images.count)
        for try await (i, row) in group { out[i] = row }
        return out
    }
    let classes = rows.first?.count ?? 0
    let names = service.names(of: task)
    var outputs: [[String: Any]] = []
    var tail = Data()
    for output in wanted {
        var entry: [String: Any] = ["name": output.name]
        if output.classification > 0 {
            // Triton's classification strings, with the probability as the value.
            let k = min(output.classification, classes)
            let labels = rows.flatMap { row in top(row, k: k, names: names).map { "\($0["probability"] as! Double):\($0["index"] as! Int):\($0["label"] as! String)" } }
            entry["datatype"] = "BYTES"; entry["shape"] = [rows.count, k]
            if output.binary {
                var data = Data()
                for label in labels { appendBytesElement(Array(label.utf8), to: &data) }
                entry["parameters"] = ["binary_data_size": data.count]; tail.append(data)
            } else { entry["data"] = labels }
        } else {
            entry["datatype"] = "FP32"; entry["shape"] = [rows.count, classes]
            if output.binary {
                var data = Data(capacity: rows.count * classes * 4)
                for row in rows { for v in row { var bits = v.bitPattern.littleEndian; withUnsafeBytes(of: &bits) { data.append(contentsOf: $0) } } }
                entry["parameters"] = ["binary_data_size": data.count]; tail.append(data)
            } else { entry["data"] = rows.flatMap { $0.map(Double.init) } }
        }
        outputs.append(entry)
    }
    var answer: [String: Any] = ["model_name": task, "model_version": "1", "outputs": outputs]
    if let id = request.id { answer["id"] = id }
    guard wanted.contains(where: \.binary) else { return jsonResponse(answer) }
    var data = (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    let header = data.count
    data.append(tail)
    return Response(status: .ok, headers: [.contentType: "application/octet-stream", inferenceHeaderLength: "\(header)"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
