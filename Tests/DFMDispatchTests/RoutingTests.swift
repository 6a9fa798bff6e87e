import Synchronization
import Testing

@testable import DFMDispatch

/// Calls a Swift callback directly, as a runner would.
private func invoke(_ callback: Callback?, _ token: Token) async throws {
    guard let callback else { return }
    switch callback.body {
    case .sync(let function):
        try function(token.site, token.node, token.frame, token.place, token.data)
    case .async(let function):
        try await function(token.site, token.node, token.frame, token.place, token.data)
    default:
        Issue.record("not a Swift callback")
    }
}

/// Upstream: TestCallCallbacks (sync), through a direct runner, which calls
/// at once on the dispatching thread.
@Suite("Routing, sync callbacks")
struct RoutingSyncTests {
    @Test("the default callback receives the five values of the token")
    func defaultReceivesFiveValues() throws {
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(defaultCallback: recorder.sync)
        try runner.dispatch(
            Token(
                site: "site1", node: .name("node1"), frame: Frame([0]), place: "result",
                data: .json("{\"value\": 42}")))
        #expect(
            recorder.all == [
                Call("site1", .name("node1"), Frame([0]), "result", .json("{\"value\": 42}"))
            ])
    }

    @Test("a matching place callback wins and the default is not called")
    func placeBeatsDefault() throws {
        let fallback = Recorder()
        let result = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: fallback.sync, placeCallbacks: ["result": result.sync])
        try runner.dispatch(token("result"))
        #expect(result.count == 1)
        #expect(fallback.count == 0)

        try runner.dispatch(token("status"))
        #expect(result.count == 1)
        #expect(fallback.places == ["status"])
    }

    @Test("a batch of two tokens gives two calls, in order")
    func batchOfTwo() throws {
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(defaultCallback: recorder.sync)
        try runner.dispatch([token("result"), token("status")])
        #expect(recorder.places == ["result", "status"])
    }

    @Test("an empty batch gives no calls")
    func emptyBatch() throws {
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(defaultCallback: recorder.sync)
        try runner.dispatch([])
        #expect(recorder.count == 0)
        #expect(runner.stats.dispatched == 0)
    }

    @Test("with no callbacks, dispatch does not throw and the token is dropped")
    func noCallbacks() throws {
        let runner = try DirectDispatcher().createRunner()
        try runner.dispatch([token("result"), token("status")])
        #expect(runner.stats.dropped == 2)
        #expect(runner.stats.delivered == 0)
    }

    @Test("a token for a place without a callback and no default is dropped and counted")
    func unroutedTokenDropped() throws {
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(placeCallbacks: ["result": recorder.sync])
        try runner.dispatch([token("other"), token("result")])
        #expect(recorder.places == ["result"])
        let stats = runner.stats
        #expect(stats.dropped == 1)
        #expect(stats.delivered == 1)
        checkBalanced(stats)
    }

    @Test("the special places of the pipeline are ordinary places")
    func specialPlaces() throws {
        let status = Recorder()
        let fallback = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: fallback.sync, placeCallbacks: ["_dfm_status_": status.sync])
        try runner.dispatch([
            token("_dfm_status_", .stop, node: .none, frame: .stop),
            token("_dfm_discovery_", .json("[]"), node: .none),
        ])
        #expect(status.all == [Call("site1", .none, .stop, "_dfm_status_", .stop)])
        #expect(fallback.places == ["_dfm_discovery_"])
    }

    @Test("every kind of value, node and frame reaches the callback unchanged")
    func valuesRoundTrip() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        let values: [Value] = [
            .none, .bool(true), .bool(false), .int(-7), .int(.max), .double(2.5),
            .string("grüße ✓"), .string(""), .bytes([0, 1, 255]), .bytes([]),
            .json("{\"a\":[1,2]}"),
            .stop, .error("it failed: ✗"),
        ]
        let nodes: [NodeID] = [.none, .int(3), .name("wkid5"), .name("")]
        let frames: [Frame] = [Frame([0]), Frame([0, 2, 9]), .stop, Frame([])]
        var tokens: [Token] = []
        for (index, value) in values.enumerated() {
            tokens.append(
                Token(
                    site: "site\(index)", node: nodes[index % nodes.count],
                    frame: frames[index % frames.count], place: "p\(index)", data: value))
        }
        try runner.dispatch(tokens)
        try runner.processPending()
        #expect(
            recorder.all
                == tokens.map { Call($0.site, $0.node, $0.frame, $0.place, $0.data) })
    }

    @Test("byte and text payloads arrive with their exact content")
    func payloadContent() throws {
        let received = Protected<[Value]>([])
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, data in received.withLock { $0.append(data) } })
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let text = String(repeating: "αβγ", count: 500)
        try runner.dispatch([token("a", .bytes(bytes)), token("b", .string(text))])
        try runner.processPending()
        let values = received.withLock { $0 }
        #expect(values.count == 2)
        if case .bytes(let got) = values.first {
            #expect(got == bytes)
        } else {
            Issue.record("expected bytes, got \(values)")
        }
        if case .string(let got) = values.last {
            #expect(got == text)
        } else {
            Issue.record("expected a string, got \(values)")
        }
    }

    @Test("the error handler gets the token and callbackFailed; the rest still runs")
    func failureReported() throws {
        let reports = Protected<[(String?, Status, String)]>([])
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: recorder.sync,
            placeCallbacks: ["bad": .sync { _, _, _, _, _ in throw Boom() }],
            errorHandler: { token, error in
                reports.withLock { $0.append((token?.place, error.status, error.message)) }
            })
        let error = #expect(throws: DFMError.self) {
            try runner.dispatch([token("a"), token("bad"), token("b")])
        }
        #expect(error?.status == .callbackFailed)
        #expect(recorder.places == ["a", "b"])
        let got = reports.withLock { $0 }
        #expect(got.count == 1)
        #expect(got.first?.0 == "bad")
        #expect(got.first?.1 == .callbackFailed)
        #expect(got.first?.2.contains("boom") == true)
        let stats = runner.stats
        #expect(stats.failed == 1)
        #expect(stats.delivered == 2)
        checkBalanced(stats)
    }
}

