// Run directories as `ssf train` writes them, made in a temporary directory: two finished runs
// (SSF and linear probing, five epochs each) and one stopped after two epochs.
import Foundation
import XCTest

/// A scratch directory of run directories, removed by `remove()`.
struct RunFixtures {
    let root: URL

    /// The awkward class name: its text must reach the page escaped.
    static let oddClass = "<b>&\"x"
    static let classes = ["apple", "banana", "cherry", oddClass]

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    func url(_ name: String) -> URL { root.appendingPathComponent(name) }

    /// metrics.jsonl lines as the trainer writes them (sorted keys, one object per epoch).
    static func metricsLines(epochs: Int, startLoss: Double, startTop1: Double, gain: Double) -> [String] {
        (0..<epochs).map { e in
            let t = Double(e)
            let lr = e == 0 ? 1e-4 : 1e-3 * (1 + cos(Double.pi * Double(e - 1) / Double(max(epochs - 1, 1)))) / 2
            return String(format: #"{"epoch":%d,"epoch_seconds":%.3f,"eval_loss":%.5f,"images_per_s":%.2f,"lr":%.8f,"top1":%.3f,"top5":%.3f,"train_loss":%.5f}"#,
                          e, 12.5 + t, startLoss * 0.9 / (1 + t * 0.35), 410.0 + t, lr, min(99, startTop1 + gain * t), min(100, startTop1 + 15 + gain * t),
                          startLoss / (1 + t * 0.4))
        }
    }

    @discardableResult
    func makeRun(_ name: String, method: String, metrics: [String], summary: [String: Any]?, config: Bool = true) throws -> URL {
        let dir = url(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data((metrics.map { $0 + "\n" }.joined()).utf8).write(to: dir.appendingPathComponent("metrics.jsonl"))
        if config {
            let yaml = """
            model: vit_base_patch16_224
            weights: /models/ViT-B_16.npz
            data: imagefolder:/data/fruit
            method: \(method)
            epochs: 8
            cooldown_epochs: 2
            warmup_epochs: 1
            batch_size: 32
            lr: 0.001

            """
            try Data(yaml.utf8).write(to: dir.appendingPathComponent("config.yaml"))
        }
        if let summary {
            let json = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
            try json.write(to: dir.appendingPathComponent("summary.json"))
        }
        return dir
    }

    static func summary(method: String, best: Double, bestEpoch: Int, final: Double, params: Int, seconds: Double, perClass: [String: Double],
                        delta: Int?) -> [String: Any] {
        var s: [String: Any] = [
            "model": "vit_base_patch16_224", "method": method, "data": "imagefolder:/data/fruit", "epochs": 5,
            "best_top1": best, "best_epoch": bestEpoch, "final_top1": final, "final_top5": 99.5, "final_eval_loss": 0.41,
            "trainable_params": params, "train_seconds": seconds, "selected_on": "val", "train_images": 800, "eval_images": 200,
            "ema": false, "peak_rss_mib": 1843.6, "train_images_per_s": 415.3, "per_class_top1": perClass,
        ]
        if let delta { s["delta_bytes"] = delta }
        return s
    }

    /// cifar-ssf and cifar-linear (finished) and cifar-lora (unfinished: two epochs, no summary).
    func makeThreeRuns() throws -> [URL] {
        let ssf = try makeRun("cifar-ssf", method: "ssf", metrics: Self.metricsLines(epochs: 5, startLoss: 2.3, startTop1: 61, gain: 7.5),
                              summary: Self.summary(method: "ssf", best: 91.0, bestEpoch: 5, final: 91.0, params: 282_724, seconds: 75.2,
                                                    perClass: ["apple": 95, "banana": 88.5, "cherry": 90, Self.oddClass: 90.5], delta: 1_187_840))
        let linear = try makeRun("cifar-linear", method: "linear", metrics: Self.metricsLines(epochs: 5, startLoss: 2.4, startTop1: 55, gain: 5),
                                 summary: Self.summary(method: "linear", best: 75.0, bestEpoch: 5, final: 75.0, params: 76_900, seconds: 3725,
                                                       perClass: ["apple": 80, "banana": 70, "cherry": 77.5, Self.oddClass: 72.5], delta: nil))
        let lora = try makeRun("cifar-lora", method: "lora", metrics: Self.metricsLines(epochs: 2, startLoss: 2.2, startTop1: 60, gain: 10), summary: nil)
        return [ssf, linear, lora]
    }
}
