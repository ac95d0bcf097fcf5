// Swin checkpoints in the timm 0.6 layout, which Microsoft's release and the SSF reference code also use.
import SSFEngine

/// Names of the Swin buffers that older checkpoints store but timm 1.0 recomputes (`persistent=False`):
/// a checkpoint key ending in one of these is not a model tensor.
public let swinNonPersistentBuffers = ["relative_position_index", "attn_mask"]

/// Whether `key` names one of the buffers in `swinNonPersistentBuffers`.
public func isSwinNonPersistentBuffer(_ key: String) -> Bool {
    swinNonPersistentBuffers.contains { key.hasSuffix("." + $0) || key == $0 }
}

/// Converts a Swin checkpoint from the timm 0.6 layout (also the SSF reference code's) to timm 1.0's:
/// drops the `relative_position_index`/`attn_mask` buffers, moves each stage's trailing
/// `layers.N.downsample.*` (patch merging) to the start of the next stage (`layers.N+1.downsample.*`),
/// and renames `head.weight|bias` to `head.fc.weight|bias`. Keys already in timm 1.0's layout are kept,
/// so the conversion is safe to apply to any Swin checkpoint (the old layout is recognised by a
/// `layers.0.downsample` entry, which timm 1.0 never has).
public func swinRemapLegacyKeys(_ state: [String: Tensor]) -> [String: Tensor] {
    swinRemapLegacyKeysWithNames(state).tensors
}

/// `swinRemapLegacyKeys` with the list of renamed keys.
func swinRemapLegacyKeysWithNames(_ state: [String: Tensor]) -> (tensors: [String: Tensor], renamed: [(from: String, to: String)]) {
    let legacyMerging = state.keys.contains { $0.hasPrefix("layers.0.downsample.") }
    var out: [String: Tensor] = [:]
    var renamed: [(from: String, to: String)] = []
    for key in state.keys.sorted() where !isSwinNonPersistentBuffer(key) {
        var parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if legacyMerging, parts.count > 3, parts[0] == "layers", parts[2] == "downsample", let stage = Int(parts[1]) {
            parts[1] = String(stage + 1)
        }
        if parts.count == 2, parts[0] == "head" { parts.insert("fc", at: 1) }
        let target = parts.joined(separator: ".")
        out[target] = state[key]
        if target != key { renamed.append((key, target)) }
    }
    return (out, renamed)
}

/// The timm 0.6 / Microsoft Swin layout: recognised by a `layers.0.downsample` entry, a bare
/// `head.weight`, or stored `relative_position_index`/`attn_mask` buffers.
public struct SwinLegacyLayout: CheckpointLayout {
    public init() {}
    public var name: String { "swin-timm0.6" }

    public func detects(_ tensors: [String: Tensor]) -> Bool {
        tensors.keys.contains { $0.hasPrefix("layers.0.downsample.") || $0 == "head.weight" || isSwinNonPersistentBuffer($0) }
    }

    public func convert(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint {
        let mapped = swinRemapLegacyKeysWithNames(tensors)
        var out = ConvertedCheckpoint(tensors: mapped.tensors)
        out.renamed = mapped.renamed
        out.dropped = tensors.keys.filter(isSwinNonPersistentBuffer).sorted()
            .map { ($0, "a buffer timm 1.0 recomputes from the window size") }
        return out
    }
}
