// Headless Chromium for the page tests: found on PATH (a skip without one, a failure with
// SSF_REQUIRE_BROWSER=1), run with its own profile and a deadline, and the pages' self-check read
// back from the dumped DOM.
import Foundation
import SSFReport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A Chromium or Chrome on PATH, run headless with scratch files under `scratch`.
struct HeadlessBrowser {
    let executable: URL
    let scratch: URL

    /// Skips without a browser unless SSF_REQUIRE_BROWSER=1, which makes its absence a failure.
    init(scratch: URL) throws {
        self.scratch = scratch
        let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for name in names {
            for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
                executable = URL(fileURLWithPath: directory + "/" + name)
                return
            }
        }
        if ProcessInfo.processInfo.environment["SSF_REQUIRE_BROWSER"] == "1" {
            // An error, not a skip: the test fails.
            throw ReportError("SSF_REQUIRE_BROWSER=1 but none of \(names.joined(separator: ", ")) is on PATH")
        }
        throw XCTSkip("no Chromium on PATH; install it with: apt-get install -y --no-install-recommends chromium")
    }

    /// Runs the browser headless with its own profile; kills it if it has not finished by the deadline.
    func run(_ arguments: [String], timeout: TimeInterval = 90) throws -> (stdout: String, stderr: String) {
        let profile = scratch.appendingPathComponent("profile-\(UUID().uuidString)")
        let stdoutURL = scratch.appendingPathComponent("browser-\(UUID().uuidString).out")
        let stderrURL = scratch.appendingPathComponent("browser-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let stdout = try FileHandle(forWritingTo: stdoutURL), stderr = try FileHandle(forWritingTo: stderrURL)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=\(profile.path)",
                             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--hide-scrollbars"] + arguments
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            let grace = Date().addingTimeInterval(3)
            while process.isRunning, Date() < grace { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        try stdout.close(); try stderr.close()
        let out = (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
        if timedOut {
            throw ReportError("\(executable.path) did not finish within \(Int(timeout)) s; its stderr ends:\n\(err.suffix(2000))")
        }
        return (out, err)
    }

    /// Renders `page` and checks its self-check: no script errors or blocked requests, exactly the charts
    /// named, each with the expected number of series declared, drawn and rendered with an extent.
    func assertSelfCheck(of page: URL, charts expected: [String: Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let (dom, stderr) = try run(["--dump-dom", page.absoluteString])
        guard let open = dom.range(of: "<pre id=\"report-check\" hidden=\"\">"),
              let close = dom.range(of: "</pre>", range: open.upperBound..<dom.endIndex) else {
            return XCTFail("no #report-check in the dumped DOM (\(dom.count) characters); browser stderr ends:\n\(stderr.suffix(2000))", file: file, line: line)
        }
        let text = dom[open.upperBound..<close.lowerBound]
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        XCTAssertFalse(text.isEmpty, "the self-check script did not run", file: file, line: line)
        let check = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)", file: file, line: line)
        XCTAssertEqual((check["errors"] as? [Any])?.count, 0, "errors in the page: \(check["errors"] ?? "none reported")", file: file, line: line)
        let charts = try XCTUnwrap(check["charts"] as? [String: [String: Int]], "\(text)", file: file, line: line)
        XCTAssertEqual(Set(charts.keys), Set(expected.keys), file: file, line: line)
        for (name, count) in expected {
            XCTAssertEqual(charts[name]?["declared"], count, name, file: file, line: line)
            XCTAssertEqual(charts[name]?["series"], count, name, file: file, line: line)
            XCTAssertEqual(charts[name]?["rendered"], count, "\(name): series with an empty rendered box", file: file, line: line)
        }
    }
}
