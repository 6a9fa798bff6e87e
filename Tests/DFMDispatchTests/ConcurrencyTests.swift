import DFMDispatch
import Foundation
import Synchronization
import Testing

/// What a consumer saw of several producers: every token once, in each
/// producer's order, and the sum of all values.
private final class Ledger: Sendable {
    struct State {
        var next: [Int64]
        var received = 0
        var outOfOrder = 0
        var checksum: Int64 = 0
    }

    let state: Protected<State>
    let received = Atomic<Int>(0)

    init(producers: Int) { state = Protected(State(next: Array(repeating: 0, count: producers))) }

    /// A value carries its producer in the high half, its sequence below.
    static func value(producer: Int, sequence: Int) -> Int64 {
        Int64(producer) << 32 | Int64(sequence)
    }

    func note(_ data: Value) {
        guard case .int(let value) = data else { return }
        let producer = Int(value >> 32)
        let sequence = value & 0xFFFF_FFFF
        state.withLock { state in
            if state.next[producer] != sequence { state.outOfOrder += 1 }
            state.next[producer] = sequence + 1
            state.received += 1
            state.checksum &+= value
        }
        received.add(1, ordering: .releasing)
    }

    var count: Int { received.load(ordering: .acquiring) }
    var snapshot: State { state.withLock { $0 } }

