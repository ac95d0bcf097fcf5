// Permutations that swap two groups of trailing axes (NCHW ↔ NHWC, 2-D transposes) run as tiled
// transposes; every element must land where the general strided copy puts it.
import XCTest
@testable import SSFEngine

final class PermuteTests: XCTestCase {
    func testGroupSwapsMatchTheStridedCopyExactly() {
        var rng = RandomGenerator(seed: 11)
        let cases: [([Int], [Int])] = [
            ([2, 19, 5, 7], [0, 2, 3, 1]),   // NCHW → NHWC with ragged edges
            ([2, 5, 7, 19], [0, 3, 1, 2]),   // and back
            ([3, 64, 8, 8], [0, 2, 3, 1]),   // whole tiles only
            ([1, 130, 9, 9], [0, 2, 3, 1]),  // one image: split into bands of source rows
            ([1, 9, 9, 130], [0, 3, 1, 2]),
            ([17, 23], [1, 0]),              // a plain transpose
            ([4, 3, 16, 9], [0, 1, 3, 2]),   // the last two axes of a 4-D tensor
            ([2, 3, 4, 5, 6], [0, 3, 4, 1, 2]),
        ]
        for (shape, perm) in cases {
            let x = Tensor.randomNormal(shape, using: &rng)
            XCTAssertNotNil(GroupSwap(perm, shape: shape), "\(shape) \(perm) should take the tiled path")
            let tiled = permuteRaw(x, perm), strided = permuteStrided(x, perm)
            XCTAssertEqual(tiled.shape, perm.map { shape[$0] })
            XCTAssertEqual(tiled.scalars, strided.scalars, "\(shape) permuted by \(perm)")
        }
    }

    func testOtherPermutationsKeepTheStridedPath() {
        XCTAssertNil(GroupSwap([0, 1, 3, 2, 4, 5], shape: [2, 2, 8, 8, 8, 8]), "window partition")
        XCTAssertNil(GroupSwap([2, 0, 1, 3], shape: [8, 8, 8, 8]), "not two trailing groups")
        XCTAssertNil(GroupSwap([0, 2, 1], shape: [2, 4, 64]), "fewer than 8 rows")
        XCTAssertNil(GroupSwap([0, 1, 2], shape: [2, 4, 64]), "identity")
        var rng = RandomGenerator(seed: 12)
        let x = Tensor.randomNormal([2, 3, 4, 5], using: &rng)
        XCTAssertEqual(permuteRaw(x, [2, 0, 3, 1]).scalars, permuteStrided(x, [2, 0, 3, 1]).scalars)
    }
}
