import DFMDispatch
import Foundation
import Synchronization
import Testing

// The manual runner's sync pump belongs to the first thread that calls it,
// so the tests that pump are synchronous functions: their body stays on
// one thread.

/// Upstream: TestManualDispatcher.
@Suite("ManualDispatcher")
struct ManualDispatcherTests {
    @Test("createRunner returns a ManualCallbackRunner")
    func createsManualRunner() throws {
        let runner = try ManualDispatcher().createRunner(defaultCallback: Recorder().sync)
        #expect(runner is ManualCallbackRunner)
    }

    @Test("dispatch does not call the callback but makes hasPending true")
    func dispatchQueues() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(token())
        #expect(recorder.count == 0)
        #expect(runner.hasPending)
    }

    @Test("processPending calls the callback once and empties the queue")
    func processPendingOnce() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(token())
        try runner.processPending()
        #expect(
            recorder.all == [
                Call("site1", .name("node1"), Frame([0]), "result", .json("{\"value\": 42}"))
            ])
        #expect(!runner.hasPending)
    }

    @Test("two dispatches, then one processPending, give two calls")
    func twoDispatchesOnePump() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(token("result"))
        try runner.dispatch(token("status"))
        try runner.processPending()
        #expect(recorder.places == ["result", "status"])
    }

    @Test("async callbacks run through processPending() async")
    func asyncThroughAsyncPump() async throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.async)
        try runner.dispatch(token())
        #expect(recorder.count == 0)
        #expect(runner.hasPending)
        try await runner.processPending()
        #expect(recorder.places == ["result"])
        #expect(!runner.hasPending)
    }

    @Test("hasPending is false initially")
    func initiallyEmpty() throws {
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: Recorder().sync)
        #expect(!runner.hasPending)
    }

    @Test("an empty batch does not enqueue")
    func emptyBatchNotQueued() throws {
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: Recorder().sync)
        try runner.dispatch([])
        #expect(!runner.hasPending)
        #expect(runner.stats.dispatched == 0)
    }

    @Test("processPending with async callbacks throws wrongKind")
    func syncPumpRefusesAsync() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.async)
        try runner.dispatch(token())
        let error = #expect(throws: DFMError.self) { try runner.processPending() }
        #expect(error?.status == .wrongKind)
        #expect(runner.hasPending)
        #expect(recorder.count == 0)
    }

    @Test("processPending() async with sync callbacks throws wrongKind")
    func asyncPumpRefusesSync() async throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(token())
        #expect(await status { try await runner.processPending() } == .wrongKind)
        #expect(runner.hasPending)
        #expect(recorder.count == 0)
    }

    @Test("repeated processPending is idempotent and a new dispatch is processed by the next")
    func repeatedPumps() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(token("one"))
        try runner.processPending()
        try runner.processPending()
        try runner.processPending()
        #expect(recorder.places == ["one"])
        try runner.dispatch(token("two"))
        try runner.processPending()
        #expect(recorder.places == ["one", "two"])
    }

    @Test("with no callbacks, the sync pump drains the queue without error")
    func noCallbacksSyncDrain() throws {
        let runner = try ManualDispatcher().createManualRunner()
        try runner.dispatch([token(), token()])
        #expect(runner.hasPending)
        try runner.processPending()
        #expect(!runner.hasPending)
        #expect(runner.stats.dropped == 2)
    }

    @Test("with no callbacks, the async pump drains the queue without error")
    func noCallbacksAsyncDrain() async throws {
        let runner = try ManualDispatcher().createManualRunner()
        try runner.dispatch([token(), token()])
        try await runner.processPending()
        #expect(!runner.hasPending)
        #expect(runner.stats.dropped == 2)
    }

    @Test("place beats default")
    func placeBeatsDefault() throws {
        let fallback = Recorder()
        let place = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: fallback.sync, placeCallbacks: ["result": place.sync])
        try runner.dispatch([token("result"), token("status")])
        try runner.processPending()
        #expect(place.places == ["result"])
        #expect(fallback.places == ["status"])
    }

    @Test("tokens are delivered in dispatch order, on the pumping thread")
    func orderAndThread() throws {
        let seen = Protected<[(Int64, UInt)]>([])
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, data in
                if case .int(let value) = data {
                    seen.withLock { $0.append((value, UInt(pthread_self()))) }
                }
            })
        let producer = onAnotherThread { () -> Bool in
            for index in 0..<50 { try? runner.dispatch(token(data: .int(Int64(index)))) }
            return true
        }
        #expect(producer != nil)
        let pumper = UInt(pthread_self())
        try runner.processPending()
        let got = seen.withLock { $0 }
        #expect(got.map(\.0) == Array(0..<50))
        #expect(got.allSatisfy { $0.1 == pumper })
    }
}

