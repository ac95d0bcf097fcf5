// Ctrl-C (or SIGTERM, which mpirun forwards) during training: the first asks the run to stop at a
// resumable point, a second exits.
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Set by the first SIGINT or SIGTERM (the run then saves a resumable checkpoint); a second exits at once.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private let source: DispatchSourceSignal

    private let termination: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        termination = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        for s in [source, termination] {
            s.setEventHandler { [unowned lock] in
                lock.lock(); defer { lock.unlock() }
                if self.set { exit(130) }
                self.set = true
                printError("\ninterrupt: stopping after this update and saving a resumable checkpoint (Ctrl-C again to quit at once)")
            }
            s.resume()
        }
    }

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return set }

    func cancel() {
        source.cancel(); termination.cancel()
        signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL)
    }
}
