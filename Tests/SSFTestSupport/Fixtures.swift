// Loading the safetensors fixtures the generators under tools/ write: one file, its tensors by
// prefix, and its `fixture` metadata decoded.
import Foundation
import SSFEngine
import SSFNN

/// A fixture that is missing or does not read.
public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A fixture file of a test target's `Fixtures` folder.
public struct Fixture {
    public let file: SafeTensorsFile
    public let name: String

    /// Reads `Fixtures/<name>.safetensors` from `bundle` (the test target's `Bundle.module`).
    public init(_ name: String, in bundle: Bundle) throws {
        guard let url = bundle.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures") else {
            throw FixtureError("no fixture Fixtures/\(name).safetensors in \(bundle.bundlePath); regenerate it with the generator under tools/")
        }
        file = try SafeTensors.load(url)
        self.name = name
    }

    public subscript(_ key: String) -> Tensor {
        guard let t = file.tensors[key] else { preconditionFailure("fixture \(name) has no tensor \(key)") }
        return t
    }

    /// The tensors whose names start with `prefix`, by the rest of their names.
    public func group(_ prefix: String) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: file.tensors.filter { $0.key.hasPrefix(prefix) }.map { (String($0.key.dropFirst(prefix.count)), $0.value) })
    }

    /// The `fixture` metadata entry (a JSON object) decoded as `T`.
    public func metadata<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        guard let text = file.metadata["fixture"] else { throw FixtureError("fixture \(name) has no 'fixture' metadata") }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}
