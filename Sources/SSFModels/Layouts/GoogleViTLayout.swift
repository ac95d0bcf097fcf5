// Google's ViT checkpoints (the original JAX/Flax `.npz` files and big_vision's) mapped to timm names
// and layouts, following timm's `_load_weights`.
import SSFEngine

/// The key prefixes under which Google's files store the model (plain, optimizer-wrapped, big_vision).
private let googleViTPrefixes = ["", "opt/target/", "params/"]

/// Whether `tensors` are named as Google's ViT `.npz` checkpoints (`embedding/kernel`, …).
public func isGoogleViTCheckpoint(_ tensors: [String: Tensor]) -> Bool {
    googleViTPrefixes.contains { tensors[$0 + "embedding/kernel"] != nil }
}

/// Maps a Google ViT checkpoint to timm's `VisionTransformer` state dictionary.
///
/// - `embedding/kernel` (HWIO) → `patch_embed.proj.weight` (OIHW); `embedding/bias`; `cls` → `cls_token`;
///   `Transformer/posembed_input/pos_embedding` (big_vision: `pos_embedding`) → `pos_embed`.
/// - `Transformer/encoderblock_N/`: `LayerNorm_0` → `blocks.N.norm1`; `MultiHeadDotProductAttention_1/`
///   `query|key|value` kernels `[D, heads, D/heads]` and biases are fused into `attn.qkv` (q, k, v
///   stacked along the output axis); `out` → `attn.proj`; `LayerNorm_2` → `norm2`;
///   `MlpBlock_3/Dense_0|Dense_1` → `mlp.fc1|fc2`. big_vision's indices (attention 0, norm 1, MLP 0)
///   and its scanned `Transformer/encoderblock/` layout (a leading depth axis) are accepted too.
/// - `Transformer/encoder_norm` → `norm`; `head` → `head`; `pre_logits` (the representation layer of
///   the first in21k releases) → `pre_logits.fc`, which timm 1.0's ViT no longer has (load it with
///   those names ignored, as timm does).
///
/// Dense kernels are `[in, out]` and become `[out, in]` weights. Keys outside the model (optimizer
/// state, …) are left out. `numHeads` is checked against the attention kernels' head axis.
public func googleViTToTimm(_ tensors: [String: Tensor], numHeads: Int) throws -> [String: Tensor] {
    guard let prefix = googleViTPrefixes.first(where: { tensors[$0 + "embedding/kernel"] != nil }) else {
        throw ViTCheckpointError("not a Google ViT checkpoint: no 'embedding/kernel' tensor")
    }
    func get(_ name: String) throws -> Tensor {
        guard let t = tensors[prefix + name] else { throw ViTCheckpointError("Google ViT checkpoint lacks '\(prefix + name)'") }
        return t
    }
    func dense(_ kernel: Tensor, _ name: String) throws -> Tensor {
        guard kernel.rank == 2 else { throw ViTCheckpointError("'\(name)' is \(kernel.shape), expected an [in, out] kernel") }
        return kernel.transposed(0, 1)
    }

    var out: [String: Tensor] = [:]
    let embedding = try get("embedding/kernel")
    guard embedding.rank == 4 else { throw ViTCheckpointError("'embedding/kernel' is \(embedding.shape), expected HWIO") }
    out["patch_embed.proj.weight"] = embedding.permuted([3, 2, 0, 1])
    out["patch_embed.proj.bias"] = try get("embedding/bias")
    if let cls = tensors[prefix + "cls"] { out["cls_token"] = cls }
    out["pos_embed"] = try tensors[prefix + "pos_embedding"] ?? get("Transformer/posembed_input/pos_embedding")
    out["norm.weight"] = try get("Transformer/encoder_norm/scale")
    out["norm.bias"] = try get("Transformer/encoder_norm/bias")
    for (source, target) in [("head", "head"), ("pre_logits", "pre_logits.fc")] {
        if let kernel = tensors[prefix + source + "/kernel"] {
            out[target + ".weight"] = try dense(kernel, source + "/kernel")
            out[target + ".bias"] = try get(source + "/bias")
        }
    }
    for (i, block) in try googleViTBlocks(tensors, prefix: prefix).enumerated() {
        for (name, value) in try googleViTBlockToTimm(block, index: i, numHeads: numHeads) { out["blocks.\(i).\(name)"] = value }
    }
    return out
}

