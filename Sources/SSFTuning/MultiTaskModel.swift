// One frozen base and many SSF tasks: every task is a delta (its SSF vectors and head) made on this
// base, and one batch may mix them — one backbone pass with per-sample SSF vectors at every site,
// then each task's head on its own samples.
import Foundation
import SSFEngine
import SSFModels
import SSFNN

/// A task a `MultiTaskModel` cannot take, with the reason.
public struct TaskLoadError: Error, CustomStringConvertible {
    public let task: String
    public let problem: String
    public var description: String { "task \(task): \(problem)" }
    public init(task: String, problem: String) { self.task = task; self.problem = problem }
}

/// What a server batches over: logits of a batch whose image n belongs to task `tasks[n]`.
public protocol TaskBatchModel: AnyObject {
    func logits(_ images: Tensor, tasks: [String]) throws -> [[Float]]
    /// Whether `task` can be in a batch now.
    func serves(_ task: String) -> Bool
}

/// A registered model with SSF at every site, its base weights frozen, serving the tasks added to it.
public final class MultiTaskModel: TaskBatchModel {
    /// One loaded task.
    public struct Task {
        public let name: String
        /// Scale and shift of every declared site, in `sites` order.
        let vectors: [(scale: Tensor, shift: Tensor)]
        /// The head's tensors by state-dictionary name.
        let head: [String: Tensor]
        public let classes: Int
        public let classNames: [String]?
    }

    public let spec: ModelSpec
    public let model: ImageClassifier
    private let sites: [DeclaredSSFSite]
    /// The fingerprint every delta must carry.
    public let baseFingerprint: String
    public private(set) var tasks: [String: Task] = [:]

    /// Builds `modelName` with SSF and loads `base` (a plain checkpoint of it, any supported layout).
    public init(model modelName: String, base: [String: Tensor]) throws {
        let loaded = try TuningMethod.ssf.load(model: modelName, state: base, path: "base")
        spec = loaded.spec
        model = loaded.model
        model.setTraining(false)
        sites = model.declaredSSFSites()
        guard !sites.isEmpty else { throw TaskLoadError(task: "-", problem: "\(modelName) has no SSF sites") }
        let state = model.stateDict()
        let head = type(of: model).headName
        baseFingerprint = DeltaFile.backboneFingerprint(state, headName: head)
    }

    /// Adds (or replaces) task `name` from its delta file; throws, naming the problem, for a delta
    /// made on another base or architecture, or one whose tensors do not fit.
    public func add(_ name: String, delta: DeltaFile) throws {
        guard delta.baseModel == spec.name else {
            throw TaskLoadError(task: name, problem: "the delta adapts \(delta.baseModel), not \(spec.name)")
        }
        guard delta.baseFingerprint == baseFingerprint else {
            throw TaskLoadError(task: name, problem: "the delta was made on a different \(spec.name) checkpoint (its base fingerprint is \(delta.baseFingerprint.prefix(16))…, this base's is \(baseFingerprint.prefix(16))…)")
        }
        if let statistics = delta.tensors.keys.sorted().first(where: DeltaFile.isStatisticsKey) {
            throw TaskLoadError(task: name, problem: "it carries trained batch-norm statistics (\(statistics)), which one shared base cannot hold per task; serve it merged")
        }
        var vectors: [(Tensor, Tensor)] = []
        for site in sites {
            guard let scale = delta.tensors[site.scaleKey], let shift = delta.tensors[site.shiftKey],
                  scale.count == site.site.channels, shift.count == site.site.channels else {
                throw TaskLoadError(task: name, problem: "it lacks \(site.scaleKey)/\(site.shiftKey) with \(site.site.channels) channels")
            }
            vectors.append((scale.reshaped([1, site.site.channels]), shift.reshaped([1, site.site.channels])))
        }
        let head = delta.tensors.filter { spec.isHeadParameter($0.key) }
        guard let classes = head.filter({ $0.key.hasSuffix(".weight") && $0.value.rank == 2 }).sorted(by: { $0.key < $1.key }).last?.value.shape[0] else {
            throw TaskLoadError(task: name, problem: "it has no head weight")
        }
        if let names = delta.classNames, names.count != classes {
            throw TaskLoadError(task: name, problem: "\(names.count) class names for a \(classes)-class head")
        }
        tasks[name] = Task(name: name, vectors: vectors, head: head, classes: classes, classNames: delta.classNames)
    }

