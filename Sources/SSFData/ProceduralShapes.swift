// Built-in procedurally generated image tasks (no files): coloured shapes at random positions,
// sizes and rotations. `ssf demo` pretrains on one task and adapts to the other.
import Foundation
import SSFEngine

/// A shape drawn by an inside test in its own unit coordinates (the shape spans about [-1, 1]²).
public enum ProceduralShape: String, CaseIterable, Sendable {
    case circle, square, triangle, cross, ring, hexagon, star, halfDisc = "half-disc"
    case pentagon, crescent, frame, arrow, ellipse, lShape = "l-shape"

    /// Whether the point (u, v) of the shape's unit frame is inside the shape.
    func contains(_ u: Float, _ v: Float) -> Bool {
        let r = (u * u + v * v).squareRoot()
        switch self {
        case .circle: return r <= 0.95
        case .square: return max(abs(u), abs(v)) <= 0.75
        case .triangle: return ProceduralShape.insideRegularPolygon(u, v, sides: 3, radius: 1)
        case .cross: return (abs(u) <= 0.28 && abs(v) <= 0.95) || (abs(v) <= 0.28 && abs(u) <= 0.95)
        case .ring: return r <= 0.95 && r >= 0.55
        case .hexagon: return ProceduralShape.insideRegularPolygon(u, v, sides: 6, radius: 0.95)
        case .star:
            // Five points: the radius swings between 0.45 and 1 with the angle.
            let phase = (atan2f(v, u) + .pi / 2) * 5 / (2 * .pi)
            let t = abs(phase - phase.rounded()) * 2
            return r <= 1 - 0.55 * t
        case .halfDisc: return r <= 0.95 && v >= -0.1
        case .pentagon: return ProceduralShape.insideRegularPolygon(u, v, sides: 5, radius: 0.95)
        case .crescent:
            let du = u - 0.45
            return r <= 0.95 && (du * du + v * v).squareRoot() > 0.75
        case .frame:
            let m = max(abs(u), abs(v))
            return m <= 0.85 && m >= 0.5
        case .arrow: return (u >= -0.95 && u <= 0.15 && abs(v) <= 0.22) || (u > 0.15 && u <= 0.95 && abs(v) <= (0.95 - u) * 0.9)
        case .ellipse: return (u * u) / 0.9 + (v * v) / 0.2 <= 1
        case .lShape: return (u >= -0.75 && u <= -0.3 && abs(v) <= 0.85) || (v >= 0.4 && v <= 0.85 && u >= -0.75 && u <= 0.75)
        }
    }

    private static func insideRegularPolygon(_ u: Float, _ v: Float, sides: Int, radius: Float) -> Bool {
        let sector = 2 * Float.pi / Float(sides)
        var angle = atan2f(v, u) + .pi / 2
        angle -= sector * (angle / sector).rounded(.down)
        let apothem = radius * cosf(sector / 2)
        return (u * u + v * v).squareRoot() * cosf(angle - sector / 2) <= apothem
    }
}

/// One of the two built-in tasks.
public enum ProceduralTask: String, CaseIterable, Sendable {
    /// Eight shapes on smooth two-colour gradient backgrounds (the pretraining task).
    case source
    /// Six other shapes on striped backgrounds, with more noise (the adaptation task).
    case target

    public var shapes: [ProceduralShape] {
        switch self {
        case .source: return [.circle, .square, .triangle, .cross, .ring, .hexagon, .star, .halfDisc]
        case .target: return [.pentagon, .crescent, .frame, .arrow, .ellipse, .lShape]
        }
    }
}

/// `count` images of a procedural task, each drawn from its own seed (sample `i` of a given
/// seed is always the same image). Labels cycle through the classes, so every prefix is balanced.
public struct ProceduralShapesDataset: ImageDataset {
    /// Changes whenever the drawing changes (caches of models trained on these images key on it).
    public static let version = 2
    public let task: ProceduralTask
    public let count: Int
    public let size: Int
    public let seed: UInt64

    public init(task: ProceduralTask, count: Int, size: Int = 32, seed: UInt64) {
        precondition(count >= 0 && size >= 8, "invalid procedural dataset")
        self.task = task; self.count = count; self.size = size; self.seed = seed
    }

    public var classNames: [String] { task.shapes.map(\.rawValue) }

    public func identity(at index: Int) -> String { "procedural:\(task.rawValue)/seed\(seed)/\(index)" }

    public func label(at index: Int) -> Int { index % task.shapes.count }

    public func sample(at index: Int) throws -> (image: RGBImage, label: Int) {
        let label = label(at: index)
        var rng = RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &+ (task == .source ? 0 : 0x5151))
        return (render(task.shapes[label], using: &rng), label)
    }

    private func render(_ shape: ProceduralShape, using rng: inout RandomGenerator) -> RGBImage {
        func color() -> SIMD3<Float> { SIMD3(rng.nextUniform(), rng.nextUniform(), rng.nextUniform()) }
        var foreground = color()
        let backgroundA = color()
        // The target's stripes are a softer second colour, so the shape stays the strongest edge.
        let backgroundB = task == .source ? color() : backgroundA * 0.55 + color() * 0.45
        // Keep the shape visible: push it away from the mean background colour.
        let mean = (backgroundA + backgroundB) / 2
        if abs((foreground - mean).sum()) < 0.6 {
            foreground = SIMD3(repeating: mean.sum() / 3 > 0.5 ? 0.1 : 0.9) * 0.7 + foreground * 0.3
        }
        let radius = 0.24 + 0.16 * rng.nextUniform()
        let cx = radius + (1 - 2 * radius) * rng.nextUniform(), cy = radius + (1 - 2 * radius) * rng.nextUniform()
        let theta = 2 * Float.pi * rng.nextUniform()
        let (cosT, sinT) = (cosf(theta), sinf(theta))
        let gradientAngle = 2 * Float.pi * rng.nextUniform()
        let stripeFrequency = 3 + 5 * rng.nextUniform(), stripeAngle = Float.pi * rng.nextUniform()
        let noise: Float = task == .source ? 0.04 : 0.08
        let n = Float(size)
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let px = (Float(x) + 0.5) / n, py = (Float(y) + 0.5) / n
                let background: SIMD3<Float>
                switch task {
                case .source:
                    let t = 0.5 + 0.5 * ((px - 0.5) * cosf(gradientAngle) + (py - 0.5) * sinf(gradientAngle))
                    background = backgroundA * (1 - t) + backgroundB * t
                case .target:
                    let s = (px * cosf(stripeAngle) + py * sinf(stripeAngle)) * stripeFrequency
                    background = s - s.rounded(.down) < 0.5 ? backgroundA : backgroundB
                }
                // 2×2 supersampling for anti-aliased edges.
                var covered: Float = 0
                for (ox, oy) in [(-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)] as [(Float, Float)] {
                    let dx = px + ox / n - cx, dy = py + oy / n - cy
                    let u = (dx * cosT + dy * sinT) / radius, v = (-dx * sinT + dy * cosT) / radius
                    if shape.contains(u, v) { covered += 0.25 }
                }
                var value = background * (1 - covered) + foreground * covered
                value += SIMD3(rng.nextNormal(), rng.nextNormal(), rng.nextNormal()) * noise
                let offset = (y * size + x) * 3
                for c in 0..<3 { pixels[offset + c] = UInt8(max(0, min(255, (value[c] * 255).rounded()))) }
            }
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }
}