/// The encoder blocks' tensors by their names inside a block, from either the per-block or the scanned layout.
private func googleViTBlocks(_ tensors: [String: Tensor], prefix: String) throws -> [[String: Tensor]] {
    let scanned = prefix + "Transformer/encoderblock/"
    if let norm = tensors[scanned + "LayerNorm_0/scale"] {
        let depth = norm.shape[0]
        let entries = tensors.filter { $0.key.hasPrefix(scanned) }
        return try (0..<depth).map { i in
            try Dictionary(uniqueKeysWithValues: entries.map { key, value in
                guard value.rank >= 1, value.shape[0] == depth else {
                    throw ViTCheckpointError("scanned '\(key)' is \(value.shape), expected a leading depth of \(depth)")
                }
                let item = value.slice(axis: 0, range: i..<(i + 1))
                return (String(key.dropFirst(scanned.count)), item.reshaped(Array(value.shape.dropFirst())))
            })
        }
    }
    var blocks: [[String: Tensor]] = []
    while true {
        let blockPrefix = prefix + "Transformer/encoderblock_\(blocks.count)/"
        guard tensors[blockPrefix + "LayerNorm_0/scale"] != nil else { break }
        blocks.append(Dictionary(uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix(blockPrefix) }
            .map { (String($0.key.dropFirst(blockPrefix.count)), $0.value) }))
    }
    guard !blocks.isEmpty else { throw ViTCheckpointError("Google ViT checkpoint has no 'Transformer/encoderblock_0' tensors") }
    return blocks
}

/// One encoder block (names relative to the block) in timm's names relative to `blocks.N`.
private func googleViTBlockToTimm(_ block: [String: Tensor], index: Int, numHeads: Int) throws -> [String: Tensor] {
    let bigVision = block["MultiHeadDotProductAttention_1/query/kernel"] == nil
    let (attention, mlp, norm2) = bigVision ? ("MultiHeadDotProductAttention_0/", "MlpBlock_0/", "LayerNorm_1/")
                                            : ("MultiHeadDotProductAttention_1/", "MlpBlock_3/", "LayerNorm_2/")
    func get(_ name: String) throws -> Tensor {
        guard let t = block[name] else { throw ViTCheckpointError("Google ViT encoder block \(index) lacks '\(name)'") }
        return t
    }
    func checkHeads(_ t: Tensor, axis: Int, _ name: String) throws {
        if t.rank == 3 && t.shape[axis] != numHeads {
            throw ViTCheckpointError("block \(index) '\(name)' is \(t.shape): \(t.shape[axis]) heads, the model has \(numHeads)")
        }
    }
    var out: [String: Tensor] = [:]
    out["norm1.weight"] = try get("LayerNorm_0/scale")
    out["norm1.bias"] = try get("LayerNorm_0/bias")
    var weights: [Tensor] = [], biases: [Tensor] = []
    for part in ["query", "key", "value"] {
        let kernel = try get(attention + part + "/kernel"), bias = try get(attention + part + "/bias")
        try checkHeads(kernel, axis: 1, attention + part + "/kernel")
        weights.append(kernel.reshaped([kernel.shape[0], -1]).transposed(0, 1))
        biases.append(bias.reshaped([-1]))
    }
    out["attn.qkv.weight"] = concat(weights, axis: 0)
    out["attn.qkv.bias"] = concat(biases, axis: 0)
    let proj = try get(attention + "out/kernel")
    try checkHeads(proj, axis: 0, attention + "out/kernel")
    out["attn.proj.weight"] = proj.reshaped([-1, proj.shape[proj.rank - 1]]).transposed(0, 1)
    out["attn.proj.bias"] = try get(attention + "out/bias")
    out["norm2.weight"] = try get(norm2 + "scale")
    out["norm2.bias"] = try get(norm2 + "bias")
    for (i, fc) in ["fc1", "fc2"].enumerated() {
        let kernel = try get(mlp + "Dense_\(i)/kernel")
        guard kernel.rank == 2 else {
            throw ViTCheckpointError("block \(index) '\(mlp)Dense_\(i)/kernel' is \(kernel.shape), expected [in, out]")
        }
        out["mlp.\(fc).weight"] = kernel.transposed(0, 1)
        out["mlp.\(fc).bias"] = try get(mlp + "Dense_\(i)/bias")
    }
    return out
}

/// Google's ViT `.npz` layout (also big_vision's), for a model with `numHeads` attention heads.
public struct GoogleViTLayout: CheckpointLayout {
    public let numHeads: Int
    public init(numHeads: Int) { self.numHeads = numHeads }
    public var name: String { "google-vit-npz" }

    public func detects(_ tensors: [String: Tensor]) -> Bool { isGoogleViTCheckpoint(tensors) }

    public func convert(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint {
        var out = ConvertedCheckpoint(tensors: try googleViTToTimm(tensors, numHeads: numHeads))
        let prefix = googleViTPrefixes.first { tensors[$0 + "embedding/kernel"] != nil } ?? ""
        let modelParts = ["embedding/", "cls", "pos_embedding", "Transformer/", "head/", "pre_logits/"].map { prefix + $0 }
        let (used, unused) = tensors.keys.sorted().reduce(into: ([String](), [String]())) { acc, key in
            if modelParts.contains(where: key.hasPrefix) { acc.0.append(key) } else { acc.1.append(key) }
        }
        out.renamed = [("\(used.count) Google tensors", "\(out.tensors.count) timm tensors")]
        out.dropped = unused.map { ($0, "outside the model (optimizer state or training metadata)") }
        if out.tensors["pre_logits.fc.weight"] != nil {
            out.notes.append("pre_logits.fc (the in21k representation layer) is kept; timm 1.0's ViT has no place for it")
        }
        return out
    }
}
