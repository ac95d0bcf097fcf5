// Resampling a ViT position embedding to another patch grid, as timm's `resample_abs_pos_embed`
// (bicubic with antialiasing, i.e. PyTorch's `interpolate(mode="bicubic", antialias=True)`).
import SSFEngine

/// A checkpoint tensor that cannot be brought into a ViT's layout.
public struct ViTCheckpointError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Resamples `posEmbed` (`[1, prefixTokens + h·w, D]`) to a `gridSize.height × gridSize.width` grid.
///
/// The prefix (class) tokens are kept as they are; the grid part is interpolated with PyTorch's
/// antialiased bicubic filter (Keys cubic, a = −0.5, widened by the scale when shrinking, weights
/// renormalised at the borders), separably along height and width. `oldGridSize` defaults to the
/// square grid implied by the token count. Returns `posEmbed` itself when the grids agree.
public func resamplePositionEmbedding(_ posEmbed: Tensor, gridSize: (height: Int, width: Int),
                                      oldGridSize: (height: Int, width: Int)? = nil, prefixTokens: Int = 1) throws -> Tensor {
    guard posEmbed.rank == 3, posEmbed.shape[0] == 1, posEmbed.shape[1] >= prefixTokens else {
        throw ViTCheckpointError("pos_embed \(posEmbed.shape) is not [1, \(prefixTokens) + grid tokens, D]")
    }
    let gridTokens = posEmbed.shape[1] - prefixTokens, dim = posEmbed.shape[2]
    let old: (height: Int, width: Int)
    if let oldGridSize {
        old = oldGridSize
    } else {
        let side = Int(Double(gridTokens).squareRoot().rounded())
        old = (side, side)
    }
    guard old.height * old.width == gridTokens else {
        throw ViTCheckpointError("pos_embed has \(gridTokens) grid tokens, not a \(old.height)×\(old.width) grid")
    }
    if old == gridSize { return posEmbed }
    let grid = posEmbed.untracked.slice(axis: 1, range: prefixTokens..<posEmbed.shape[1])
    // Height: [newH, oldH] · [oldH, oldW·D]; then width: [newW, oldW] · [oldW, D] for every row.
    let rows = matmul(antialiasedBicubicWeights(from: old.height, to: gridSize.height), grid.reshaped([old.height, old.width * dim]))
    let widthWeights = antialiasedBicubicWeights(from: old.width, to: gridSize.width)
    let resampled = matmul(widthWeights.expanded(to: [gridSize.height, gridSize.width, old.width]),
                           rows.reshaped([gridSize.height, old.width, dim]))
    let body = resampled.reshaped([1, gridSize.height * gridSize.width, dim])
    guard prefixTokens > 0 else { return body }
    return concat([posEmbed.untracked.slice(axis: 1, range: 0..<prefixTokens), body], axis: 1)
}

/// The `[outSize, inSize]` interpolation matrix of PyTorch's antialiased bicubic resize along one axis
/// (align_corners = false).
func antialiasedBicubicWeights(from inSize: Int, to outSize: Int) -> Tensor {
    func cubic(_ x: Double) -> Double {
        let a = -0.5, t = abs(x)
        if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
        if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
        return 0
    }
    let scale = Double(inSize) / Double(outSize)
    let support = scale >= 1 ? 2 * scale : 2
    let invScale = scale >= 1 ? 1 / scale : 1
    var weights = [Float](repeating: 0, count: outSize * inSize)
    for i in 0..<outSize {
        let center = scale * (Double(i) + 0.5)
        let lo = max(Int(center - support + 0.5), 0), hi = min(Int(center + support + 0.5), inSize)
        let taps = (lo..<hi).map { cubic((Double($0) - center + 0.5) * invScale) }
        let total = taps.reduce(0, +)
        for (k, w) in taps.enumerated() { weights[i * inSize + lo + k] = Float(total != 0 ? w / total : w) }
    }
    return Tensor(shape: [outSize, inSize], weights)
}

/// A timm ViT checkpoint trained at another resolution: its `pos_embed` is resampled to `gridSize`².
public struct ViTPositionGridLayout: CheckpointLayout {
    public let gridSize: Int
    public init(gridSize: Int) { self.gridSize = gridSize }
    public var name: String { "vit-position-grid" }

    public func detects(_ tensors: [String: Tensor]) -> Bool {
        guard let pos = tensors["pos_embed"], pos.rank == 3 else { return false }
        return pos.shape[1] != gridSize * gridSize + 1
    }

    public func convert(_ tensors: [String: Tensor]) throws -> ConvertedCheckpoint {
        var out = ConvertedCheckpoint(tensors: tensors)
        let pos = tensors["pos_embed"]!
        out.tensors["pos_embed"] = try resamplePositionEmbedding(pos, gridSize: (gridSize, gridSize))
        out.notes.append("pos_embed resampled from \(pos.shape[1]) to \(gridSize * gridSize + 1) tokens")
        return out
    }
}
