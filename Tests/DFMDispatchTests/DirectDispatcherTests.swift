import DFMDispatch
import Foundation
import Synchronization
import Testing

/// Upstream: TestDirectDispatcher.
@Suite("DirectDispatcher")
struct DirectDispatcherTests {
    @Test("it creates a runner with default and place callbacks")
    func createsRunner() throws {
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: recorder.sync, placeCallbacks: ["result": recorder.sync])
        #expect(runner.defaultCallback != nil)
        #expect(runner.placeCallbacks.count == 1)
        #expect(!(runner is ManualCallbackRunner))
    }

    @Test("dispatch calls the callback immediately, on the calling thread")
    func immediateOnCallingThread() throws {
        let threads = Protected<[UInt]>([])
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: .sync { site, node, frame, place, data in
                threads.withLock { $0.append(UInt(pthread_self())) }
                recorder.record(Call(site, node, frame, place, data))
            })
        let caller = UInt(pthread_self())
        try runner.dispatch(token("result"))
        #expect(recorder.all.map(\.site) == ["site1"])
        #expect(recorder.places == ["result"])
        #expect(threads.withLock { $0 } == [caller])

        let other = onAnotherThread { () -> UInt in
            let me = UInt(pthread_self())
            try? runner.dispatch(token("status"))
            return me
        }
        #expect(other != nil)
        #expect(threads.withLock { $0 }.last == other)
        #expect(other != caller)
    }

    @Test("a batch of two gives two calls and an empty batch none")
    func batches() throws {
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(defaultCallback: recorder.sync)
        try runner.dispatch([token("result"), token("status")])
        #expect(recorder.count == 2)
        try runner.dispatch([])
        #expect(recorder.count == 2)
    }

    @Test("async callbacks are refused with wrongKind")
    func asyncRejected() {
        let async = Callback.async { _, _, _, _, _ in }
        let error = #expect(throws: DFMError.self) {
            try DirectDispatcher().createRunner(defaultCallback: async)
        }
        #expect(error?.status == .wrongKind)
        #expect(error?.message.contains("synchronous") == true)
        #expect(
            status { _ = try DirectDispatcher().createRunner(placeCallbacks: ["a": async]) }
                == .wrongKind)
    }

    @Test("start and stop do nothing harmful; a stopped runner refuses with closed")
    func startStop() throws {
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(defaultCallback: recorder.sync)
        try runner.start()
        try runner.dispatch(token())
        runner.stop(.drain)
        #expect(status { try runner.dispatch(token()) } == .closed)
        #expect(recorder.count == 1)
        #expect(runner.stats.rejected == 1)
        #expect(status { try runner.start() } == .closed)
    }

    @Test("a runner without callbacks can be created and dispatched to")
    func noCallbacks() throws {
        let runner = try DirectDispatcher().createRunner()
        try runner.start()
        try runner.dispatch(token())
        runner.stop(.drain)
        #expect(runner.stats.dropped == 1)
    }

    @Test("place beats default")
    func placeBeatsDefault() throws {
        let fallback = Recorder()
        let place = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: fallback.sync, placeCallbacks: ["result": place.sync])
        try runner.dispatch(token("result"))
        #expect(place.count == 1)
        #expect(fallback.count == 0)
    }

    @Test("an OBJECT payload is released exactly once, after its callback returned")
    func payloadReleasedAfterCallback() throws {
        let releases = Counter()
        let seenDuringCallback = Protected<[Int]>([])
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: .sync { _, _, _, _, _ in
                seenDuringCallback.withLock { $0.append(releases.current) }
            })
        try runner.dispatch(token(data: countingObject(releases)))
        #expect(seenDuringCallback.withLock { $0 } == [0])
        #expect(releases.current == 1)
    }

    @Test("a refused dispatch leaves the payload with the caller")
    func refusedPayloadNotReleased() throws {
        let deaths = Counter()
        let runner = try DirectDispatcher().createRunner()
        runner.stop(.drain)
        do {
            let object = HostObject(retaining: Tracked(deaths))
            #expect(status { try runner.dispatch(token(data: .object(object))) } == .closed)
            #expect(deaths.current == 0)
            object.release?(object.pointer)
        }
        #expect(deaths.current == 1)
    }

    @Test("a payload the direct runner has no route for is released once")
    func droppedPayloadReleased() throws {
        let deaths = Counter()
        let runner = try DirectDispatcher().createRunner()
        try runner.dispatch(token(data: .object(HostObject(retaining: Tracked(deaths)))))
        #expect(deaths.current == 1)
        #expect(runner.stats.dropped == 1)
    }

    @Test("a callback may dispatch into its own direct runner: the nested token runs at once")
    func reentrantDispatch() throws {
        let holder = Protected<(any CallbackRunner)?>(nil)
        let recorder = Recorder()
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: .sync { site, node, frame, place, data in
                recorder.record(Call(site, node, frame, place, data))
                if place == "outer" { try holder.withLock { $0 }?.dispatch(token("inner")) }
            })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }
        try runner.dispatch([token("outer"), token("last")])
        #expect(recorder.places == ["outer", "inner", "last"])
        #expect(runner.stats.delivered == 3)
    }
}