/// Behaviours where this library does better than the reference.
@Suite("ManualCallbackRunner, stronger behaviours")
struct ManualStrongerTests {
    @Test("processPending delivers a snapshot: tokens a callback dispatches wait for the next call")
    func snapshotDrains() throws {
        let holder = Protected<ManualCallbackRunner?>(nil)
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { site, node, frame, place, data in
                recorder.record(Call(site, node, frame, place, data))
                if place == "again" {
                    try holder.withLock { $0 }?.dispatch(token("later"))
                }
            })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }

        try runner.dispatch([token("first"), token("again")])
        try runner.processPending()
        #expect(recorder.places == ["first", "again"])
        #expect(runner.hasPending)

        try runner.processPending()
        #expect(recorder.places == ["first", "again", "later"])
        #expect(!runner.hasPending)
    }

    @Test("a callback that always re-dispatches cannot starve a pump")
    func selfFeedingCallbackTerminates() throws {
        let holder = Protected<ManualCallbackRunner?>(nil)
        let calls = Counter()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, _ in
                calls.increment()
                try holder.withLock { $0 }?.dispatch(token())
            })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }

        try runner.dispatch(token())
        for expected in 1...5 {
            try runner.processPending()
            #expect(calls.current == expected)
            #expect(runner.hasPending)
        }
        runner.stop(.discard)
    }

    @Test("a throwing callback is reported, the rest is delivered, then processPending throws")
    func failureDeliversTheRest() throws {
        let reports = Protected<[(Token?, DFMError)]>([])
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: recorder.sync,
            placeCallbacks: ["bad": .sync { _, _, _, _, _ in throw Boom() }],
            errorHandler: { token, error in reports.withLock { $0.append((token, error)) } })
        try runner.dispatch([token("a"), token("bad"), token("b")])
        try runner.dispatch([token("bad"), token("c")])

        let error = #expect(throws: DFMError.self) { try runner.processPending() }
        #expect(error?.status == .callbackFailed)
        #expect(recorder.places == ["a", "b", "c"])
        #expect(!runner.hasPending)

        let got = reports.withLock { $0 }
        #expect(got.count == 2)
        #expect(got.allSatisfy { $0.0?.place == "bad" && $0.1.status == .callbackFailed })
        #expect(got.allSatisfy { $0.1.message.contains("boom") })
        let stats = runner.stats
        #expect(stats.failed == 2)
        #expect(stats.delivered == 3)
        checkBalanced(stats)

        // The failure is over: the next pump is clean.
        try runner.dispatch(token("d"))
        try runner.processPending()
        #expect(recorder.places == ["a", "b", "c", "d"])
    }

    @Test("the budget form stops after maxTokens and reports its counts")
    func budgetByCount() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: recorder.sync,
            placeCallbacks: ["bad": .sync { _, _, _, _, _ in throw Boom() }])
        try runner.dispatch((0..<10).map { token($0 == 1 ? "bad" : "p\($0)") })
        let first = try runner.processPending(maxTokens: 4)
        #expect([first.delivered, first.failed, first.pending] == [Int](arrayLiteral: 3, 1, 6))
        #expect(recorder.places == ["p0", "p2", "p3"])
        let rest = try runner.processPending(maxTokens: 0, maxNanoseconds: 0)
        #expect([rest.delivered, rest.failed, rest.pending] == [Int](arrayLiteral: 6, 0, 0))
    }

    @Test("the budget form stops when its time is up")
    func budgetByTime() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { site, node, frame, place, data in
                usleep(2_000)
                recorder.record(Call(site, node, frame, place, data))
            })
        try runner.dispatch((0..<100).map { token("p\($0)") })
        let result = try runner.processPending(maxNanoseconds: 10_000_000)
        #expect(result.delivered >= 1)
        #expect(result.delivered < 100)
        #expect(result.pending == 100 - result.delivered)
        try runner.processPending()
        #expect(recorder.count == 100)
    }

    @Test("a pump from a thread other than the owner gets wrongThread")
    func ownerThread() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: recorder.sync)
        try runner.processPending()
        try runner.dispatch(token())
        let elsewhere = onAnotherThread { status { try runner.processPending() } }
        #expect(elsewhere == .some(.wrongThread))
        #expect(recorder.count == 0)
        try runner.processPending()
        #expect(recorder.count == 1)
    }

    @Test("a pump from inside one of the runner's own callbacks gets busy")
    func reentrantPumpIsBusy() throws {
        let holder = Protected<ManualCallbackRunner?>(nil)
        let inner = Protected<Status?>(nil)
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, _ in
                let runner = holder.withLock { $0 }
                inner.withLock { $0 = status { try runner?.processPending() } }
            })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }
        try runner.dispatch(token())
        try runner.processPending()
        #expect(inner.withLock { $0 } == .busy)
    }

    @Test(
        "processPending() async from inside one of the runner's own callbacks gets busy")
    func reentrantAsyncPumpIsBusy() async throws {
        let holder = Protected<ManualCallbackRunner?>(nil)
        let inner = Protected<Status??>(nil)
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .async { _, _, _, _, _ in
                let runner = holder.withLock { $0 }
                let outcome = await status { try await runner?.processPending() }
                inner.withLock { $0 = .some(outcome) }
            })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }
        try runner.dispatch(token())
        try await runner.processPending()
        #expect(inner.withLock { $0 } == .some(.busy))
    }

    @Test(
        "a second processPending() async while one is running gets busy")
    func concurrentAsyncPumpIsBusy() async throws {
        let gate = Atomic<Bool>(false)
        let started = Counter()
        let recorder = Recorder()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .async { site, node, frame, place, data in
                started.increment()
                while !gate.load(ordering: .acquiring) {
                    try? await Task.sleep(for: .milliseconds(1))
                }
                recorder.record(Call(site, node, frame, place, data))
            })
        try runner.dispatch([token("a"), token("b")])
        let first = Task { await status { try await runner.processPending() } }
        #expect(await waitUntil { started.current == 1 })

        let second = await status { try await runner.processPending() }
        gate.store(true, ordering: .releasing)
        #expect(await first.value == nil)
        #expect(second == .busy)
        #expect(recorder.places == ["a", "b"])
    }
}

