// The progress of a training run on the terminal: a one-line bar redrawn per batch on a TTY,
// a log line per tenth of an epoch otherwise, and one line per evaluated epoch.
import Foundation
import SSFTraining
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on a terminal, plain log lines otherwise.
final class ProgressDisplay {
    let totalEpochs: Int
    /// Warmup epochs and cosine epochs (the rest is cooldown), for the phase shown beside the epoch.
    let warmupEpochs: Int, cosineEpochs: Int
    let isTerminal = isatty(STDOUT_FILENO) != 0
    private var lastLogged = -1

    init(totalEpochs: Int, warmupEpochs: Int = 0, cosineEpochs: Int? = nil) {
        self.totalEpochs = totalEpochs; self.warmupEpochs = warmupEpochs; self.cosineEpochs = cosineEpochs ?? totalEpochs
    }

    /// A display for a run of `config`'s schedule.
    convenience init(config: TrainingConfig) {
        self.init(totalEpochs: config.totalEpochs, warmupEpochs: config.warmupEpochs, cosineEpochs: config.epochs)
    }

    /// "epoch 3/13", with "warmup" or "cooldown" when the epoch is in one.
    private func epochLabel(_ epoch: Int) -> String {
        let phase = epoch < warmupEpochs ? " warmup" : epoch >= cosineEpochs ? " cooldown" : ""
        return "epoch \(epoch + 1)/\(totalEpochs)\(phase)"
    }

    func show(_ event: TrainingEvent) {
        switch event {
        case let .batch(epoch, batch, batches, loss, rate, eta):
            let stats = String(format: "loss %.4f  %.1f img/s  ETA %@", loss, rate, duration(eta))
            if isTerminal {
                let width = 24, filled = width * batch / max(batches, 1)
                let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                print("\r\(epochLabel(epoch)) [\(bar)] \(batch)/\(batches)  \(stats)\u{1B}[K", terminator: "")
                fflush(stdout)
            } else if batch == batches || batch * 10 / batches != lastLogged {
                lastLogged = batch * 10 / batches
                print("\(epochLabel(epoch)) batch \(batch)/\(batches)  \(stats)")
            }
        case let .epoch(m):
            if isTerminal { print("\r\u{1B}[K", terminator: "") }
            var line = String(format: "epoch %d/%d  train_loss %.4f", m.epoch + 1, totalEpochs, m.trainLoss ?? 0)
            if let evalLoss = m.evalLoss, let top1 = m.top1, let top5 = m.top5 {
                line += String(format: "  eval_loss %.4f  top1 %.2f  top5 %.2f", evalLoss, top1, top5)
            }
            print(line + String(format: "  lr %.3g  %.1f img/s  %.1f s", m.lr ?? 0, m.imagesPerSecond ?? 0, m.epochSeconds ?? 0))
            lastLogged = -1
        case let .message(text):
            if isTerminal { print("\r\u{1B}[K", terminator: "") }
            print(text)
        }
        fflush(stdout)
    }

    private func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
