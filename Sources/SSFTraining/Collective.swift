// What a data-parallel run needs from the processes it runs in: their number, this one's rank, and
// sums and a broadcast across them. `SSFDistributed` implements it with Open MPI.
import Foundation

/// A group of processes training one model together (rank 0 writes the run directory).
public protocol Collective: AnyObject {
    /// This process, 0 ..< size.
    var rank: Int { get }
    /// Number of processes.
    var size: Int { get }
    /// Replaces `buffer` by its element-wise sum over the processes.
    func sum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func sum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
    /// Rank 0's bytes, on every rank.
    func broadcast(_ bytes: [UInt8]) throws -> [UInt8]
}

extension Collective {
    /// The element-wise sums of `values` over the processes.
    public func sum(_ values: [Double]) throws -> [Double] {
        var out = values
        try out.withUnsafeMutableBufferPointer { try sum($0) }
        return out
    }

    /// Whether any process says true.
    public func any(_ flag: Bool) throws -> Bool { try sum([flag ? 1 : 0])[0] > 0 }

    /// Rank 0's text, on every rank.
    public func broadcast(_ text: String) throws -> String { String(decoding: try broadcast(Array(text.utf8)), as: UTF8.self) }
}

/// A process whose settings differ from rank 0's, found before training starts.
public struct CollectiveMismatch: Error, CustomStringConvertible {
    public let description: String
}

extension Collective {
    /// Throws on every rank unless every rank's `text` (e.g. its resolved configuration) is rank 0's.
    public func requireSame(_ text: String, what: String) throws {
        let reference = try broadcast(text)
        let differs = try sum([reference == text ? 0 : 1])[0]
        guard differs == 0 else {
            throw CollectiveMismatch(description: "\(Int(differs)) of \(size) ranks have another \(what) than rank 0\(reference == text ? "" : " (this is rank \(rank))"); every rank must run the same command on the same data")
        }
    }
}
