// Modules and parameters: the tree of layers, with timm-style dotted names for every tensor.
import SSFEngine

/// A tensor owned by a module: a trainable weight, a frozen weight, or a buffer
/// (running statistics and other state that is saved but never trained).
public final class Parameter {
    /// The current value.
    public var value: Tensor
    /// Whether an optimiser updates this tensor (and the tape tracks it).
    public var trainable: Bool
    /// Buffers are part of the state dictionary but never trainable.
    public let isBuffer: Bool

    public init(_ value: Tensor, trainable: Bool = true, isBuffer: Bool = false) {
        self.value = value
        self.trainable = trainable && !isBuffer
        self.isBuffer = isBuffer
    }

    /// The value as a forward pass should use it: tracked on the recording tape when trainable,
    /// so its gradient is collected; a plain constant otherwise.
    public var tensor: Tensor {
        if trainable, let tape = Tape.current { return tape.variable(for: self, value) }
        return value
    }

    /// Number of elements.
    public var count: Int { value.count }
}

/// A node of a model: owns parameters and child modules, each under a local name.
///
/// The full name of a parameter joins the local names from the root with dots
/// (`blocks.3.attn.qkv.weight`), exactly as timm's `state_dict()` keys.
public protocol Module: AnyObject {
    /// This module's own tensors by local name (children's are not included).
    var localParameters: [(String, Parameter)] { get }
    /// Child modules by local name; list elements are named "0", "1", ….
    var children: [(String, Module)] { get }
}

extension Module {
    public var localParameters: [(String, Parameter)] { [] }
    public var children: [(String, Module)] { [] }

    /// Every tensor of the tree with its dotted name, in declaration order.
    public func namedParameters(prefix: String = "") -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        for (name, p) in localParameters { out.append((prefix + name, p)) }
        for (name, child) in children { out += child.namedParameters(prefix: prefix + name + ".") }
        return out
    }

    /// Every module of the tree (this one first) with its dotted path ("" for the root).
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, child) in children {
            out += child.namedModules(prefix: prefix.isEmpty ? name : prefix + "." + name)
        }
        return out
    }

    /// The trainable parameters.
    public var trainableParameters: [(String, Parameter)] { namedParameters().filter { $0.1.trainable } }

    /// Number of elements in all non-buffer tensors.
    public var parameterCount: Int { namedParameters().filter { !$0.1.isBuffer }.reduce(0) { $0 + $1.1.count } }

    /// Number of elements in trainable tensors.
    public var trainableCount: Int { trainableParameters.reduce(0) { $0 + $1.1.count } }

    /// Name → value of every tensor, as a checkpoint stores it.
    public func stateDict() -> [String: Tensor] {
        Dictionary(namedParameters().map { ($0.0, $0.1.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// Marks every tensor whose name satisfies `predicate` trainable and freezes the rest
    /// (buffers are never trainable).
    public func setTrainable(where predicate: (String) -> Bool) {
        for (name, p) in namedParameters() where !p.isBuffer { p.trainable = predicate(name) }
    }

    /// Switches dropout-like layers between training and evaluation behaviour.
    public func setTraining(_ on: Bool) {
        for (_, m) in namedModules() { (m as? TrainingModeAware)?.training = on }
    }
}

/// A module whose behaviour differs between training and evaluation (dropout, drop-path).
public protocol TrainingModeAware: AnyObject {
    var training: Bool { get set }
}

/// An ordered list of modules, named "0", "1", … like `nn.Sequential` / `nn.ModuleList`.
public final class ModuleList<Element: Module>: Module {
    public var modules: [Element]
    public init(_ modules: [Element]) { self.modules = modules }
    public var children: [(String, Module)] { modules.enumerated().map { (String($0.offset), $0.element as Module) } }
    public subscript(i: Int) -> Element { modules[i] }
    public var count: Int { modules.count }
}
