// `ssf serve`: one frozen base and a directory of task deltas over HTTP (Open Inference Protocol v2).
import ArgumentParser
import Foundation
import SSFNN
import SSFServing

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve many SSF tasks on one frozen base over HTTP, batching requests across tasks.",
        discussion: """
        Every delta file in --tasks is a task named by its file stem; the directory is watched, so a \
        delta added, replaced or removed there is served or dropped within two --watch-interval-s. \
        --merged DELTA serves that one task from merged weights instead. Routes: GET /v2/health/live, \
        /v2/health/ready, /v2, /v2/models/{task}, /v2/models/{task}/ready; POST /v2/models/{task}/infer \
        (INPUT as FP32 [N,3,H,W] or IMAGE as BYTES; JSON, base64 images, or the binary-data extension \
        with Inference-Header-Content-Length; parameters.top_k adds labels); POST /v1/tasks/{task}/classify with a \
        raw JPEG/PNG body; POST /v2/repository/models/{task}/load|unload; GET /metrics (Prometheus). \
        Each request is logged as one JSON line on standard error (--quiet: none). SIGTERM or SIGINT \
        stops accepting, answers the requests in flight and exits 0.
        """)
    @Option(help: "Model name from `ssf models`.") var model: String
    @Option(help: "The base checkpoint every task's delta was made on.") var base: String
    @Option(help: "Directory of task delta files (<task>.safetensors).") var tasks: String?
    @Option(help: "Serve only this delta's task, from weights it is merged into (no per-sample work).") var merged: String?
    @Option(name: .customLong("watch-interval-s"), help: "Seconds between scans of --tasks (0: no watching).") var watchInterval = 2.0
    @Flag(help: "No per-request log lines.") var quiet = false
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed).") var port = 8000
    @Option(name: .customLong("max-batch"), help: "Images per backbone pass at most.") var maxBatch = 16
    @Option(name: .customLong("max-delay-ms"), help: "How long a batch waits to fill.") var maxDelayMs = 5.0
    @Option(name: .customLong("max-queue"), help: "Images waiting at most; beyond, 503.") var maxQueue = 256
    @Option(name: .customLong("max-body-mb"), help: "Request body limit in MiB; beyond, 413.") var maxBodyMB = 16
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        var options = ServeOptions()
        options.host = host; options.port = port; options.maxBatch = maxBatch; options.maxDelayMs = maxDelayMs
        options.maxQueue = maxQueue; options.maxBodyBytes = maxBodyMB << 20
        options.watchInterval = watchInterval; options.logRequests = !quiet
        let settings = options
        let state = try Checkpoint.read(URL(fileURLWithPath: base))
        let log: @Sendable (String) -> Void = { printError($0) }
        let service: InferenceService
        switch (tasks, merged) {
        case (let dir?, nil): service = try InferenceService(model: model, base: state, tasks: URL(fileURLWithPath: dir), options: settings, log: log)
        case (nil, let delta?): service = try InferenceService(model: model, base: state, merged: URL(fileURLWithPath: delta), options: settings, log: log)
        default: throw ValidationError("give either --tasks DIR (many tasks on the shared base) or --merged DELTA (one task, merged)")
        }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Task.detached {
            do {
                try await serve(service, options: settings) { port in
                    let mode = service.mergedTask == nil ? "tasks" : "merged"
                    print("serving \(model) on http://\(settings.host):\(port) (\(mode): \(service.taskNames.joined(separator: ", ")))")
                    fflush(stdout)
                }
            } catch { failure = error }
            done.signal()
        }
        done.wait()
        if let failure { throw failure }
    }
}