/// The wake fd and the notify hook.
@Suite("ManualCallbackRunner, wake-ups")
struct ManualWakeTests {
    private func readable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLIN) != 0
    }

    @Test("without useWakeFD the wake fd is -1")
    func noWakeFD() throws {
        let runner = try ManualDispatcher().createManualRunner()
        #expect(runner.wakeFD == -1)
    }

    @Test("the wake fd is readable after dispatch and not after processPending")
    func wakeFDEdges() throws {
        let runner = try ManualDispatcher(ManualOptions(useWakeFD: true))
            .createManualRunner(defaultCallback: Recorder().sync)
        let fd = runner.wakeFD
        #expect(fd >= 0)
        #expect(!readable(fd))

        try runner.dispatch(token())
        #expect(readable(fd))
        try runner.dispatch(token())
        #expect(readable(fd))

        try runner.processPending()
        #expect(!readable(fd))

        try runner.dispatch(token())
        #expect(readable(fd))
        try runner.processPending()
        #expect(!readable(fd))
    }

    @Test("the wake fd stays readable while a budget pump leaves tokens behind")
    func wakeFDAfterPartialPump() throws {
        let runner = try ManualDispatcher(ManualOptions(useWakeFD: true))
            .createManualRunner(defaultCallback: Recorder().sync)
        try runner.dispatch([token(), token(), token()])
        try runner.processPending(maxTokens: 1)
        #expect(runner.hasPending)
        #expect(readable(runner.wakeFD))
        try runner.processPending()
        #expect(!readable(runner.wakeFD))
    }

    @Test("the wake fd is readable for tokens a callback dispatched during the pump")
    func wakeFDForTokensDuringPump() throws {
        let holder = Protected<ManualCallbackRunner?>(nil)
        let runner = try ManualDispatcher(ManualOptions(useWakeFD: true))
            .createManualRunner(
                defaultCallback: .sync { _, _, _, place, _ in
                    if place == "again" { try holder.withLock { $0 }?.dispatch(token("later")) }
                })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }
        try runner.dispatch(token("again"))
        try runner.processPending()
        #expect(runner.hasPending)
        #expect(readable(runner.wakeFD))
    }

    @Test("notify is called once per empty to non-empty edge")
    func notifyOncePerEdge() throws {
        let notifications = Counter()
        let runner = try ManualDispatcher(ManualOptions(notify: { notifications.increment() }))
            .createManualRunner(defaultCallback: Recorder().sync)
        #expect(notifications.current == 0)

        try runner.dispatch(token())
        #expect(notifications.current == 1)
        try runner.dispatch(token())
        try runner.dispatch([token(), token()])
        #expect(notifications.current == 1)

        try runner.processPending()
        #expect(notifications.current == 1)
        try runner.processPending()
        #expect(notifications.current == 1)

        try runner.dispatch(token())
        #expect(notifications.current == 2)
        try runner.dispatch(token())
        #expect(notifications.current == 2)
        try runner.processPending()
        try runner.dispatch(token())
        #expect(notifications.current == 3)
    }

    @Test("notify runs on the thread whose dispatch made the queue non-empty")
    func notifyThread() throws {
        let threads = Protected<[UInt]>([])
        let runner = try ManualDispatcher(
            ManualOptions(notify: { threads.withLock { $0.append(UInt(pthread_self())) } })
        ).createManualRunner()
        let producer = onAnotherThread { () -> UInt in
            try? runner.dispatch(token())
            return UInt(pthread_self())
        }
        #expect(producer != nil)
        #expect(threads.withLock { $0 } == [producer!])
    }

    @Test("notify fires once when many threads fill an empty queue at once")
    func notifyOnceUnderContention() throws {
        let notifications = Counter()
        let runner = try ManualDispatcher(ManualOptions(notify: { notifications.increment() }))
            .createManualRunner()
        let group = ThreadGroup()
        for _ in 0..<4 {
            group.spawn { for _ in 0..<1000 { try? runner.dispatch(token()) } }
        }
        #expect(group.join())
        #expect(notifications.current == 1)
        #expect(runner.stats.pending == 4000)
    }
}