    public func serves(_ task: String) -> Bool { tasks[task] != nil }

    /// Removes task `name`; false when it was not loaded.
    @discardableResult
    public func remove(_ name: String) -> Bool { tasks.removeValue(forKey: name) != nil }

    /// Logits of a batch whose image n belongs to task `taskNames[n]`: one backbone pass, then each
    /// task's head on its images. Row n has `tasks[taskNames[n]].classes` values.
    public func logits(_ images: Tensor, tasks taskNames: [String]) throws -> [[Float]] {
        precondition(images.shape.first == taskNames.count, "one task name per image")
        let chosen = try taskNames.map { name -> Task in
            guard let task = tasks[name] else {
                throw TaskLoadError(task: name, problem: "not loaded (loaded: \(tasks.keys.sorted().joined(separator: ", ")))")
            }
            return task
        }
        let vectors = SSFTaskVectors()
        for (i, site) in sites.enumerated() {
            vectors.set(site.site, scale: concat(chosen.map { $0.vectors[i].scale }, axis: 0),
                        shift: concat(chosen.map { $0.vectors[i].shift }, axis: 0))
        }
        let features = vectors.applying { model.headInput(images) }
        var rows = [[Float]](repeating: [], count: taskNames.count)
        var rng = RandomGenerator(seed: 0)
        for name in Set(taskNames).sorted() {
            let task = tasks[name]!
            let members = taskNames.indices.filter { taskNames[$0] == name }
            let part = concat(members.map { features.slice(axis: 0, range: $0..<($0 + 1)) }, axis: 0)
            model.resetHead(numClasses: task.classes, using: &rng)
            let report = model.load(stateDict: task.head)
            precondition(report.shapeMismatches.isEmpty, "task \(name): head tensors do not fit")
            let out = model.applyHead(part)
            for (j, n) in members.enumerated() { rows[n] = Array(out.scalars[(j * task.classes)..<((j + 1) * task.classes)]) }
        }
        return rows
    }
}

/// One task served from merged weights: the delta folded into the base, so the model is the plain
/// architecture with no per-sample work at all.
public final class MergedTaskModel: TaskBatchModel {
    public let name: String
    public let spec: ModelSpec
    public let model: ImageClassifier
    public let classes: Int
    public let classNames: [String]?
    /// Largest |Δlogit| between the merged and the unmerged task on the merge's probe image.
    public let maxDifference: Float

    /// Folds `delta` into `base` (a plain checkpoint of `modelName`), after checking it was made on
    /// that base; the fold is verified as `ssf merge` verifies it.
    public init(model modelName: String, base: [String: Tensor], task name: String, delta: DeltaFile) throws {
        let baseModel = try TuningMethod.ssf.load(model: modelName, state: base, path: "base")
        let state: [String: Tensor]
        do { state = try delta.ssfState(onBase: baseModel.model.stateDict(), model: modelName) } catch let error as MergeError {
            throw TaskLoadError(task: name, problem: error.problem)
        }
        let tuned = try TuningMethod.ssf.load(model: modelName, state: state, path: name, requireAdded: true)
        let verified = try MethodMerge.mergeAndVerify(tuned, method: .ssf)
        let plain = try ModelRegistry.create(modelName, numClasses: tuned.model.numClasses)
        var rng = RandomGenerator(seed: 0)
        _ = plain.enableSSFSites(presentIn: Set(verified.result.unfolded.keys), using: &rng)
        let report = plain.load(stateDict: verified.state)
        guard report.isExact else { throw TaskLoadError(task: name, problem: "the merged weights do not load exactly:\n\(report)") }
        plain.setTraining(false)
        self.name = name
        spec = tuned.spec
        model = plain
        classes = plain.numClasses
        if let names = delta.classNames, names.count != classes {
            throw TaskLoadError(task: name, problem: "\(names.count) class names for a \(classes)-class head")
        }
        classNames = delta.classNames
        maxDifference = verified.maxDifference
    }

    public func serves(_ task: String) -> Bool { task == name }

    public func logits(_ images: Tensor, tasks: [String]) throws -> [[Float]] {
        precondition(images.shape.first == tasks.count, "one task name per image")
        if let other = tasks.first(where: { $0 != name }) {
            throw TaskLoadError(task: other, problem: "not served (this model serves \(name), merged)")
        }
        let out = model(images).scalars
        return tasks.indices.map { Array(out[($0 * classes)..<(($0 + 1) * classes)]) }
    }
}
