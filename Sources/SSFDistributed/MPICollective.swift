// The training library's `Collective` on Open MPI: started when the process runs under `mpirun`
// (its environment says so), absent otherwise, so a plain `ssf train` never touches MPI.
import CMPI
import Foundation
import SSFTraining

/// An MPI call that failed.
public struct MPIError: Error, CustomStringConvertible {
    public let description: String
}

/// `MPI_COMM_WORLD` as a `Collective`.
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int
    private let comm = ssf_mpi_comm_world()

    private init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    /// The world size `mpirun` announces in the environment (Open MPI, or a PMI launcher), nil outside one.
    public static var launchedSize: Int? {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"].lazy.compactMap { env[$0].flatMap(Int.init) }.first
    }

    /// Initialises MPI when the process was started by `mpirun` with more than one rank; nil otherwise.
    public static func fromEnvironment() throws -> MPICollective? {
        guard let size = launchedSize, size > 1 else { return nil }
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided), "MPI_Init_thread")
        var rank: Int32 = 0, world: Int32 = 0
        try check(MPI_Comm_rank(ssf_mpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(ssf_mpi_comm_world(), &world), "MPI_Comm_size")
        return MPICollective(rank: Int(rank), size: Int(world))
    }

    private static func check(_ code: Int32, _ call: String) throws {
        guard code == ssf_mpi_success() else { throw MPIError(description: "\(call) failed with MPI error \(code)") }
    }

    public func sum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try chunks(buffer.count) { offset, count in
            try Self.check(MPI_Allreduce(ssf_mpi_in_place(), buffer.baseAddress! + offset, Int32(count), ssf_mpi_float(), ssf_mpi_sum(), comm), "MPI_Allreduce")
        }
    }

    public func sum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        try chunks(buffer.count) { offset, count in
            try Self.check(MPI_Allreduce(ssf_mpi_in_place(), buffer.baseAddress! + offset, Int32(count), ssf_mpi_double(), ssf_mpi_sum(), comm), "MPI_Allreduce")
        }
    }

    public func broadcast(_ bytes: [UInt8]) throws -> [UInt8] {
        var count = [Double(bytes.count)]
        try count.withUnsafeMutableBytes { p in
            try Self.check(MPI_Bcast(p.baseAddress, 1, ssf_mpi_double(), 0, comm), "MPI_Bcast")
        }
        var out = rank == 0 ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        if !out.isEmpty {
            try out.withUnsafeMutableBytes { p in
                try Self.check(MPI_Bcast(p.baseAddress, Int32(p.count), ssf_mpi_byte(), 0, comm), "MPI_Bcast")
            }
        }
        return out
    }

    /// Waits for every rank.
    public func barrier() throws { try Self.check(MPI_Barrier(comm), "MPI_Barrier") }

    /// Ends the whole job: this rank's message on standard error, then MPI_Abort.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("rank \(rank) of \(size): \(message)\n".utf8))
        MPI_Abort(comm, code)
        exit(code)
    }

    /// Shuts MPI down (every rank, at the end).
    public func finish() { MPI_Finalize() }

    /// MPI counts are 32-bit: large buffers go in pieces of at most 2^30 elements.
    private func chunks(_ total: Int, _ body: (Int, Int) throws -> Void) throws {
        var offset = 0
        while offset < total {
            let count = min(1 << 30, total - offset)
            try body(offset, count)
            offset += count
        }
    }
}
