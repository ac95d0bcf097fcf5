// `--class-subset`: the file's parsing and its errors, and evaluation over a subset of a head's
// columns (argmax, top-5 and loss over the subset only).
import Foundation
import SSFEngine
import SSFTraining
import XCTest

final class ClassSubsetTests: XCTestCase {
    func testParsesLinesCommasSpacesAndComments() throws {
        let text = "# ImageNet-R style\n1, 4 7\n\n9\t2  # the last\n"
        XCTAssertEqual(try ClassSubset(parsing: text, source: "s.txt", datasetClasses: 5, headClasses: 10).columns, [1, 4, 7, 9, 2])
    }

    func testErrorsNameTheFileAndTheProblem() {
        func message(_ text: String, classes: Int = 3, head: Int = 10) -> String {
            do { _ = try ClassSubset(parsing: text, source: "subset.txt", datasetClasses: classes, headClasses: head); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(message("1 2"), "subset.txt: 2 class indices for a dataset of 3 classes (one index per class, in the dataset's class order)")
        XCTAssertEqual(message("1 2 10"), "subset.txt: class index 10 is outside the model's head of 10 classes (0–9)")
        XCTAssertEqual(message("1 -2 3"), "subset.txt: class index -2 is outside the model's head of 10 classes (0–9)")
        XCTAssertEqual(message("4 5 4"), "subset.txt: class index 4 is listed twice (for dataset classes 0 and 2)")
        XCTAssertEqual(message("1\n2 x3\n3"), "subset.txt: line 2: 'x3' is not a class index (an integer)")
        let missing = URL(fileURLWithPath: "/nonexistent/subset.txt")
        XCTAssertThrowsError(try ClassSubset(contentsOf: missing, datasetClasses: 3, headClasses: 10)) { error in
            XCTAssert("\(error)".hasPrefix("/nonexistent/subset.txt: cannot read the class subset"), "\(error)")
        }
    }

    func testEvaluationRestrictsTheLogitsToTheSubset() {
        // A 6-class head; the dataset's 3 classes are columns 4, 1, 5.
        let logits = Tensor(shape: [3, 6], [
            9, 1, 0, 0, 2, 0,   // argmax column 0 is outside the subset; within it column 4 → class 0
            0, 3, 0, 8, 0, 1,   // column 1 → class 1 (column 3 is outside)
            0, 2, 0, 0, 1, 3,   // column 5 → class 2 (the label says 1)
        ])
        var subset = EvaluationResult(classes: 3)
        subset.add(logits: logits, labels: [0, 1, 1], columns: [4, 1, 5])
        XCTAssertEqual(subset.images, 3)
        XCTAssertEqual(subset.top1Correct, 2)
        XCTAssertEqual(subset.classImages, [1, 2, 0])
        XCTAssertEqual(subset.classCorrect, [1, 1, 0])
        // k = min(5, 3): every label is in the top 3 of 3.
        XCTAssertEqual(subset.top5Correct, 3)
        // The loss is the cross-entropy of the gathered logits [2, 1, 0], [0, 3, 1], [1, 2, 3].
        let expected = [(row: [2.0, 1, 0], label: 0), ([0, 3, 1], 1), ([1, 2, 3], 1)].map { row, label in
            log(row.map { exp($0) }.reduce(0, +)) - row[label]
        }.reduce(0, +)
        XCTAssertEqual(subset.lossSum, expected, accuracy: 1e-6)

        // The same logits over the whole head: columns outside the subset win, no image is right.
        var full = EvaluationResult(classes: 6)
        full.add(logits: logits, labels: [4, 1, 1])
        XCTAssertEqual(full.top1Correct, 0)
        // Gathering by hand and adding without a map gives the same counts.
        var gathered = EvaluationResult(classes: 3)
        gathered.add(logits: Tensor(shape: [3, 3], [2, 1, 0, 0, 3, 1, 1, 2, 3]), labels: [0, 1, 1])
        XCTAssertEqual(gathered, subset)
    }
}
