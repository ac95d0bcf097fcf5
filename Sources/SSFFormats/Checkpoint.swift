// One entry point for every checkpoint format: safetensors, PyTorch (zip or legacy) and NumPy .npz.
import Foundation
import SSFEngine

/// The on-disk formats the tool reads.
public enum CheckpointFormat: String, Sendable {
    case safetensors, torchZip, torchLegacy, numpyArchive
}

/// Reads checkpoints of any supported format into Float32 tensors by name.
public enum Checkpoint {
    /// The format of `url`, recognised from its first bytes (zip archives: .npz is NumPy, any
    /// other name PyTorch).
    public static func format(of url: URL) throws -> CheckpointFormat {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw CheckpointError(path: url.path, problem: "cannot open the file")
        }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 64)) ?? Data())
        if head.count >= 4 && head[0] == 0x50 && head[1] == 0x4B && head[2] == 0x03 && head[3] == 0x04 {
            // Both are zip archives: NumPy's carry the .npz extension.
            return url.pathExtension.lowercased() == "npz" ? .numpyArchive : .torchZip
        }
        if head.count >= 2 && head[0] == 0x80 { return .torchLegacy }
        if head.count >= 9 && head[8] == UInt8(ascii: "{") { return .safetensors }
        throw CheckpointError(path: url.path, problem: head.isEmpty
            ? "empty file"
            : "not a safetensors, PyTorch or .npz checkpoint (unrecognised first bytes)")
    }

    /// All tensors of the checkpoint at `url`, converted to Float32.
    public static func read(_ url: URL) throws -> [String: Tensor] {
        switch try format(of: url) {
        case .safetensors: return try SafeTensors.load(url).tensors
        case .torchZip, .torchLegacy: return try TorchCheckpoint.load(url)
        case .numpyArchive: return try NumPyArchive.load(url)
        }
    }
}
