// AS-MLP building blocks (NCHW throughout), with the reference implementation's parameter
// names: patch embedding, axial shift, MLP, block, patch merging and stage.
import SSFEngine
import SSFNN

/// `GroupNorm(1, C)`, the normalisation AS-MLP uses everywhere.
private func channelNorm(_ channels: Int) -> GroupNorm { GroupNorm(groups: 1, channels: channels) }

/// `patch_embed`: a patch-size-strided convolution (`proj`), then GroupNorm(1, C) (`norm`).
public final class ASMLPPatchEmbed: Module {
    public let proj: Conv2d
    public let norm: GroupNorm?

    init(patchSize: Int, inChannels: Int, embedDim: Int, patchNorm: Bool, using rng: inout RandomGenerator) {
        proj = Conv2d(inChannels, embedDim, kernel: patchSize, stride: patchSize, using: &rng)
        norm = patchNorm ? channelNorm(embedDim) : nil
    }

    public var children: [(String, Module)] { [("proj", proj)] + (norm.map { [("norm", $0)] } ?? []) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = proj(x)
        return norm.map { $0(y) } ?? y
    }
}

/// `axial_shift`: 1×1 conv → norm → GELU, then two branches that shift channel groups along
/// the width (`conv2_1`) and the height (`conv2_2`), each followed by a 1×1 conv and GELU;
/// their sum → norm → 1×1 conv (`conv3`). SSF sites 1–4 follow conv1, conv2_1, conv2_2, conv3.
public final class AxialShift: SSFSiteHost {
    public let conv1: Conv2d, conv2_1: Conv2d, conv2_2: Conv2d, conv3: Conv2d
    public let norm1: GroupNorm, norm2: GroupNorm
    public let shiftSize: Int
    var ssf: [ScaleShift?] = [nil, nil, nil, nil]

    init(dim: Int, shiftSize: Int, bias: Bool, using rng: inout RandomGenerator) {
        conv1 = Conv2d(dim, dim, kernel: 1, bias: bias, using: &rng)
        conv2_1 = Conv2d(dim, dim, kernel: 1, bias: bias, using: &rng)
        conv2_2 = Conv2d(dim, dim, kernel: 1, bias: bias, using: &rng)
        conv3 = Conv2d(dim, dim, kernel: 1, bias: bias, using: &rng)
        norm1 = channelNorm(dim)
        norm2 = channelNorm(dim)
        self.shiftSize = shiftSize
    }

    public var ssfSites: [ScaleShift?] { ssf }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] {
        [("conv1", conv1), ("conv2_1", conv2_1), ("conv2_2", conv2_2), ("conv3", conv3), ("norm1", norm1), ("norm2", norm2)]
    }

    func enableSSF(using rng: inout RandomGenerator) {
        ssf = ["conv1", "conv2_1", "conv2_2", "conv3"].map { ScaleShift(channels: conv1.outChannels, axis: .channelsFirst, after: $0, using: &rng) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = gelu(norm1(applySSF(ssf[0], conv1(x))))
        let leftRight = gelu(applySSF(ssf[1], conv2_1(axialShifted(y, axis: 3, shiftSize: shiftSize))))
        let topDown = gelu(applySSF(ssf[2], conv2_2(axialShifted(y, axis: 2, shiftSize: shiftSize))))
        return applySSF(ssf[3], conv3(norm2(leftRight + topDown)))
    }
}

/// `mlp`: 1×1 conv (`fc1`) → GELU → 1×1 conv (`fc2`); SSF sites 1 and 2 follow fc1 and fc2.
public final class ASMLPMlp: SSFSiteHost {
    public let fc1: Conv2d, fc2: Conv2d
    var ssf: [ScaleShift?] = [nil, nil]

    init(dim: Int, hidden: Int, using rng: inout RandomGenerator) {
        fc1 = Conv2d(dim, hidden, kernel: 1, using: &rng)
        fc2 = Conv2d(hidden, dim, kernel: 1, using: &rng)
    }

    public var ssfSites: [ScaleShift?] { ssf }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] { [("fc1", fc1), ("fc2", fc2)] }

    func enableSSF(using rng: inout RandomGenerator) {
        ssf = [ScaleShift(channels: fc1.outChannels, axis: .channelsFirst, after: "fc1", using: &rng),
               ScaleShift(channels: fc2.outChannels, axis: .channelsFirst, after: "fc2", using: &rng)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        applySSF(ssf[1], fc2(gelu(applySSF(ssf[0], fc1(x)))))
    }
}

