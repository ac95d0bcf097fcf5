// Ctrl-C during training: the first SIGINT asks the run to stop at a resumable point, a second exits.
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Set by the first SIGINT (the run then saves a resumable checkpoint); a second SIGINT exits at once.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned lock] in
            lock.lock(); defer { lock.unlock() }
            if self.set { exit(130) }
            self.set = true
            printError("\ninterrupt: stopping after this update and saving a resumable checkpoint (Ctrl-C again to quit at once)")
        }
        source.resume()
    }

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return set }

    func cancel() { source.cancel(); signal(SIGINT, SIG_DFL) }
}
