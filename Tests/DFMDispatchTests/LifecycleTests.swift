import DFMDispatch
import Foundation
import Synchronization
import Testing

@Suite("Runner life-cycle")
struct LifecycleTests {
    @Test("a runner accepts dispatches from creation; start is optional and idempotent")
    func startOptional() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(token("before start"))
        try runner.start()
        try runner.start()
        try runner.dispatch(token("after start"))
        try runner.processPending()
        #expect(recorder.places == ["before start", "after start"])
    }

    @Test("stop(.drain): dispatch throws closed, and what is pending can still be pumped")
    func stopDrain() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch([token("a"), token("b")])
        runner.stop(.drain)

        let error = #expect(throws: DFMError.self) { try runner.dispatch(token("c")) }
        #expect(error?.status == .closed)
        #expect(runner.hasPending)
        #expect(runner.stats.rejected == 1)

        try runner.processPending()
        #expect(recorder.places == ["a", "b"])
        #expect(!runner.hasPending)
        checkBalanced(runner.stats)
    }

    @Test("stop(.drain) on an async manual runner leaves the pending tokens pumpable")
    func stopDrainAsync() async throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.async)
        try runner.dispatch([token("a"), token("b")])
        runner.stop(.drain)
        #expect(status { try runner.dispatch(token("c")) } == .closed)
        try await runner.processPending()
        #expect(recorder.places == ["a", "b"])
    }

    @Test("stop(.discard) releases the pending Swift objects and delivers nothing")
    func stopDiscardSwiftObjects() throws {
        let deaths = Counter()
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        for _ in 0..<3 {
            try runner.dispatch(token(data: .object(HostObject(retaining: Tracked(deaths)))))
        }
        #expect(deaths.current == 0)

        runner.stop(.discard)
        #expect(deaths.current == 3)
        #expect(!runner.hasPending)
        try runner.processPending()
        #expect(recorder.count == 0)
        #expect(deaths.current == 3)

        let stats = runner.stats
        #expect(stats.discarded == 3)
        #expect(stats.delivered == 0)
        checkBalanced(stats)
    }

    @Test("stop(.discard) releases C payloads through their release function, once each")
    func stopDiscardCPayloads() throws {
        let releases = Counter()
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch((0..<5).map { _ in token(data: countingObject(releases)) })
        runner.stop(.discard)
        #expect(releases.current == 5)
        runner.stop(.discard)
        #expect(releases.current == 5)
        #expect(recorder.count == 0)
    }

    @Test("a second stop with .discard after .drain still discards what is pending")
    func drainThenDiscard() throws {
        let releases = Counter()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: Recorder().sync)
        try runner.dispatch([
            token(data: countingObject(releases)), token(data: countingObject(releases)),
        ])
        runner.stop(.drain)
        #expect(releases.current == 0)
        runner.stop(.discard)
        #expect(releases.current == 2)
        #expect(runner.stats.discarded == 2)
    }

    @Test("start after stop throws closed; a stopped runner stays stopped")
    func startAfterStop() throws {
        for runner in [
            try DirectDispatcher().createRunner(),
            try ManualDispatcher().createRunner(),
            try ExecutorDispatcher(actor: CallbackHost()).createRunner(),
        ] {
            runner.stop(.drain)
            let error = #expect(throws: DFMError.self) { try runner.start() }
            #expect(error?.status == .closed)
            #expect(status { try runner.dispatch(token()) } == .closed)
            runner.stop(.drain)
            #expect(status { try runner.start() } == .closed)
        }
    }

    @Test("stop from inside one of the runner's own callbacks does not deadlock")
    func stopFromCallback() throws {
        let holder = Protected<ManualCallbackRunner?>(nil)
        let releases = Counter()
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { site, node, frame, place, data in
                recorder.record(Call(site, node, frame, place, data))
                if place == "stop" { holder.withLock { $0 }?.stop(.discard) }
            })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }
        try runner.dispatch([
            token("a"), token("stop"), token("c", countingObject(releases)),
            token("d", countingObject(releases)),
        ])
        _ = try? runner.processPending()
        #expect(recorder.places == ["a", "stop"])
        #expect(releases.current == 2)
        #expect(!runner.hasPending)
        #expect(status { try runner.dispatch(token()) } == .closed)
        checkBalanced(runner.stats)
    }

    @Test("releasing a runner with pending tokens releases their payloads")
    func destroyReleasesPending() throws {
        let deaths = Counter()
        let releases = Counter()
        let recorder = Recorder()
        var runner: ManualCallbackRunner? = try ManualDispatcher()
            .createManualRunner(defaultCallback: recorder.sync)
        try runner?.dispatch(token(data: .object(HostObject(retaining: Tracked(deaths)))))
        try runner?.dispatch([
            token(data: countingObject(releases)), token(data: countingObject(releases)),
        ])
        #expect(deaths.current == 0)
        #expect(releases.current == 0)
        runner = nil
        #expect(deaths.current == 1)
        #expect(releases.current == 2)
        #expect(recorder.count == 0)
    }

    @Test("releasing an executor runner with undelivered tokens releases their payloads")
    func destroyExecutorRunner() async throws {
        let releases = Counter()
        let gate = Atomic<Bool>(false)
        let started = Counter()
        var runner: (any CallbackRunner)? = try ExecutorDispatcher(actor: CallbackHost())
            .createRunner(
                defaultCallback: .async { _, _, _, _, _ in
                    started.increment()
                    while !gate.load(ordering: .acquiring) {
                        try? await Task.sleep(for: .milliseconds(1))
                    }
                })
        try runner?.dispatch((0..<4).map { _ in token(data: countingObject(releases)) })
        #expect(await waitUntil { started.current == 1 })
        runner = nil
        gate.store(true, ordering: .releasing)
        #expect(await waitUntil { releases.current == 4 })
        // Nothing is delivered after the runner is gone.
        try? await Task.sleep(for: .milliseconds(20))
        #expect(started.current == 1)
        #expect(releases.current == 4)
    }

    @Test("the dispatcher may go away while its runners live on")
    func dispatcherOutlivedByRunner() throws {
        let recorder = Recorder()
        let runner: ManualCallbackRunner
        do {
            let dispatcher = try ManualDispatcher()
            runner = try dispatcher.createManualRunner(defaultCallback: recorder.sync)
        }
        try runner.dispatch(token())
        try runner.processPending()
        #expect(recorder.count == 1)
    }
}