/// Upstream: TestCallCallbacksAsync, through an executor runner on an actor
/// and through a manual runner's async pump.
@Suite("Routing, async callbacks")
struct RoutingAsyncTests {
    @Test("the default async callback receives the five values of the token")
    func defaultReceivesFiveValues() async throws {
        let recorder = Recorder()
        let runner = try ExecutorDispatcher(actor: CallbackHost())
            .createRunner(defaultCallback: recorder.async)
        try runner.dispatch(token())
        #expect(await waitUntil { recorder.count == 1 })
        #expect(
            recorder.all == [
                Call("site1", .name("node1"), Frame([0]), "result", .json("{\"value\": 42}"))
            ])
    }

    @Test("a matching async place callback wins over the default")
    func placeBeatsDefault() async throws {
        let fallback = Recorder()
        let result = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: fallback.async, placeCallbacks: ["result": result.async])
        try runner.dispatch([token("result"), token("status")])
        try await runner.processPending()
        #expect(result.places == ["result"])
        #expect(fallback.places == ["status"])
    }

    @Test("an empty batch schedules nothing")
    func emptyBatch() async throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.async)
        try runner.dispatch([])
        #expect(!runner.hasPending)
        try await runner.processPending()
        #expect(recorder.count == 0)
    }

    @Test("a batch of two tokens delivers both places, in order")
    func batchOfTwo() async throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.async)
        try runner.dispatch([token("result"), token("status")])
        try await runner.processPending()
        #expect(recorder.places == ["result", "status"])
    }

    @Test("a throwing async callback is reported; the others are delivered")
    func asyncFailureReported() async throws {
        let reports = Protected<[Status]>([])
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: recorder.async,
            placeCallbacks: ["bad": .async { _, _, _, _, _ in throw Boom() }],
            errorHandler: { _, error in reports.withLock { $0.append(error.status) } })
        try runner.dispatch([token("a"), token("bad"), token("b")])
        let failure = await status { try await runner.processPending() }
        #expect(failure == .callbackFailed)
        #expect(recorder.places == ["a", "b"])
        #expect(reports.withLock { $0 } == [.callbackFailed])
        #expect(runner.stats.failed == 1)
        checkBalanced(runner.stats)
    }
}

/// Upstream: TestCallbackRunner.
@Suite("CallbackRunner")
struct CallbackRunnerTests {
    @Test("a runner exposes the default and place callbacks it was made with")
    func exposesCallbacks() async throws {
        let fallback = Recorder()
        let result = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: fallback.sync, placeCallbacks: ["result": result.sync])
        #expect(runner.defaultCallback != nil)
        #expect(Array(runner.placeCallbacks.keys) == ["result"])

