// The interface every architecture implements, and the preprocessing defaults it carries.
import SSFEngine
import SSFNN

/// How an image is resized before cropping.
public enum Interpolation: String, Sendable, Codable {
    case bilinear, bicubic
}

/// Input expectations of a pretrained model, as timm's `pretrained_cfg`.
public struct PreprocessConfig: Sendable, Equatable {
    /// Input height and width in pixels.
    public var inputSize: Int
    /// Per-channel mean and standard deviation (RGB) applied to pixels scaled to [0, 1].
    public var mean: [Float]
    public var std: [Float]
    /// Fraction of the resized image kept by the center crop at evaluation.
    public var cropFraction: Float
    public var interpolation: Interpolation

    public init(inputSize: Int, mean: [Float], std: [Float], cropFraction: Float, interpolation: Interpolation) {
        self.inputSize = inputSize; self.mean = mean; self.std = std
        self.cropFraction = cropFraction; self.interpolation = interpolation
    }

    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]
    public static let inceptionMean: [Float] = [0.5, 0.5, 0.5]
    public static let inceptionStd: [Float] = [0.5, 0.5, 0.5]
}

/// An image classifier: NCHW images in, logits out.
public protocol ImageClassifier: Module {
    /// Number of output classes (0 means the model returns pooled features).
    var numClasses: Int { get }
    /// Width of the pooled features the head consumes.
    var featureDim: Int { get }
    /// `[N, 3, H, W]` → `[N, numClasses]` (or `[N, featureDim]` without a head); `applyHead(headInput(images))`.
    func callAsFunction(_ images: Tensor) -> Tensor
    /// What the head consumes, one row (leading index) per image: everything before the replaceable head.
    func headInput(_ images: Tensor) -> Tensor
    /// The head (`headName`'s module) on `headInput`'s output; the identity without a head.
    func applyHead(_ input: Tensor) -> Tensor
    /// Replaces the classification head with a freshly initialised one for `numClasses` classes.
    func resetHead(numClasses: Int, using rng: inout RandomGenerator)
    /// Inserts every SSF scale-shift site of the reference placement (SSF-SPEC), freshly
    /// initialised; afterwards the state dictionary carries the `ssf_scale_K`/`ssf_shift_K` entries.
    func enableSSF(using rng: inout RandomGenerator)
    /// Sets the stochastic-depth rates: 0 at the first block rising linearly to `rate` at the last.
    func setDropPathRate(_ rate: Float)
    /// Enables SSF sites outside the `enableSSF` placement that the family keeps in other
    /// checkpoints, when `keys` (a checkpoint's tensor names) hold them; returns a note for each.
    func enableSSFSites(presentIn keys: Set<String>, using rng: inout RandomGenerator) -> [String]
    /// Why a tuning slot (adapters, prompts) does not fit this architecture, for models that lack it.
    func reasonLacking(_ slot: TuningSlot) -> String
    /// Name of the classification head's module: its tensors are `<headName>.…`.
    static var headName: String { get }
    /// Why `size`×`size` inputs do not fit this model, or nil when they do.
    func inputSizeProblem(_ size: Int) -> String?
}

/// The optional places a parameter-efficient method puts its parameters.
public enum TuningSlot: String, Sendable {
    /// Bottleneck adapters on the blocks' MLP output.
    case adapter
    /// VPT prompt tokens in the token sequence.
    case prompts
}

extension ImageClassifier {
    public func enableSSFSites(presentIn keys: Set<String>, using rng: inout RandomGenerator) -> [String] { [] }

    public func reasonLacking(_ slot: TuningSlot) -> String {
        switch slot {
        case .adapter: return "it has no MLP blocks (adapters go on the MLP output of ViT, Swin, ConvNeXt and AS-MLP blocks)"
        case .prompts: return "it has no token sequence"
        }
    }

    public static var headName: String { "head" }

    /// Convolutional families take any size their downsampling divides: 32 (four stride-2 stages after a stride-4 stem, or EfficientNet's five).
    public func inputSizeProblem(_ size: Int) -> String? {
        size >= 32 && size % 32 == 0 ? nil : "it needs a multiple of 32 (its feature map halves five times), not \(size)"
    }

    /// Whether the tensor `name` belongs to the classification head.
    public static func isHeadParameter(_ name: String) -> Bool { name.hasPrefix(headName + ".") }
    public func isHeadParameter(_ name: String) -> Bool { Self.isHeadParameter(name) }

    /// The drop-path layers grouped by block (the layers of one block share its rate), in forward order.
    public var dropPathsByBlock: [[DropPath]] {
        var groups: [(String, [DropPath])] = []
        for (path, m) in namedModules() {
            guard let d = m as? DropPath else { continue }
            let block = path.split(separator: ".").dropLast().joined(separator: ".")
            if groups.last?.0 == block { groups[groups.count - 1].1.append(d) } else { groups.append((block, [d])) }
        }
        return groups.map(\.1)
    }

    /// timm's rule for ViT, Swin and ConvNeXt: `rate · i / (blocks − 1)` for block i.
    public func setDropPathRate(_ rate: Float) {
        let blocks = dropPathsByBlock
        for (i, group) in blocks.enumerated() {
            let r = blocks.count > 1 ? rate * Float(i) / Float(blocks.count - 1) : 0
            for d in group { d.probability = r }
        }
    }
}
