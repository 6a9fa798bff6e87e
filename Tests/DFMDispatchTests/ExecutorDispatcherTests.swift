import DFMDispatch
import Foundation
import Synchronization
import Testing

/// A serial executor that runs its jobs on one thread of its own, so a
/// test can tell whether code ran on it.
final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false
    private let thread = Atomic<UInt>(0)

    init() {
        let worker = Thread { [unowned self] in self.run() }
        worker.start()
        while thread.load(ordering: .acquiring) == 0 { usleep(100) }
    }

    /// The pthread the jobs run on.
    var threadID: UInt { thread.load(ordering: .acquiring) }

    func enqueue(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread finish after the jobs it has.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        thread.store(UInt(pthread_self()), ordering: .releasing)
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }
}

/// An actor whose jobs run on a `ThreadExecutor`.
actor ThreadBoundActor {
    nonisolated let executor: ThreadExecutor

    init(_ executor: ThreadExecutor) { self.executor = executor }

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
}

/// Upstream: TestAsyncioDispatcher.  The Swift counterpart runs async
/// callbacks for an actor (or a serial executor).
@Suite("ExecutorDispatcher")
struct ExecutorDispatcherTests {
    @Test("it creates a runner for an actor and for a serial executor")
    func createsRunner() throws {
        let executor = ThreadExecutor()
        defer { executor.shutdown() }
        let async = Recorder().async
        let onActor = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
            defaultCallback: async)
        let onExecutor = try ExecutorDispatcher(executor: executor).createRunner(
            defaultCallback: async)
        #expect(onActor.defaultCallback != nil)
        #expect(onExecutor.defaultCallback != nil)
        #expect(!(onActor is ManualCallbackRunner))
    }

    @Test("dispatch runs the async callback")
    func runsAsyncCallback() async throws {
        let host = CallbackHost()
        let runner = try ExecutorDispatcher(actor: host).createRunner(
            defaultCallback: .async { site, _, _, place, _ in await host.note("\(site)/\(place)") })
        try runner.dispatch(token())
        #expect(await waitUntil { runner.stats.delivered == 1 })
        #expect(await host.log == ["site1/result"])
    }

    @Test("a sync callback is refused with wrongKind")
    func syncRejected() {
        let error = #expect(throws: DFMError.self) {
            try ExecutorDispatcher(actor: CallbackHost())
                .createRunner(defaultCallback: .sync { _, _, _, _, _ in })
        }
        #expect(error?.status == .wrongKind)
        #expect(error?.message.contains("asynchronous") == true)
    }

    @Test("a batch of two tokens delivers both, in order")
    func batchOfTwo() async throws {
        let recorder = Recorder()
        let runner = try ExecutorDispatcher(actor: CallbackHost())
            .createRunner(defaultCallback: recorder.async)
        try runner.dispatch([token("result"), token("status")])
        #expect(await waitUntil { recorder.count == 2 })
        #expect(recorder.places == ["result", "status"])
    }

    @Test("an empty batch schedules nothing")
    func emptyBatch() async throws {
        let recorder = Recorder()
        let runner = try ExecutorDispatcher(actor: CallbackHost())
            .createRunner(defaultCallback: recorder.async)
        try runner.dispatch([])
        #expect(runner.stats.dispatched == 0)
        // A later token arrives alone: the empty batch left nothing behind.
        try runner.dispatch(token("after"))
        #expect(await waitUntil { recorder.count == 1 })
        #expect(runner.stats.dispatched == 1)
        #expect(recorder.places == ["after"])
    }

    @Test("with no callbacks, dispatch works and the tokens are dropped")
    func noCallbacks() async throws {
        let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner()
        try runner.dispatch([token(), token()])
        #expect(await waitUntil { runner.stats.dropped == 2 })
        checkBalanced(runner.stats)
    }

    @Test("place beats default")
    func placeBeatsDefault() async throws {
        let fallback = Recorder()
        let place = Recorder()
        let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
            defaultCallback: fallback.async, placeCallbacks: ["result": place.async])
        try runner.dispatch([token("result"), token("status")])
        #expect(await waitUntil { fallback.count + place.count == 2 })
        #expect(place.places == ["result"])
        #expect(fallback.places == ["status"])
    }

    @Test("one token at a time: the next callback starts after the previous one finished")
    func oneAtATime() async throws {
        let inFlight = Atomic<Int>(0)
        let overlaps = Counter()
        let order = Recorder()
        let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
            defaultCallback: .async { site, node, frame, place, data in
                if inFlight.add(1, ordering: .sequentiallyConsistent).newValue > 1 {
                    overlaps.increment()
                }
                try? await Task.sleep(for: .microseconds(200))
                await Task.yield()
                order.record(Call(site, node, frame, place, data))
                inFlight.subtract(1, ordering: .sequentiallyConsistent)
            })
        for batch in 0..<10 {
            try runner.dispatch((0..<3).map { token("b\(batch)t\($0)") })
        }
        #expect(await waitUntil { order.count == 30 })
        #expect(overlaps.current == 0)
        #expect(order.places == (0..<10).flatMap { b in (0..<3).map { "b\(b)t\($0)" } })
    }

    @Test("a throwing async callback is reported to the error handler; the rest is delivered")
    func errorsReported() async throws {
        let reports = Protected<[(String?, Status)]>([])
        let recorder = Recorder()
        let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
            defaultCallback: recorder.async,
            placeCallbacks: ["bad": .async { _, _, _, _, _ in throw Boom() }],
            errorHandler: { token, error in
                reports.withLock { $0.append((token?.place, error.status)) }
            })
        try runner.dispatch([token("a"), token("bad"), token("b")])
        #expect(await waitUntil { recorder.count == 2 && runner.stats.failed == 1 })
        #expect(recorder.places == ["a", "b"])
        let got = reports.withLock { $0 }
        #expect(got.count == 1)
        #expect(got.first?.0 == "bad")
        #expect(got.first?.1 == .callbackFailed)
        checkBalanced(runner.stats)
    }

    @Test(
        "callbacks run on the serial executor the dispatcher was given")
    func runsOnGivenExecutor() async throws {
        let executor = ThreadExecutor()
        defer { executor.shutdown() }
        let threads = Protected<[UInt]>([])
        let runner = try ExecutorDispatcher(executor: executor).createRunner(
            defaultCallback: .async { _, _, _, _, _ in
                threads.withLock { $0.append(UInt(pthread_self())) }
            })
        try runner.dispatch([token(), token(), token()])
        #expect(await waitUntil { threads.withLock { $0.count } == 3 })
        #expect(threads.withLock { $0 }.allSatisfy { $0 == executor.threadID })
    }

    @Test(
        "callbacks run isolated to the actor the dispatcher was given")
    func runsOnGivenActor() async throws {
        let executor = ThreadExecutor()
        defer { executor.shutdown() }
        let threads = Protected<[UInt]>([])
        let runner = try ExecutorDispatcher(actor: ThreadBoundActor(executor)).createRunner(
            defaultCallback: .async { _, _, _, _, _ in
                threads.withLock { $0.append(UInt(pthread_self())) }
            })
        try runner.dispatch([token(), token()])
        #expect(await waitUntil { threads.withLock { $0.count } == 2 })
        #expect(threads.withLock { $0 }.allSatisfy { $0 == executor.threadID })
    }

    @Test("a stopped executor runner refuses with closed; start after stop throws closed")
    func stopped() async throws {
        let recorder = Recorder()
        let runner = try ExecutorDispatcher(actor: CallbackHost())
            .createRunner(defaultCallback: recorder.async)
        try runner.start()
        try runner.dispatch(token("before"))
        runner.stop(.drain)
        #expect(status { try runner.dispatch(token("after")) } == .closed)
        #expect(status { try runner.start() } == .closed)
        #expect(await waitUntil { recorder.count == 1 })
        #expect(recorder.places == ["before"])
        #expect(runner.stats.rejected == 1)
    }

    @Test("stop(.discard) releases the tokens still waiting and delivers none of them")
    func stopDiscard() async throws {
        let releases = Counter()
        let gate = Atomic<Bool>(false)
        let started = Counter()
        let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
            defaultCallback: .async { _, _, _, _, _ in
                started.increment()
                while !gate.load(ordering: .acquiring) {
                    try? await Task.sleep(for: .milliseconds(1))
                }
            })
        try runner.dispatch((0..<4).map { _ in token(data: countingObject(releases)) })
        #expect(await waitUntil { started.current == 1 })
        runner.stop(.discard)
        gate.store(true, ordering: .releasing)
        #expect(await waitUntil { releases.current == 4 })
        #expect(await waitUntil { runner.stats.pending == 0 })
        let stats = runner.stats
        #expect(started.current == 1)
        #expect(stats.delivered == 1)
        #expect(stats.discarded == 3)
        checkBalanced(stats)
    }
}
