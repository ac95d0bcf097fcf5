// Activations overwrite an untracked input that nothing else holds, and leave any other input alone.
import XCTest
@testable import SSFEngine

final class ActivationInPlaceTests: XCTestCase {
    func testAnUnsharedUntrackedInputIsOverwrittenInPlace() {
        var rng = RandomGenerator(seed: 21)
        let reference = Tensor.randomNormal([3, 37], using: &rng)
        let expected = gelu(reference)  // `reference` is still held below: computed out of place
        XCTAssertEqual(reference.scalars.count, 111)
        var fresh = Tensor(shape: reference.shape, reference.scalars)
        let address = fresh.mutablePointer()
        let y = gelu(consume fresh)
        XCTAssertEqual(y.pointer, UnsafePointer(address), "the buffer was reused")
        XCTAssertEqual(y.scalars, expected.scalars)
    }

    func testASharedInputKeepsItsValues() {
        var rng = RandomGenerator(seed: 22)
        let x = Tensor.randomNormal([2, 50], using: &rng)
        let before = x.scalars
        let y = relu(x)
        XCTAssertEqual(x.scalars, before, "the caller's tensor is unchanged")
        XCTAssertNotEqual(y.pointer, x.pointer)
        XCTAssertEqual(y.scalars, before.map { max($0, 0) })
    }

    func testATrackedInputKeepsItsGradient() {
        var rng = RandomGenerator(seed: 23)
        let x = Tensor.randomNormal([4, 9], using: &rng)
        let tape = Tape()
        let xw = tape.watch(x)
        let loss = tape.recording { silu(xw).sum() }
        let g = tape.backward(from: loss)[xw]
        let want = x.scalars.map { v -> Float in let s = 1 / (1 + exp(-v)); return s * (1 + v * (1 - s)) }
        for (a, b) in zip(g?.scalars ?? [], want) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertEqual(g?.count, 36)
    }
}

final class ArithmeticInPlaceTests: XCTestCase {
    func testAnUnsharedOperandHoldsTheSum() {
        var rng = RandomGenerator(seed: 31)
        let x = Tensor.randomNormal([3, 5, 16], using: &rng)
        var branch = Tensor.randomNormal([3, 5, 16], using: &rng)
        let want = zip(x.scalars, branch.scalars).map { $0 + $1 }
        let address = branch.mutablePointer()
        let y = x + (consume branch)
        XCTAssertEqual(y.pointer, UnsafePointer(address), "the right operand's buffer was reused")
        XCTAssertEqual(y.scalars, want)
        XCTAssertEqual(x.scalars.count, 240, "the left operand is still there")
    }

    func testABroadcastProductReusesOnlyTheFullSizedOperand() {
        var rng = RandomGenerator(seed: 32)
        let gamma = Tensor.randomNormal([16], using: &rng)
        var x = Tensor.randomNormal([2, 3, 16], using: &rng)
        let want = x.scalars.enumerated().map { $0.element * gamma.scalars[$0.offset % 16] }
        let address = x.mutablePointer()
        let y = (consume x) * gamma
        XCTAssertEqual(y.pointer, UnsafePointer(address))
        XCTAssertEqual(y.scalars, want)
        XCTAssertEqual(gamma.count, 16)
        // The small operand never holds a larger result.
        var small = Tensor.randomNormal([16], using: &rng)
        let big = Tensor.randomNormal([4, 16], using: &rng)
        let smallAddress = small.mutablePointer()
        let z = (consume small) * big
        XCTAssertNotEqual(z.pointer, UnsafePointer(smallAddress))
        XCTAssertEqual(z.shape, [4, 16])
    }

    func testSharedOrTrackedOperandsAreLeftAlone() {
        var rng = RandomGenerator(seed: 33)
        let a = Tensor.randomNormal([4, 8], using: &rng), b = Tensor.randomNormal([4, 8], using: &rng)
        let (sa, sb) = (a.scalars, b.scalars)
        let s = a + b
        XCTAssertEqual(a.scalars, sa)
        XCTAssertEqual(b.scalars, sb)
        XCTAssertEqual(s.scalars, zip(sa, sb).map { $0 + $1 })
        let tape = Tape()
        let aw = tape.watch(a)
        let loss = tape.recording { (aw * Tensor(shape: [4, 8], sb)).sum() }
        let g = tape.backward(from: loss)[aw]
        XCTAssertEqual(g?.scalars, sb, "d(a·b)/da = b")
    }
}
