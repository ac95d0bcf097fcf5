// The error thrown when a checkpoint file cannot be read or written.

/// A checkpoint file that could not be read or written, naming the file and what was wrong.
public struct CheckpointError: Error, CustomStringConvertible {
    /// Path of the file concerned.
    public let path: String
    /// What was wrong, in words.
    public let problem: String

    /// An error about the file at `path`.
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    /// `"<path>: <problem>"`.
    public var description: String { "\(path): \(problem)" }
}
