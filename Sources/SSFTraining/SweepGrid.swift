// The grid of a hyperparameter sweep: `KEY=v1,v2,...` axes over configuration keys, their values read
// as JSON scalars, and the trials as the axes' cartesian product in a stable order with stable names.
import Foundation

/// One grid value: a number when the text is a number, true/false, null, otherwise a string.
public enum SweepValue: Codable, Hashable, Sendable, CustomStringConvertible {
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case string(String)
    case null

    /// `3` → integer, `1e-3` or `0.5` → number, `true`/`false` → bool, `null` → null, anything else → string.
    public init(parsing text: String) {
        if let value = Int(text) { self = .integer(value) }
        else if let value = Double(text), value.isFinite, text.allSatisfy({ "0123456789.eE+-".contains($0) }) { self = .number(value) }
        else if text == "true" || text == "false" { self = .bool(text == "true") }
        else if text == "null" { self = .null }
        else { self = .string(text) }
    }

    /// The value as `TrainingConfig.merging` takes it.
    public var configValue: Any {
        switch self {
        case let .integer(v): return v
        case let .number(v): return v
        case let .bool(v): return v
        case let .string(v): return v
        case .null: return NSNull()
        }
    }

    /// The value as a number (integers and numbers), for ordering by learning rate.
    public var numeric: Double? {
        switch self {
        case let .integer(v): return Double(v)
        case let .number(v): return v
        default: return nil
        }
    }

    /// The canonical spelling (`0.001`, `5e-05`, `true`, `null`), used in trial names.
    public var description: String {
        switch self {
        case let .integer(v): return String(v)
        case let .number(v): return "\(v)"
        case let .bool(v): return v ? "true" : "false"
        case let .string(v): return v
        case .null: return "null"
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let v = try? container.decode(Bool.self) { self = .bool(v) }
        else if let v = try? container.decode(Int.self) { self = .integer(v) }
        else if let v = try? container.decode(Double.self) { self = .number(v) }
        else { self = .string(try container.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .integer(v): try container.encode(v)
        case let .number(v): try container.encode(v)
        case let .bool(v): try container.encode(v)
        case let .string(v): try container.encode(v)
        case .null: try container.encodeNil()
        }
    }
}

/// One axis of the grid: a configuration key and the values it takes, in the order given.
public struct SweepAxis: Codable, Equatable, Sendable {
    public let key: String
    public let values: [SweepValue]

    public init(key: String, values: [SweepValue]) { self.key = key; self.values = values }
}

/// One point of the grid.
public struct SweepTrial: Equatable, Sendable {
    /// Position in the grid's order, from 0.
    public let index: Int
    /// One (key, value) per axis, in the axes' order.
    public let settings: [(key: String, value: SweepValue)]

    public static func == (a: SweepTrial, b: SweepTrial) -> Bool {
        a.index == b.index && a.settings.map(\.key) == b.settings.map(\.key) && a.settings.map(\.value) == b.settings.map(\.value)
    }

    /// `lr=0.001 weight_decay=0.05`, for progress lines and the report.
    public var label: String { settings.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }

    /// The run directory's name: `NNN-key=value,key=value`, with characters other than letters, digits
    /// and `._,=+-` replaced by `_` and the settings part cut at 120 characters.
    public var name: String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._,=+-")
        let settingsPart = String(settings.map { "\($0.key)=\($0.value)" }.joined(separator: ",").map { allowed.contains($0) ? $0 : "_" }.prefix(120))
        return String(format: "%03d", index) + "-" + settingsPart
    }

    /// The settings as configuration overrides.
    public var overrides: [String: Any] { Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0.value.configValue) }) }
}

/// The axes of a sweep and the trials they span.
public struct SweepGrid: Equatable, Sendable {
    public let axes: [SweepAxis]

    /// Keys a grid may not vary: they decide which images the sweep trains, validates and tests on.
    public static let fixedKeys: Set<String> = ["data", "train_split", "eval_split", "train_limit", "eval_limit"]

    public init(axes: [SweepAxis]) { self.axes = axes }

    /// Parses `KEY=v1,v2,...` arguments (one per `--grid`). Throws on a malformed argument, an unknown or
    /// fixed key, a key given twice, an empty value or a value given twice.
    public init(parsing arguments: [String]) throws {
        guard !arguments.isEmpty else { throw ConfigError("no grid: give at least one --grid KEY=V1,V2 (e.g. --grid lr=1e-3,3e-3,1e-2)") }
        let known = Set(TrainingConfig.keys)
        var axes: [SweepAxis] = []
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                throw ConfigError("--grid \(argument): expected KEY=V1,V2,... (e.g. lr=1e-3,3e-3)")
            }
            let key = String(argument[..<equals]).trimmingCharacters(in: .whitespaces)
            guard known.contains(key) else {
                throw ConfigError("--grid \(argument): unknown configuration key '\(key)' (known: \(TrainingConfig.keys.joined(separator: ", ")))")
            }
            guard !Self.fixedKeys.contains(key) else {
                throw ConfigError("--grid \(argument): '\(key)' decides the sweep's images and cannot vary; set it once as a base setting")
            }
            guard !axes.contains(where: { $0.key == key }) else { throw ConfigError("--grid: '\(key)' is given twice; list all its values in one --grid") }
            let texts = argument[argument.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard !texts.contains(where: \.isEmpty) else { throw ConfigError("--grid \(argument): an empty value") }
            let values = texts.map(SweepValue.init(parsing:))
            if let repeated = values.indices.first(where: { i in values[..<i].contains(values[i]) }) {
                throw ConfigError("--grid \(argument): \(values[repeated]) is given twice")
            }
            axes.append(SweepAxis(key: key, values: values))
        }
        self.init(axes: axes)
    }

    /// The cartesian product: the first axis varies slowest, each axis's values in the order given.
    public var trials: [SweepTrial] {
        var points: [[(key: String, value: SweepValue)]] = [[]]
        for axis in axes {
            points = points.flatMap { point in axis.values.map { point + [(axis.key, $0)] } }
        }
        return points.enumerated().map { SweepTrial(index: $0.offset, settings: $0.element) }
    }

    /// Each trial's configuration: `base` with the trial's settings; throws naming the first trial whose
    /// settings do not make a valid configuration.
    public func configurations(base: TrainingConfig) throws -> [TrainingConfig] {
        try trials.map { trial in
            do {
                let config = try base.merging(trial.overrides)
                try config.validate()
                return config
            } catch let error as ConfigError {
                throw ConfigError("trial \(trial.label): \(error.description)")
            }
        }
    }
}
