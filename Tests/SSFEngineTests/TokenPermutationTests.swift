// Swin's shifted-window partition as one token gather: it must put every value where a roll
// followed by windowPartition puts it, undo itself through its inverse, and carry gradients back.
import XCTest
import SSFEngine

final class TokenPermutationTests: XCTestCase {
    func testShiftedWindowsEqualRollThenPartitionAndTheInverseUndoesIt() {
        var rng = RandomGenerator(seed: 21)
        // (batch, side, window, shift, channels): shifted and unshifted, several windows, one window.
        for (b, side, ws, shift, c) in [(2, 8, 4, 2, 5), (3, 12, 4, 0, 3), (1, 14, 7, 3, 17), (2, 6, 3, 1, 8), (2, 4, 4, 0, 6)] {
            let x = Tensor.randomNormal([b, side, side, c], using: &rng)
            let order = TokenPermutation.shiftedWindows(height: side, width: side, windowSize: ws, shift: shift)
            let rolled = shift > 0 ? roll(x, shifts: [-shift, -shift], axes: [1, 2]) : x
            let expected = windowPartition(rolled, windowSize: ws).reshaped([-1, ws * ws, c])
            let windows = permuteTokens(x, order, channels: c, shape: [b * side * side / (ws * ws), ws * ws, c])
            XCTAssertEqual(windows.shape, expected.shape)
            XCTAssertEqual(windows.scalars, expected.scalars, "b \(b) side \(side) window \(ws) shift \(shift)")
            XCTAssertEqual(order.isIdentity, shift == 0 && ws == side)
            let back = permuteTokens(windows, order.inverse, channels: c, shape: x.shape)
            XCTAssertEqual(back.scalars, x.scalars)
        }
    }

    func testGradientIsTheInverseGather() {
        var rng = RandomGenerator(seed: 22)
        let (b, side, ws, shift, c) = (2, 6, 3, 1, 4)
        let x = Tensor.randomNormal([b, side, side, c], using: &rng)
        let order = TokenPermutation.shiftedWindows(height: side, width: side, windowSize: ws, shift: shift)
        let seed = Tensor.randomNormal([b * 4, ws * ws, c], using: &rng)
        // The same gradient through the gather and through roll + partition.
        func gradient(_ f: (Tensor) -> Tensor) -> Tensor {
            let tape = Tape()
            let xv = tape.watch(x)
            let y = tape.recording { f(xv) }
            return tape.backward(from: y, seed: seed)[xv]!
        }
        let gathered = gradient { permuteTokens($0, order, channels: c, shape: [b * 4, ws * ws, c]) }
        let reference = gradient { windowPartition(roll($0, shifts: [-shift, -shift], axes: [1, 2]), windowSize: ws).reshaped([-1, ws * ws, c]) }
        XCTAssertEqual(gathered.shape, x.shape)
        XCTAssertEqual(gathered.scalars, reference.scalars)
    }

    func testPermutationsAreChecked() {
        let p = TokenPermutation(order: [2, 0, 1])
        XCTAssertEqual(p.inverse.order, [1, 2, 0])
        XCTAssertEqual(p.inverse.inverse, p)
        XCTAssertFalse(p.isIdentity)
        XCTAssertTrue(TokenPermutation(order: [0, 1, 2]).isIdentity)
    }
}