/// One AS-MLP block: `x + axial_shift(norm1(x))`, then `x + mlp(norm2(x))`, with stochastic
/// depth on both branches; SSF sites 1 and 2 follow norm1 and norm2.
public final class AxialShiftedBlock: SSFSiteHost, AdapterCarrying {
    public let norm1: GroupNorm, norm2: GroupNorm
    public let axialShift: AxialShift
    public let mlp: ASMLPMlp
    let dropPath: DropPath
    var ssf: [ScaleShift?] = [nil, nil]
    /// A bottleneck adapter on the MLP's output (applied channels-last), before the residual sum
    /// (the Adapter method); nil in the plain architecture.
    var adapter: Adapter?

    init(dim: Int, shiftSize: Int, mlpRatio: Float, bias: Bool, dropPath rate: Float, using rng: inout RandomGenerator) {
        norm1 = channelNorm(dim)
        axialShift = AxialShift(dim: dim, shiftSize: shiftSize, bias: bias, using: &rng)
        norm2 = channelNorm(dim)
        mlp = ASMLPMlp(dim: dim, hidden: Int(Float(dim) * mlpRatio), using: &rng)
        dropPath = DropPath(rate, seed: rng.next())
    }

    public var ssfSites: [ScaleShift?] { ssf }
    public var localParameters: [(String, Parameter)] { ssfParameters }
    public var children: [(String, Module)] {
        [("norm1", norm1), ("axial_shift", axialShift), ("drop_path", dropPath), ("norm2", norm2), ("mlp", mlp)]
            + (adapter.map { [("adapter", $0 as Module)] } ?? [])
    }

    func enableSSF(using rng: inout RandomGenerator) {
        let dim = norm1.weight.count
        ssf = [ScaleShift(channels: dim, axis: .channelsFirst, after: "norm1", using: &rng),
               ScaleShift(channels: dim, axis: .channelsFirst, after: "norm2", using: &rng)]
        axialShift.enableSSF(using: &rng)
        mlp.enableSSF(using: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let x = x + dropPath(axialShift(applySSF(ssf[0], norm1(x))))
        var branch = mlp(applySSF(ssf[1], norm2(x)))
        if let adapter { branch = adapter(branch.permuted([0, 2, 3, 1])).permuted([0, 3, 1, 2]) }
        return x + dropPath(branch)
    }
}

/// `downsample`: gathers each 2×2 neighbourhood into channels (order: (0,0), (1,0), (0,1),
/// (1,1) as (row, column) offsets), GroupNorm(1, 4C) (`norm`), then a bias-free 1×1 conv
/// to 2C (`reduction`). No SSF sites.
public final class ASMLPPatchMerging: Module {
    public let reduction: Conv2d
    public let norm: GroupNorm

    init(dim: Int, using rng: inout RandomGenerator) {
        reduction = Conv2d(4 * dim, 2 * dim, kernel: 1, bias: false, using: &rng)
        norm = channelNorm(4 * dim)
    }

    public var children: [(String, Module)] { [("reduction", reduction), ("norm", norm)] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(h % 2 == 0 && w % 2 == 0, "AS-MLP patch merging needs an even feature map, got \(h)×\(w)")
        // [N, C, H/2, row offset, W/2, column offset] → [N, column offset, row offset, C, H/2, W/2].
        let merged = x.reshaped([n, c, h / 2, 2, w / 2, 2]).permuted([0, 5, 3, 1, 2, 4]).reshaped([n, 4 * c, h / 2, w / 2])
        return reduction(norm(merged))
    }
}

/// `layers.N`: a stage of blocks at one resolution, optionally followed by patch merging.
public final class ASMLPStage: Module {
    public let blocks: ModuleList<AxialShiftedBlock>
    public let downsample: ASMLPPatchMerging?

    init(blocks: [AxialShiftedBlock], downsample: ASMLPPatchMerging?) {
        self.blocks = ModuleList(blocks)
        self.downsample = downsample
    }

    public var children: [(String, Module)] {
        [("blocks", blocks)] + (downsample.map { [("downsample", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = blocks.modules.reduce(x) { x, block in
            let y = block(x)
            FeatureTaps.tap(y)
            return y
        }
        return downsample.map { $0(y) } ?? y
    }
}
