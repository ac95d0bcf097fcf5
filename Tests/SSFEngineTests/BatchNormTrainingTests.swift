// BatchNorm2d in training mode against PyTorch (tools/gen_trajectory_fixtures.py writes
// ops_batchnorm_train.safetensors from torch.nn.BatchNorm2d in float64): the output, the
// gradients of x, weight and bias (through the batch mean and variance), and the running
// statistics after the step (momentum 0.1, unbiased variance).
import Foundation
import XCTest
@testable import SSFEngine
import SSFNN
import SSFTestSupport

final class BatchNormTrainingTests: XCTestCase {
    private struct Case: Decodable { let shape: [Int]; let eps: Float; let momentum: Float }
    private struct Meta: Decodable { let cases: [String: Case] }

    func testTrainingModeMatchesPyTorch() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "ops_batchnorm_train", withExtension: "safetensors", subdirectory: "Fixtures"))
        let file = try SafeTensors.load(url)
        let meta = try JSONDecoder().decode(Meta.self, from: Data(try XCTUnwrap(file.metadata["fixture"]).utf8))
        XCTAssertEqual(meta.cases.count, 4)
        for (name, c) in meta.cases.sorted(by: { $0.key < $1.key }) {
            func t(_ key: String) throws -> Tensor { try XCTUnwrap(file.tensors["\(name).\(key)"], "\(name).\(key)") }
            let channels = c.shape[1]
            let bn = BatchNorm2d(channels, eps: c.eps, momentum: c.momentum)
            bn.weight.value = try t("weight"); bn.bias.value = try t("bias")
            bn.runningMean.value = try t("running_mean"); bn.runningVar.value = try t("running_var")
            bn.training = true
            XCTAssertTrue(bn.usesBatchStatistics)
            let x = try t("x")
            let g = try t("g")
            let tape = Tape()
            let xv = tape.watch(x)
            let (y, loss) = tape.recording { () -> (Tensor, Tensor) in
                let y = bn(xv)
                return (y, (y * g).sum())
            }
            let grads = tape.backward(from: loss)
            XCTAssertLessThan(elementwiseRelativeError(y, try t("y"), floor: 1e-3), 1e-4, "\(name) y")
            XCTAssertLessThan(elementwiseRelativeError(try XCTUnwrap(grads[xv]), try t("grad_x"), floor: 1e-3), 1e-4, "\(name) grad_x")
            XCTAssertLessThan(elementwiseRelativeError(try XCTUnwrap(grads[key: bn.weight]), try t("grad_weight"), floor: 1e-3), 1e-4, "\(name) grad_weight")
            XCTAssertLessThan(elementwiseRelativeError(try XCTUnwrap(grads[key: bn.bias]), try t("grad_bias"), floor: 1e-3), 1e-4, "\(name) grad_bias")
            XCTAssertLessThan(elementwiseRelativeError(bn.runningMean.value, try t("running_mean_after"), floor: 1e-3), 1e-5, "\(name) running_mean")
            XCTAssertLessThan(elementwiseRelativeError(bn.runningVar.value, try t("running_var_after"), floor: 1e-3), 1e-5, "\(name) running_var")
            XCTAssertEqual(bn.numBatchesTracked.value.item, 1)

            // Frozen (or evaluating), the same layer normalises with the running statistics and leaves them alone.
            bn.mode = .frozen
            let before = bn.runningMean.value.scalars
            let frozen = bn(x)
            XCTAssertEqual(bn.runningMean.value.scalars, before)
            let expected = batchNormInference(x, mean: bn.runningMean.value, variance: bn.runningVar.value, weight: bn.weight.value,
                                              bias: bn.bias.value, eps: c.eps)
            XCTAssertEqual(frozen.scalars, expected.scalars)
        }
    }
}