/// Every OBJECT payload is released exactly once, whatever happens to it.
@Suite("Payload release")
struct PayloadReleaseTests {
    @Test("delivered by a manual runner: released once, after its callback")
    func deliveredManual() throws {
        let releases = Counter()
        let seen = Protected<[Int]>([])
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, _ in seen.withLock { $0.append(releases.current) }
            })
        try runner.dispatch((0..<3).map { _ in token(data: countingObject(releases)) })
        #expect(releases.current == 0)
        try runner.processPending()
        #expect(seen.withLock { $0 } == [0, 1, 2])
        #expect(releases.current == 3)
    }

    @Test("the callback sees the Swift object a HostObject carries")
    func objectVisibleInCallback() throws {
        let deaths = Counter()
        let seen = Protected<Bool>(false)
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, data in
                if case .object(let object) = data, let tracked = object.object(as: Tracked.self) {
                    seen.withLock { $0 = tracked.deaths === deaths }
                }
            })
        try runner.dispatch(token(data: .object(HostObject(retaining: Tracked(deaths)))))
        try runner.processPending()
        #expect(seen.withLock { $0 })
        #expect(deaths.current == 1)
    }

    @Test("a failed callback's payload is released once")
    func failedCallback() throws {
        let releases = Counter()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, _ in throw Boom() })
        try runner.dispatch([
            token(data: countingObject(releases)), token(data: countingObject(releases)),
        ])
        #expect(status { try runner.processPending() } == .callbackFailed)
        #expect(releases.current == 2)

        let direct = try DirectDispatcher().createRunner(
            defaultCallback: .sync { _, _, _, _, _ in throw Boom() })
        #expect(
            status { try direct.dispatch(token(data: countingObject(releases))) } == .callbackFailed
        )
        #expect(releases.current == 3)
    }

    @Test("a token without a route is dropped and its payload released once")
    func droppedNoRoute() throws {
        let releases = Counter()
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(placeCallbacks: [
            "kept": recorder.sync
        ])
        try runner.dispatch([
            token("lost", countingObject(releases)), token("kept", countingObject(releases)),
        ])
        try runner.processPending()
        #expect(releases.current == 2)
        #expect(recorder.places == ["kept"])
        #expect(runner.stats.dropped == 1)
    }

    @Test("an async callback's payload is released once, after it finished")
    func asyncDelivered() async throws {
        let releases = Counter()
        let seen = Protected<[Int]>([])
        let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
            defaultCallback: .async { _, _, _, _, _ in
                try? await Task.sleep(for: .milliseconds(1))
                seen.withLock { $0.append(releases.current) }
            })
        try runner.dispatch((0..<3).map { _ in token(data: countingObject(releases)) })
        #expect(await waitUntil { releases.current == 3 })
        #expect(seen.withLock { $0 } == [0, 1, 2])

        let manual = try ManualDispatcher().createManualRunner(
            defaultCallback: .async { _, _, _, _, _ in })
        try manual.dispatch(token(data: countingObject(releases)))
        try await manual.processPending()
        #expect(releases.current == 4)
    }

    @Test("payloads are released once across every path, and the counters add up")
    func everyPath() throws {
        let releases = Counter()
        let recorder = Recorder()
        var runner: ManualCallbackRunner? = try ManualDispatcher(
            ManualOptions(capacity: 4, overflow: .dropOldest)
        ).createManualRunner(
            placeCallbacks: ["ok": recorder.sync, "bad": .sync { _, _, _, _, _ in throw Boom() }])
        let object = { countingObject(releases) }

        try runner?.dispatch([
            token("ok", object()), token("bad", object()), token("none", object()),
        ])
        try runner?.dispatch([token("ok", object()), token("ok", object())])  // drops the oldest
        _ = try? runner?.processPending()
        try runner?.dispatch([token("ok", object()), token("ok", object())])
        let stats = runner!.stats
        checkBalanced(stats)
        #expect(stats.dispatched == 7)
        #expect(stats.discarded == 1)
        #expect(stats.pending == 2)
        #expect(releases.current == 5)

        runner = nil
        #expect(releases.current == 7)
    }
}