        try await invoke(runner.defaultCallback, token("x"))
        try await invoke(runner.placeCallbacks["result"], token("y"))
        #expect(fallback.places == ["x"])
        #expect(result.places == ["y"])
    }

    @Test("with no arguments the default is nil and the place map is empty")
    func noArguments() throws {
        for runner in [
            try DirectDispatcher().createRunner(),
            try ManualDispatcher().createRunner(),
            try ExecutorDispatcher(actor: CallbackHost()).createRunner(),
        ] {
            #expect(runner.defaultCallback == nil)
            #expect(runner.placeCallbacks.isEmpty)
        }
    }

    @Test("start and stop are harmless on a fresh runner and idempotent")
    func startStopHarmless() throws {
        let runner = try DirectDispatcher().createRunner()
        try runner.start()
        try runner.start()
        runner.stop(.drain)
        runner.stop(.drain)
        runner.stop(.discard)
        #expect(
            runner.stats
                == RunnerStats(
                    dispatched: 0, delivered: 0, failed: 0, dropped: 0, discarded: 0, rejected: 0,
                    pending: 0, pendingHighWater: 0))
    }

    @Test("dispatch(_:) of a single token is a batch of one")
    func singleTokenOverload() throws {
        let recorder = Recorder()
        let runner: any CallbackRunner = try DirectDispatcher()
            .createRunner(defaultCallback: recorder.sync)
        try runner.dispatch(token("one"))
        #expect(recorder.places == ["one"])
    }
}

/// A runner written outside the library: it keeps its tokens in a list and
/// hands them to its default callback when flushed.
private final class ListRunner: CallbackRunner, @unchecked Sendable {
    let defaultCallback: Callback?
    let placeCallbacks: [String: Callback]
    private let queue = Protected<[Token]>([])
    private let closed = Atomic<Bool>(false)

    init(defaultCallback: Callback?, placeCallbacks: [String: Callback]) {
        self.defaultCallback = defaultCallback
        self.placeCallbacks = placeCallbacks
    }

    func dispatch(_ tokens: [Token]) throws(DFMError) {
        if closed.load(ordering: .acquiring) { throw DFMError(.closed, "stopped") }
        queue.withLock { $0.append(contentsOf: tokens) }
    }

    func start() throws(DFMError) {}
    func stop(_ mode: StopMode) { closed.store(true, ordering: .releasing) }

    var stats: RunnerStats {
        let pending = UInt64(queue.withLock { $0.count })
        return RunnerStats(
            dispatched: pending, delivered: 0, failed: 0, dropped: 0, discarded: 0, rejected: 0,
            pending: pending, pendingHighWater: pending)
    }

    func flush() async throws {
        for token in queue.withLock({ list in
            defer { list = [] }
            return list
        }) {
            try await invoke(placeCallbacks[token.place] ?? defaultCallback, token)
        }
    }
}

/// A dispatcher written outside the library.
private struct ListDispatcher: CallbackDispatcher {
    func createRunner(
        defaultCallback: Callback?, placeCallbacks: [String: Callback],
        errorHandler: ErrorHandler?
    ) throws(DFMError) -> any CallbackRunner {
        ListRunner(defaultCallback: defaultCallback, placeCallbacks: placeCallbacks)
    }
}

/// Upstream: TestCallbackDispatcher.  (A dispatcher that does not implement
/// `createRunner` is a compile error in Swift, so that case has no test.)
@Suite("CallbackDispatcher")
struct CallbackDispatcherTests {
    @Test("a custom dispatcher returns a runner bound to the callback it was given")
    func customDispatcher() async throws {
        let recorder = Recorder()
        let dispatcher: any CallbackDispatcher = ListDispatcher()
        let runner = try dispatcher.createRunner(defaultCallback: recorder.sync)
        #expect(runner is ListRunner)
        #expect(runner.defaultCallback != nil)

        try runner.dispatch(token("result"))
        #expect(recorder.count == 0)
        try await (runner as! ListRunner).flush()
        #expect(recorder.places == ["result"])
    }

    @Test("the library's dispatchers are usable through the protocol")
    func libraryDispatchersConform() throws {
        let recorder = Recorder()
        let dispatchers: [any CallbackDispatcher] = [DirectDispatcher(), try ManualDispatcher()]
        for dispatcher in dispatchers {
            let runner = try dispatcher.createRunner(
                defaultCallback: nil, placeCallbacks: ["result": recorder.sync],
                errorHandler: nil)
            #expect(runner.placeCallbacks.keys.contains("result"))
        }
        #expect(try ManualDispatcher().createRunner() is ManualCallbackRunner)
    }
}
