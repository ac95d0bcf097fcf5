// A small HTTP/1.1 client on SwiftNIO, for `ssf bench serve`'s load generator and the server's
// tests: plain HTTP (no TLS), one request at a time per connection, keep-alive between them.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An answer: the status code, the headers and the whole body.
public struct HTTP1Reply: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: Data
}

public enum HTTP1ClientError: Error, CustomStringConvertible {
    case closed(String)
    case timedOut(String, seconds: Double)
    case tooLarge(String, limit: Int)

    public var description: String {
        switch self {
        case .closed(let what): return "\(what): the server closed the connection before the answer was complete"
        case .timedOut(let what, let seconds): return "\(what): no complete answer within \(seconds) s"
        case .tooLarge(let what, let limit): return "\(what): the answer's body is larger than \(limit) bytes"
        }
    }
}

/// One open connection, for the length of `HTTP1Connection.with`. Requests go out one after the
/// other and the connection stays open between them; once the server closes it (`Connection:
/// close`, or a timeout here), later requests on it throw `closed`.
public final class HTTP1Connection {
    public let host: String
    public let port: Int
    private let channel: Channel
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private var open = true

    private init(host: String, port: Int, channel: Channel, inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>,
                 outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) {
        self.host = host
        self.port = port
        self.channel = channel
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Connects to `host:port`, runs `body` with the connection and closes it, whatever `body` does.
    public static func with<R>(host: String = "127.0.0.1", port: Int, _ body: (HTTP1Connection) async throws -> R) async throws -> R {
        let connected = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await connected.executeThenClose { inbound, outbound in
            try await body(HTTP1Connection(host: host, port: port, channel: connected.channel, inbound: inbound, outbound: outbound))
        }
    }

    /// One request on a connection of its own.
    public static func request(host: String = "127.0.0.1", port: Int, _ method: HTTPMethod, _ path: String, body: Data? = nil,
                               headers: [(String, String)] = [], timeout seconds: Double = 60, maxBody: Int = 64 << 20) async throws -> HTTP1Reply {
        try await with(host: host, port: port) {
            try await $0.send(method, path, body: body, headers: headers, timeout: seconds, maxBody: maxBody)
        }
    }

    /// Sends one request and reads its whole answer. Past `timeout` seconds the connection is
    /// closed and the call throws `timedOut`.
    public func send(_ method: HTTPMethod, _ path: String, body: Data? = nil, headers: [(String, String)] = [],
                     timeout seconds: Double = 60, maxBody: Int = 64 << 20) async throws -> HTTP1Reply {
        let what = "\(method) http://\(host):\(port)\(path)"
        guard open else { throw HTTP1ClientError.closed(what) }
        let channel = self.channel
        let fired = TimerFlag()
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            fired.set()
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        func failure(_ error: Error) -> Error {
            open = false
            channel.close(promise: nil)
            return fired.isSet ? HTTP1ClientError.timedOut(what, seconds: seconds) : error
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        head.headers.replaceOrAdd(name: "Content-Length", value: "\(body?.count ?? 0)")
        var reply: HTTP1Reply?
        var collected = ByteBuffer()
        var complete = false
        do {
            try await outbound.write(.head(head))
            if let body, !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            reading: while let part = try await inbound.next() {
                switch part {
                case .head(let h):
                    // 1xx answers precede the real one.
                    if h.status.code >= 200 { reply = HTTP1Reply(status: Int(h.status.code), headers: h.headers, body: Data()) }
                case .body(var chunk):
                    guard collected.readableBytes + chunk.readableBytes <= maxBody else { throw HTTP1ClientError.tooLarge(what, limit: maxBody) }
                    collected.writeBuffer(&chunk)
                case .end:
                    if reply != nil { complete = true; break reading }
                }
            }
        } catch {
            throw failure(error)
        }
        guard complete, var answer = reply, !fired.isSet else { throw failure(HTTP1ClientError.closed(what)) }
        answer.body = Data(collected.readableBytesView)
        if answer.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) { open = false }
        return answer
    }
}

/// Set once by the timeout timer on its event loop, read by the waiting request.
private final class TimerFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
