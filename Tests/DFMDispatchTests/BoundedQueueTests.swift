import DFMDispatch
import Foundation
import Synchronization
import Testing

private func ints(_ values: Range<Int>) -> [Token] {
    values.map { token(data: .int(Int64($0))) }
}

private func intValues(_ recorder: Recorder) -> [String] { recorder.all.map(\.data) }

/// Elapsed seconds of `body`.
private func timed<T>(_ body: () -> T) -> (T, Double) {
    let start = ContinuousClock.now
    let result = body()
    let elapsed = ContinuousClock.now - start
    return (
        result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    )
}

@Suite("Bounded queues")
struct BoundedQueueTests {
    @Test("capacity 0 is unbounded")
    func unbounded() throws {
        let runner = try ManualDispatcher(ManualOptions(capacity: 0)).createManualRunner()
        try runner.dispatch(ints(0..<5000))
        #expect(runner.stats.pending == 5000)
    }

    @Test("a negative capacity is refused with invalidArgument")
    func negativeCapacity() {
        #expect(
            status { _ = try ManualDispatcher(ManualOptions(capacity: -1)) } == .invalidArgument)
    }

    @Test(".fail refuses a token that does not fit with queueFull and counts it as rejected")
    func failWhenFull() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher(ManualOptions(capacity: 2, overflow: .fail))
            .createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(ints(0..<2))
        let error = #expect(throws: DFMError.self) { try runner.dispatch(ints(2..<3)) }
        #expect(error?.status == .queueFull)
        let stats = runner.stats
        #expect(stats.rejected == 1)
        #expect(stats.dispatched == 2)
        #expect(stats.pending == 2)

        try runner.processPending()
        #expect(intValues(recorder) == ["0", "1"])
        try runner.dispatch(ints(3..<5))
        try runner.processPending()
        #expect(intValues(recorder) == ["0", "1", "3", "4"])
        checkBalanced(runner.stats)
    }

    @Test(".fail accepts a batch whole or not at all")
    func failIsAllOrNothing() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher(ManualOptions(capacity: 3, overflow: .fail))
            .createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(ints(0..<2))
        #expect(status { try runner.dispatch(ints(2..<4)) } == .queueFull)
        #expect(runner.stats.pending == 2)
        #expect(runner.stats.rejected == 2)
        #expect(status { try runner.dispatch(ints(0..<4)) } == .queueFull)
        try runner.processPending()
        #expect(intValues(recorder) == ["0", "1"])
    }

    @Test("a refused token's payload stays with the caller")
    func refusedPayloadNotReleased() throws {
        let releases = Counter()
        let runner = try ManualDispatcher(ManualOptions(capacity: 1, overflow: .fail))
            .createManualRunner()
        try runner.dispatch(token())
        let payload = countingObject(releases)
        #expect(status { try runner.dispatch(token(data: payload)) } == .queueFull)
        #expect(releases.current == 0)
        if case .object(let object) = payload { object.release?(object.pointer) }
        #expect(releases.current == 1)
    }

    @Test(".dropOldest keeps the newest tokens and counts the discarded ones")
    func dropOldest() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher(ManualOptions(capacity: 3, overflow: .dropOldest))
            .createManualRunner(defaultCallback: recorder.sync)
        for index in 0..<5 { try runner.dispatch(ints(index..<(index + 1))) }
        #expect(runner.stats.pending == 3)
        #expect(runner.stats.discarded == 2)
        try runner.dispatch(ints(5..<7))
        #expect(runner.stats.discarded == 4)
        try runner.processPending()
        #expect(intValues(recorder) == ["4", "5", "6"])
        let stats = runner.stats
        #expect(stats.rejected == 0)
        #expect(stats.dispatched == 7)
        #expect(stats.delivered == 3)
        checkBalanced(stats)
    }

    @Test(".dropOldest releases the payloads it discards, once each")
    func dropOldestReleases() throws {
        let releases = Counter()
        let recorder = Recorder()
        let runner = try ManualDispatcher(ManualOptions(capacity: 2, overflow: .dropOldest))
            .createManualRunner(defaultCallback: recorder.sync)
        for _ in 0..<5 { try runner.dispatch(token(data: countingObject(releases))) }
        #expect(releases.current == 3)
        try runner.processPending()
        #expect(releases.current == 5)
        #expect(recorder.count == 2)
    }

    @Test(".dropOldest refuses a batch larger than the capacity with queueFull")
    func dropOldestBatchTooLarge() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher(ManualOptions(capacity: 2, overflow: .dropOldest))
            .createManualRunner(defaultCallback: recorder.sync)
        try runner.dispatch(ints(0..<1))
        #expect(status { try runner.dispatch(ints(1..<4)) } == .queueFull)
        #expect(runner.stats.rejected == 3)
        #expect(runner.stats.discarded == 0)
        try runner.processPending()
        #expect(intValues(recorder) == ["0"])
    }

    @Test(".block times out with timedOut when nobody pumps")
    func blockTimesOut() throws {
        let runner = try ManualDispatcher(
            ManualOptions(capacity: 1, overflow: .block(timeoutNanoseconds: 50_000_000))
        ).createManualRunner()
        try runner.dispatch(token())
        let (outcome, elapsed) = timed { status { try runner.dispatch(token()) } }
        #expect(outcome == .timedOut)
        #expect(elapsed >= 0.045)
        #expect(elapsed < 5)
        #expect(runner.stats.rejected == 1)
        #expect(runner.stats.pending == 1)
    }

    @Test(".block is refused at once with wrongThread on the owner thread")
    func blockRefusedOnOwner() throws {
        let runner = try ManualDispatcher(
            ManualOptions(capacity: 1, overflow: .block(timeoutNanoseconds: 5_000_000_000))
        ).createManualRunner()
        try runner.processPending()  // this thread owns the runner now
        try runner.dispatch(token())
        let (outcome, elapsed) = timed { status { try runner.dispatch(token()) } }
        #expect(outcome == .wrongThread)
        #expect(elapsed < 1)
        #expect(runner.stats.pending == 1)
        #expect(runner.stats.rejected == 1)
    }

    @Test(".block is refused with wrongThread from inside the runner's own callback")
    func blockRefusedInCallback() throws {
        let holder = Protected<ManualCallbackRunner?>(nil)
        let inner = Protected<Status?>(nil)
        let runner = try ManualDispatcher(
            ManualOptions(capacity: 2, overflow: .block(timeoutNanoseconds: 5_000_000_000))
        ).createManualRunner(
            defaultCallback: .sync { _, _, _, place, _ in
                guard place == "fill" else { return }
                let runner = holder.withLock { $0 }
                // Fill the queue from inside the callback; the dispatch
                // that finds it full must be refused, not wait.
                for _ in 0..<4 {
                    if let outcome = status({ try runner?.dispatch(token("more")) }) {
                        inner.withLock { $0 = outcome }
                        return
                    }
                }
            })
        holder.withLock { $0 = runner }
        defer { holder.withLock { $0 = nil } }
        try runner.dispatch(token("fill"))
        let (_, elapsed) = timed { try? runner.processPending() }
        #expect(elapsed < 1)
        #expect(inner.withLock { $0 } == .wrongThread)
    }

    @Test(".block refuses at once a batch larger than the capacity")
    func blockBatchTooLarge() throws {
        let runner = try ManualDispatcher(
            ManualOptions(capacity: 2, overflow: .block(timeoutNanoseconds: nil))
        ).createManualRunner()
        let outcome = onAnotherThread(seconds: 5) { status { try runner.dispatch(ints(0..<3)) } }
        #expect(outcome == .some(.queueFull))
        #expect(runner.stats.pending == 0)
        #expect(runner.stats.rejected == 3)
    }

    @Test(".block waits until the owner makes room, then enqueues")
    func blockSucceedsAfterPump() throws {
        let recorder = Recorder()
        let runner = try ManualDispatcher(
            ManualOptions(capacity: 2, overflow: .block(timeoutNanoseconds: 5_000_000_000))
        ).createManualRunner(defaultCallback: recorder.sync)
        try runner.processPending()  // this thread owns the runner
        let done = Atomic<Bool>(false)
        let failures = Counter()
        let group = ThreadGroup()
        group.spawn {
            for index in 0..<200 {
                if (try? runner.dispatch(token(data: .int(Int64(index))))) == nil {
                    failures.increment()
                }
            }
            done.store(true, ordering: .releasing)
        }
        let finished = waitUntilBlocking(seconds: 10) {
            _ = try? runner.processPending()
            return done.load(ordering: .acquiring)
        }
        try runner.processPending()
        #expect(finished)
        #expect(group.join())
        #expect(failures.current == 0)
        #expect(intValues(recorder) == (0..<200).map(String.init))
        #expect(runner.stats.pendingHighWater <= 2)
    }

    @Test(".block without a timeout is released by stop with closed")
    func blockReleasedByStop() throws {
        let runner = try ManualDispatcher(
            ManualOptions(capacity: 1, overflow: .block(timeoutNanoseconds: nil))
        ).createManualRunner()
        try runner.dispatch(token())
        let outcome = Protected<Status??>(nil)
        let group = ThreadGroup()
        group.spawn {
            let result = status { try runner.dispatch(token()) }
            outcome.withLock { $0 = .some(result) }
        }
        // Let the producer reach its wait; the result is the same either way.
        usleep(20_000)
        runner.stop(.drain)
        #expect(group.join(seconds: 5))
        #expect(outcome.withLock { $0 } == .some(.closed))
        #expect(runner.stats.pending == 1)
    }

    @Test("pendingHighWater is the most tokens ever queued at once")
    func highWater() throws {
        let runner = try ManualDispatcher().createManualRunner(defaultCallback: Recorder().sync)
        try runner.dispatch(ints(0..<7))
        try runner.processPending()
        try runner.dispatch(ints(0..<3))
        let stats = runner.stats
        #expect(stats.pendingHighWater == 7)
        #expect(stats.pending == 3)
        try runner.processPending()
        #expect(runner.stats.pendingHighWater == 7)
    }
}
