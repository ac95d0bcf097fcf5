// The body of `POST /v2/models/{task}/infer` (Open Inference Protocol v2, as `ssf serve` takes it), parsed apart from the
// server: JSON, or a JSON header followed by binary tensor data (`Inference-Header-Content-Length`).
// Everything a client sends is checked here; a malformed body is an `InferRequestError`, never a trap.
import Foundation
import SSFEngine

/// Why a request body cannot be served (the server answers 400 with the message).
public struct InferRequestError: Error, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A parsed inference request: its images and the outputs it asks for.
public struct InferRequest {
    public enum Images {
        /// Preprocessed `[3, S, S]` images (an FP32 `INPUT`).
        case tensors([Tensor])
        /// Encoded JPEG/PNG images (a BYTES `IMAGE`).
        case encoded([Data])
    }

    /// One output to answer: `logits`, or classification strings of the top `classification` classes.
    public struct Output: Equatable {
        public let name: String
        public let classification: Int
        public let binary: Bool
    }

    public let id: String?
    public let images: Images
    public let outputs: [Output]

    /// The number of images.
    public var count: Int {
        switch images {
        case .tensors(let t): return t.count
        case .encoded(let d): return d.count
        }
    }

    /// Parses `body` for a model taking `[N, 3, size, size]`; `headerLength` is the
    /// `Inference-Header-Content-Length` header's value, when the request has one.
    public static func parse(body: Data, headerLength: Int?, inputSize size: Int) throws -> InferRequest {
        var json = body, binary = Data()
        if let headerLength {
            guard headerLength >= 0, headerLength <= body.count else {
                throw InferRequestError("Inference-Header-Content-Length is \(headerLength), but the body has \(body.count) bytes")
            }
            json = body.prefix(headerLength)
            binary = body.dropFirst(headerLength)
        }
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw InferRequestError(headerLength.map { "the first \($0) bytes of the body are not a JSON object" } ?? "the body is not a JSON object")
        }
        guard let inputs = object["inputs"] as? [[String: Any]], let input = inputs.first, inputs.count == 1 else {
            throw InferRequestError("'inputs' must hold exactly one input (INPUT as FP32 [N,3,H,W], or IMAGE as BYTES)")
        }
        let parameters = object["parameters"] as? [String: Any] ?? [:]
        let datatype = input["datatype"] as? String ?? ""
        let name = input["name"] as? String ?? "(unnamed)"
        guard let shape = input["shape"] as? [Int], !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else {
            throw InferRequestError("input \(name) needs a 'shape' of non-negative integers")
        }
        let elements = try shape.reduce(1) { total, d in
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { throw InferRequestError("input \(name) has shape \(shape), too many elements") }
            return product
        }
        var raw: Data?
        if let size = (input["parameters"] as? [String: Any])?["binary_data_size"] {
            guard headerLength != nil else {
                throw InferRequestError("input \(name) has binary_data_size but the request has no Inference-Header-Content-Length")
            }
            guard let count = size as? Int, count >= 0, count <= binary.count else {
                throw InferRequestError("input \(name) declares binary_data_size \(size), but \(binary.count) bytes follow the JSON header")
            }
            raw = binary.prefix(count)
            binary = binary.dropFirst(count)
        }
        guard binary.isEmpty else { throw InferRequestError("\(binary.count) bytes after the JSON header belong to no input") }

        let images: Images
        switch datatype {
        case "FP32":
            guard shape.count == 4, shape[1] == 3, shape[2] == size, shape[3] == size, shape[0] > 0 else {
                throw InferRequestError("FP32 input must have shape [N, 3, \(size), \(size)], got \(shape)")
            }
            var values: [Float]
            if let raw {
                guard raw.count / 4 == elements, raw.count % 4 == 0 else {
                    throw InferRequestError("FP32 input of shape \(shape) needs \(elements) floats (\(elements) × 4 bytes), got \(raw.count) bytes")
                }
                values = [Float](repeating: 0, count: elements)
                _ = values.withUnsafeMutableBytes { raw.copyBytes(to: $0) }
                if UInt32(littleEndian: 1) != 1 { values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) } }
            } else {
                guard let data = input["data"] as? [Any], data.count == elements else {
                    throw InferRequestError("FP32 input needs \(elements) numbers in 'data'")
                }
                values = try data.map { item in
                    guard let number = item as? NSNumber, !(item is Bool) else { throw InferRequestError("FP32 input 'data' holds something that is not a number") }
                    return number.floatValue
                }
            }
            let per = 3 * size * size
            images = .tensors((0..<shape[0]).map { n in Tensor(shape: [3, size, size], Array(values[(n * per)..<((n + 1) * per)])) })
        case "BYTES":
            var encoded: [Data] = []
            if let raw {
                // Each element: a 4-byte little-endian length, then that many bytes.
                var rest = raw[...]
                while !rest.isEmpty {
                    guard rest.count >= 4 else { throw InferRequestError("input \(name): a BYTES element's length is cut short") }
                    let i = rest.startIndex
                    let n = Int(rest[i]) | Int(rest[i + 1]) << 8 | Int(rest[i + 2]) << 16 | Int(rest[i + 3]) << 24
                    rest = rest.dropFirst(4)
                    guard rest.count >= n else { throw InferRequestError("input \(name): a BYTES element of \(n) bytes is cut short") }
                    encoded.append(Data(rest.prefix(n)))
                    rest = rest.dropFirst(n)
                }
            } else {
                guard let items = input["data"] as? [Any] else {
                    throw InferRequestError("BYTES input needs 'data' as a list of base64-encoded images")
                }
                for (i, item) in items.enumerated() {
                    guard let text = item as? String, let data = Data(base64Encoded: text) else { throw InferRequestError("image \(i) is not a base64 string") }
                    encoded.append(data)
                }
            }
            guard !encoded.isEmpty else { throw InferRequestError("BYTES input holds no images") }
            guard elements == encoded.count else { throw InferRequestError("BYTES input of shape \(shape) holds \(encoded.count) images") }
            images = .encoded(encoded)
        default:
            throw InferRequestError("datatype '\(datatype)' is not FP32 or BYTES")
        }

        // What to answer: the requested outputs, else logits (and labels with top_k).
        let binaryDefault = parameters["binary_data_output"] as? Bool ?? false
        let topK = parameters["top_k"] as? Int ?? 0
        var outputs: [Output] = []
        if let requested = object["outputs"] {
            guard let list = requested as? [[String: Any]] else { throw InferRequestError("'outputs' must be a list of objects") }
            for output in list {
                let p = output["parameters"] as? [String: Any] ?? [:]
                let outName = output["name"] as? String ?? ""
                guard outName == "logits" || outName == "labels" else { throw InferRequestError("unknown output '\(outName)' (outputs: logits, labels)") }
                let k = p["classification"] as? Int ?? (outName == "labels" ? (topK > 0 ? topK : 5) : 0)
                outputs.append(Output(name: outName, classification: max(0, k), binary: p["binary_data"] as? Bool ?? binaryDefault))
            }
        }
        if outputs.isEmpty {
            outputs = [Output(name: "logits", classification: 0, binary: binaryDefault)]
            if topK > 0 { outputs.append(Output(name: "labels", classification: topK, binary: binaryDefault)) }
        }
        return InferRequest(id: object["id"] as? String, images: images, outputs: outputs)
    }
}
