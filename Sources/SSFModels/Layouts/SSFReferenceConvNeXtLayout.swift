// The ConvNeXt of the SSF reference code (`models/convnext.py`, timm 0.6 names with SSF sites).
import SSFEngine

/// `stem.proj`/`stem.norm` (timm 1.0: `stem.0`/`stem.1`) and `stages.i.downsample.norm`/`.proj`
/// (`.0`/`.1`); blocks, head and every SSF site (`stem.ssf_*_1/2`, the blocks' and MLPs' sites, the
/// root's `ssf_*_1`) keep their names. (The reference's `Downsample` declares SSF sites, but its stage
/// hands it a list of modes, so its `tuning_mode == 'ssf'` test fails and they never exist.)
public struct SSFReferenceConvNeXtLayout: CheckpointLayout {
    public init() {}
    public var name: String { "ssf-reference-convnext" }

    public func detects(_ tensors: [String: Tensor]) -> Bool { tensors["stem.proj.weight"] != nil }

    static let rules: [KeyRule] = {
        var rules = [KeyRule("stem.proj.", "stem.0."), KeyRule("stem.norm.", "stem.1."),
                     KeyRule("stages.#.downsample.norm.", "stages.#.downsample.0."),
                     KeyRule("stages.#.downsample.proj.", "stages.#.downsample.1.")]
        let same = ["stages.#.blocks.#.conv_dw.", "stages.#.blocks.#.norm.", "stages.#.blocks.#.mlp.fc1.", "stages.#.blocks.#.mlp.fc2.",
                    "stages.#.blocks.#.gamma", "head.norm.", "head.fc."]
        rules += same.map { KeyRule($0, $0) }
        let sites = ["stem.ssf_#_1", "stem.ssf_#_2", "stages.#.blocks.#.ssf_#_1", "stages.#.blocks.#.ssf_#_2",
                     "stages.#.blocks.#.mlp.ssf_#_1", "stages.#.blocks.#.mlp.ssf_#_2", "ssf_#_1"]
        for site in sites {
            rules += ["scale", "shift"].map { kind in
                let name = site.replacingOccurrences(of: "ssf_#", with: "ssf_\(kind)")
                return KeyRule(name, name)
            }
        }
        return rules
    }()

    public func convert(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint {
        try renameStrictly(tensors, rules: Self.rules, layout: name)
    }
}
