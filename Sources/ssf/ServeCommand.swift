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
        Every delta file in --tasks is a task named by its file stem. Routes: GET /v2/health/live, \
        /v2/health/ready, /v2, /v2/models/{task}, /v2/models/{task}/ready; POST /v2/models/{task}/infer \
        (JSON: INPUT as FP32 [N,3,H,W] or IMAGE as BYTES, base64); POST /v1/tasks/{task}/classify with a \
        raw JPEG/PNG body; POST /v2/repository/models/{task}/load|unload; GET /metrics (Prometheus). \
        SIGTERM or SIGINT stops accepting, answers the requests in flight and exits 0.
        """)
    @Option(help: "Model name from `ssf models`.") var model: String
    @Option(help: "The base checkpoint every task's delta was made on.") var base: String
    @Option(help: "Directory of task delta files (<task>.safetensors).") var tasks: String
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
        let settings = options
        let state = try Checkpoint.read(URL(fileURLWithPath: base))
        let service = try InferenceService(model: model, base: state, tasks: URL(fileURLWithPath: tasks), options: settings) { printError($0) }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Task.detached {
            do {
                try await serve(service, options: settings) { port in
                    print("serving \(model) on http://\(settings.host):\(port) (tasks: \(service.taskNames.joined(separator: ", ")))")
                    fflush(stdout)
                }
            } catch { failure = error }
            done.signal()
        }
        done.wait()
        if let failure { throw failure }
    }
}
