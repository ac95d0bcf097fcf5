// `ssf eval`: top-1/top-5 accuracy, loss and images/s of a model on a dataset split.
import ArgumentParser
import Foundation
import SSFDistributed
import SSFData
import SSFEngine
import SSFFormats
import SSFModels
import SSFTraining

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on a dataset split: top-1, top-5, loss, images/s.",
        discussion: """
        --run RUN_DIR evaluates a training run (its model, base weights, method and best checkpoint) on \
        its data unless --data says otherwise. --checkpoint lays tensors over the loaded model: a run's \
        best.safetensors or last.safetensors, or a task.delta.safetensors. The head is sized for the dataset's classes \
        (with --class-subset the checkpoint's head is kept and only the listed columns are scored). \
        --corruption NAME:SEVERITY applies an ImageNet-C corruption after the resize and crop (see `ssf robustness`).
        """)
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var dataOptions: EvalDataOptions
    @Option(help: "An ImageNet-C corruption as NAME:SEVERITY (severity 1-5), e.g. gaussian_noise:3; names: \(Corruption.validNames).")
    var corruption: String?
    @Option(help: "Seed of the corruption's random fields (per image, from the seed and the image's index).") var seed: UInt64 = 0
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if let corruption { _ = try CorruptionSpec(flag: "--corruption", value: corruption) }
    }

    func run() throws {
        threadOptions.apply()
        // Under `mpirun -np N` each rank evaluates its shard and rank 0 prints the summed counts.
        guard let collective = try MPICollective.fromEnvironment() else { return try evaluate(collective: nil) }
        do { try evaluate(collective: collective) } catch { collective.abort("\(error)") }
        collective.finish()
    }

    private func evaluate(collective: MPICollective?) throws {
        let corruption = try self.corruption.map { try CorruptionSpec(flag: "--corruption", value: $0) }
        let prepared = try PreparedEvaluation.prepare(model: modelOptions, data: dataOptions, seed: seed)
        var result: EvaluationResult
        if let collective {
            result = try prepared.evaluate(corruption: corruption, shard: Shard(rank: collective.rank, worldSize: collective.size)).summed(over: collective)
            guard collective.rank == 0 else { return }
        } else {
            result = try prepared.evaluate(corruption: corruption)
        }
        let data = prepared.data, chosen = prepared.split
        if json {
            var members: [JSONMember] = [
                JSONMember("model", JSONValue(prepared.modelName)), JSONMember("data", JSONValue(data)), JSONMember("split", JSONValue(chosen)),
                JSONMember("images", JSONValue(result.images)),
                JSONMember("top1", JSONValue(result.top1, decimals: 4)), JSONMember("top5", JSONValue(result.top5, decimals: 4)),
                JSONMember("loss", JSONValue(result.loss, decimals: 6)), JSONMember("images_per_s", JSONValue(result.imagesPerSecond, decimals: 3)),
            ]
            if let corruption {
                members += [JSONMember("corruption", JSONValue(corruption.corruption.rawValue)), JSONMember("severity", JSONValue(corruption.severity)),
                            JSONMember("seed", .number(String(prepared.config.seed)))]
            }
            if let subset = prepared.classSubset {
                members.append(JSONMember("class_subset", [JSONMember("file", JSONValue(dataOptions.classSubset ?? "")),
                                                           JSONMember("classes", JSONValue(subset.columns.count))].asObject))
            }
            print(JSONValue.orderedObject(members).serialized)
        } else {
            let what = corruption.map { " with \($0) (seed \(prepared.config.seed))" } ?? ""
            let subset = prepared.classSubset.map { ", \($0.columns.count) of \(prepared.loaded.model.numClasses) head classes" } ?? ""
            print(String(format: "%@ on %@ (%@, %d images%@)%@: top-1 %.2f%%  top-5 %.2f%%  loss %.4f  %.1f images/s",
                         prepared.modelName, data, chosen, result.images, subset, what, result.top1, result.top5, result.loss, result.imagesPerSecond))
        }
    }
}

extension Array where Element == JSONMember {
    /// The members as an object written in their order.
    var asObject: JSONValue { .orderedObject(self) }
}