    /// The checksum of `producers` × `perProducer` values.
    static func expectedChecksum(producers: Int, perProducer: Int) -> Int64 {
        var sum: Int64 = 0
        for producer in 0..<producers {
            for sequence in 0..<perProducer {
                sum &+= value(producer: producer, sequence: sequence)
            }
        }
        return sum
    }
}

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test("4 producers × 100,000 tokens into a manual runner: each delivered once, in order")
    func manualManyProducers() async throws {
        let producers = 4
        let perProducer = scaled(100_000)
        let total = producers * perProducer
        let ledger = Ledger(producers: producers)
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, data in ledger.note(data) })

        let refused = Counter()
        let group = ThreadGroup()
        for producer in 0..<producers {
            group.spawn {
                let site = "p\(producer)"
                for sequence in 0..<perProducer {
                    let value = Ledger.value(producer: producer, sequence: sequence)
                    do {
                        try runner.dispatch(
                            Token(site: site, frame: Frame([0]), place: "yield", data: .int(value)))
                    } catch {
                        refused.increment()
                    }
                }
            }
        }

        let pumpFailures = Counter()
        let pumpedAll = Atomic<Bool>(false)
        let pumper = ThreadGroup()
        pumper.spawn {
            let done = waitUntilBlocking(seconds: 60) {
                if (try? runner.processPending()) == nil { pumpFailures.increment() }
                return ledger.count >= total
            }
            pumpedAll.store(done, ordering: .releasing)
        }
        #expect(await group.joinAsync(seconds: 60))
        #expect(await pumper.joinAsync(seconds: 60))
        let finished = pumpedAll.load(ordering: .acquiring)
        #expect(finished)
        #expect(refused.current == 0)
        #expect(pumpFailures.current == 0)

        let seen = ledger.snapshot
        #expect(seen.received == total)
        #expect(seen.outOfOrder == 0)
        #expect(seen.next == Array(repeating: Int64(perProducer), count: producers))
        #expect(
            seen.checksum == Ledger.expectedChecksum(producers: producers, perProducer: perProducer)
        )
        let stats = runner.stats
        #expect(stats.dispatched == UInt64(total))
        #expect(stats.delivered == UInt64(total))
        #expect(stats.pending == 0)
        #expect(stats.pendingHighWater >= 1)
        #expect(stats.pendingHighWater <= UInt64(total))
        checkBalanced(stats)
    }

    @Test("producers in batches into a bounded blocking queue: nothing lost, order kept")
    func manualBlockingBatches() async throws {
        let producers = 4
        let perProducer = scaled(20_000)
        let batch = 8
        let total = producers * perProducer
        let ledger = Ledger(producers: producers)
        let runner = try ManualDispatcher(
            ManualOptions(capacity: 64, overflow: .block(timeoutNanoseconds: 30_000_000_000))
        ).createManualRunner(defaultCallback: .sync { _, _, _, _, data in ledger.note(data) })

        let refused = Counter()
        let group = ThreadGroup()
        for producer in 0..<producers {
            group.spawn {
                for start in stride(from: 0, to: perProducer, by: batch) {
                    let tokens = (start..<(start + batch)).map {
                        token("yield", .int(Ledger.value(producer: producer, sequence: $0)))
                    }
                    if (try? runner.dispatch(tokens)) == nil { refused.increment() }
                }
            }
        }
        let pumpedAll = Atomic<Bool>(false)
        let pumper = ThreadGroup()
        pumper.spawn {
            let done = waitUntilBlocking(seconds: 60) {
                _ = try? runner.processPending()
                return ledger.count >= total
            }
            pumpedAll.store(done, ordering: .releasing)
        }
        #expect(await group.joinAsync(seconds: 60))
        #expect(await pumper.joinAsync(seconds: 60))
        let finished = pumpedAll.load(ordering: .acquiring)
        #expect(finished)
        #expect(refused.current == 0)
        let seen = ledger.snapshot
        #expect(seen.received == total)
        #expect(seen.outOfOrder == 0)
        #expect(
            seen.checksum == Ledger.expectedChecksum(producers: producers, perProducer: perProducer)
        )
        #expect(runner.stats.pendingHighWater <= 64)
        checkBalanced(runner.stats)
    }

    @Test("a direct runner called from 4 threads runs every callback once")
    func directFourThreads() async throws {
        let perThread = scaled(25_000)
        let calls = Atomic<Int>(0)
        let runner = try DirectDispatcher().createRunner(
            defaultCallback: .sync { _, _, _, _, _ in calls.add(1, ordering: .relaxed) })
        let group = ThreadGroup()
        for _ in 0..<4 {
            group.spawn {
                for index in 0..<perThread { try? runner.dispatch(token(data: .int(Int64(index)))) }
            }
        }
        #expect(await group.joinAsync(seconds: 60))
        #expect(calls.load(ordering: .relaxed) == 4 * perThread)
        let stats = runner.stats
        #expect(stats.delivered == UInt64(4 * perThread))
        #expect(stats.dispatched == UInt64(4 * perThread))
        checkBalanced(stats)
    }

    @Test(
        "producers on several threads into an executor runner: all delivered, order kept")
    func executorManyProducers() async throws {
        let producers = 4
        let perProducer = scaled(5_000)
        let total = producers * perProducer
        let ledger = Ledger(producers: producers)
        let inFlight = Atomic<Int>(0)
        let overlaps = Counter()
        let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
            defaultCallback: .async { _, _, _, _, data in
                if inFlight.add(1, ordering: .sequentiallyConsistent).newValue > 1 {
                    overlaps.increment()
                }
                ledger.note(data)
                inFlight.subtract(1, ordering: .sequentiallyConsistent)
            })
        let refused = Counter()
        let group = ThreadGroup()
        for producer in 0..<producers {
            group.spawn {
                for sequence in 0..<perProducer {
                    let value = Ledger.value(producer: producer, sequence: sequence)
                    if (try? runner.dispatch(token(data: .int(value)))) == nil {
                        refused.increment()
                    }
                }
            }
        }
        #expect(await group.joinAsync(seconds: 60))
        #expect(refused.current == 0)
        let allDelivered = await waitUntil(seconds: 20) { ledger.count >= total }
        #expect(allDelivered, "delivered \(ledger.count) of \(total); stats \(runner.stats)")
        let seen = ledger.snapshot
        #expect(seen.received == total)
        #expect(seen.outOfOrder == 0)
        #expect(
            seen.checksum == Ledger.expectedChecksum(producers: producers, perProducer: perProducer)
        )
        #expect(overlaps.current == 0)
        checkBalanced(runner.stats)
    }

    @Test(
        "bursty producers never leave an executor runner stalled with tokens pending")
    func executorNeverStalls() async throws {
        for round in 0..<20 {
            let delivered = Atomic<Int>(0)
            let runner = try ExecutorDispatcher(actor: CallbackHost()).createRunner(
                defaultCallback: .async { _, _, _, _, _ in delivered.add(1, ordering: .relaxed) })
            let group = ThreadGroup()
            for _ in 0..<3 {
                group.spawn {
                    for index in 0..<3000 {
                        try? runner.dispatch(token(data: .int(Int64(index))))
                        // Short idle gaps: the runner goes idle and is woken often.
                        if index % 7 == 0 { usleep(UInt32.random(in: 0...30)) }
                    }
                }
            }
            #expect(await group.joinAsync(seconds: 60))
            let all = await waitUntil(seconds: 3) { delivered.load(ordering: .relaxed) == 9000 }
            guard all else {
                let count = delivered.load(ordering: .relaxed)
                Issue.record("round \(round): \(count) of 9000 delivered, stalled: \(runner.stats)")
                return
            }
        }
    }

    @Test("stop(.discard) racing producers and a pump: every payload released exactly once")
    func discardRace() async throws {
        let releases = Counter()
        let created = Counter()
        let runner = try ManualDispatcher().createManualRunner(
            defaultCallback: .sync { _, _, _, _, _ in })
        let group = ThreadGroup()
        for _ in 0..<3 {
            group.spawn {
                for _ in 0..<scaled(20_000) {
                    let data = countingObject(releases)
                    created.increment()
                    do {
                        try runner.dispatch(token(data: data))
                    } catch {
                        // Refused: the payload is still ours.
                        if case .object(let object) = data { object.release?(object.pointer) }
                    }
                }
            }
        }
        let producersDone = Atomic<Bool>(false)
        let stopped = Atomic<Bool>(false)
        let pumper = ThreadGroup()
        pumper.spawn {
            _ = waitUntilBlocking(seconds: 60) {
                _ = try? runner.processPending()
                if !stopped.load(ordering: .relaxed)
                    && runner.stats.dispatched >= UInt64(scaled(10_000))
                {
                    runner.stop(.discard)
                    stopped.store(true, ordering: .relaxed)
                }
                return producersDone.load(ordering: .acquiring)
            }
        }
        #expect(await group.joinAsync(seconds: 60))
        producersDone.store(true, ordering: .releasing)
        #expect(await pumper.joinAsync(seconds: 60))
        let didStop = stopped.load(ordering: .relaxed)
        #expect(didStop)
        runner.stop(.discard)
        #expect(releases.current == created.current)
        let stats = runner.stats
        #expect(stats.pending == 0)
        #expect(stats.delivered + stats.discarded == stats.dispatched)
        #expect(stats.dispatched + stats.rejected == UInt64(created.current))
        checkBalanced(stats)
    }
}
