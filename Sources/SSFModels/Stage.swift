// A resolution stage shared by the hierarchical families: optional downsampling, then residual blocks.
import SSFEngine
import SSFNN

/// A module that maps one tensor to another.
public protocol TensorLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// Optional `downsample`, then `blocks` in order (timm 1.0's stage layout and key names).
public final class DownsampleStage<Downsample: TensorLayer, Block: TensorLayer>: Module {
    public let downsample: Downsample?
    public let blocks: ModuleList<Block>

    init(downsample: Downsample?, blocks: [Block]) {
        self.downsample = downsample
        self.blocks = ModuleList(blocks)
    }

    public var children: [(String, Module)] {
        (downsample.map { [("downsample", $0 as Module)] } ?? []) + [("blocks", blocks)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = downsample.map { $0(x) } ?? x
        for block in blocks.modules { y = block(y); FeatureTaps.tap(y) }
        return y
    }
}
