// The original ConvNeXt release's names (`convnext_base_22k_224.pth` and the others of that release).
import SSFEngine

/// `downsample_layers.0.{0,1}` = stem conv and norm; `downsample_layers.i.{0,1}` = norm and conv of
/// stage i's downsampling; `stages.i.j.{dwconv, norm, pwconv1, pwconv2, gamma}`; the final `norm`
/// (timm's `head.norm`) and `head` (timm's `head.fc`).
public struct FacebookConvNeXtLayout: CheckpointLayout {
    public init() {}
    public var name: String { "facebook-convnext" }

    public func detects(_ tensors: [String: Tensor]) -> Bool { tensors["downsample_layers.0.0.weight"] != nil }

    static let rules = [
        KeyRule("downsample_layers.0.0.", "stem.0."), KeyRule("downsample_layers.0.1.", "stem.1."),
        KeyRule("downsample_layers.#.0.", "stages.#.downsample.0."), KeyRule("downsample_layers.#.1.", "stages.#.downsample.1."),
        KeyRule("stages.#.#.dwconv.", "stages.#.blocks.#.conv_dw."), KeyRule("stages.#.#.norm.", "stages.#.blocks.#.norm."),
        KeyRule("stages.#.#.pwconv1.", "stages.#.blocks.#.mlp.fc1."), KeyRule("stages.#.#.pwconv2.", "stages.#.blocks.#.mlp.fc2."),
        KeyRule("stages.#.#.gamma", "stages.#.blocks.#.gamma"),
        KeyRule("norm.", "head.norm."), KeyRule("head.", "head.fc."),
    ]

    public func convert(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint {
        try renameStrictly(tensors, rules: Self.rules, layout: name)
    }
}
