import DFMDispatch
import Foundation
import Synchronization
import Testing

// What several suites share: tokens made in one line, a recorder of
// callback calls, payloads that count their releases, threads that can be
// waited for with a timeout, and polling with a deadline.

/// The five values one callback call received.
struct Call: Sendable, Equatable {
    var site: String
    var node: NodeID
    var frame: Frame
    var place: String
    var data: String

    init(_ site: String, _ node: NodeID, _ frame: Frame, _ place: String, _ data: Value) {
        self.site = site
        self.node = node
        self.frame = frame
        self.place = place
        self.data = data.description
    }
}

/// A value behind a pthread mutex, for state that a test shares with
/// callbacks on other threads.  Not `Synchronization.Mutex`: on Linux its
/// contended paths wait in futex calls that ThreadSanitizer does not see,
/// so a sanitized run reports races on the values it protects.
final class Protected<Value>: @unchecked Sendable {
    private var value: Value
    /// On the heap: a pthread mutex must not move.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(_ initial: Value) {
        value = initial
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// Records callback calls; safe from any thread.
final class Recorder: Sendable {
    private let calls = Protected<[Call]>([])

    /// A sync callback that records its call.
    var sync: Callback {
        .sync { site, node, frame, place, data in
            self.record(Call(site, node, frame, place, data))
        }
    }

    /// An async callback that records its call.
    var async: Callback {
        .async { site, node, frame, place, data in
            self.record(Call(site, node, frame, place, data))
        }
    }

    func record(_ call: Call) { calls.withLock { $0.append(call) } }

    var all: [Call] { calls.withLock { $0 } }
    var count: Int { calls.withLock { $0.count } }
    var places: [String] { all.map(\.place) }
}

/// A counter shared between a test and the code it watches.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func increment() { value.add(1, ordering: .sequentiallyConsistent) }
    var current: Int { value.load(ordering: .sequentiallyConsistent) }
}

/// A Swift object whose death is counted: the payload of
/// `HostObject(retaining:)`.
final class Tracked: Sendable {
    let deaths: Counter

    init(_ deaths: Counter) { self.deaths = deaths }

    deinit { deaths.increment() }
}

/// A C-convention release that counts into the `Counter` its pointer holds
/// (retained by `countingObject`), so each test has its own count.
let countingRelease: @convention(c) (UnsafeMutableRawPointer?) -> Void = { pointer in
    guard let pointer else { return }
    Unmanaged<Counter>.fromOpaque(pointer).takeRetainedValue().increment()
}

/// An OBJECT payload whose release increments `counter`.
func countingObject(_ counter: Counter) -> Value {
    .object(
        HostObject(
            pointer: Unmanaged.passRetained(counter).toOpaque(), release: countingRelease))
}

/// A token to place "result" carrying `data`.
func token(data: Value) -> Token { token("result", data) }

/// A token with the upstream fixture's shape: site1, node1, frame [0].
func token(
    _ place: String = "result", _ data: Value = .json("{\"value\": 42}"),
    site: String = "site1", node: NodeID = .name("node1"), frame: Frame = .start(0)
) -> Token {
    Token(site: site, node: node, frame: frame, place: place, data: data)
}

/// True when the tests run under Thread Sanitizer, which slows the
/// atomics-heavy paths by an order of magnitude or more.
let underThreadSanitizer = dlsym(nil, "__tsan_init") != nil

/// The volume of a stress test: `count`, or a twentieth of it under Thread
/// Sanitizer, so that the run still ends in time (the interleavings matter
/// there, not the volume).
func scaled(_ count: Int) -> Int { underThreadSanitizer ? max(count / 20, 100) : count }

/// Polls `condition` every millisecond until it holds or `seconds` pass.
func waitUntil(
    seconds: Double = 10, _ condition: @Sendable () -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

/// The same, for code that must stay on one thread (a manual runner's
/// owner): blocks the calling thread between polls.
func waitUntilBlocking(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

/// Threads started together, joined with a timeout.
final class ThreadGroup: Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Int>(0)
    private let done = Atomic<Int>(0)

    /// Starts `body` on a new thread.
    func spawn(_ body: @escaping @Sendable () -> Void) {
        started.add(1, ordering: .sequentiallyConsistent)
        let finished = self.finished
        let thread = Thread { [self] in
            body()
            self.done.add(1, ordering: .sequentiallyConsistent)
            finished.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// The same from async code, without blocking a thread of the
    /// cooperative pool (which async callbacks may need meanwhile).
    func joinAsync(seconds: Double = 10) async -> Bool {
        let started = self.started.load(ordering: .sequentiallyConsistent)
        return await waitUntil(seconds: seconds) {
            self.done.load(ordering: .sequentiallyConsistent) == started
        }
    }

    /// True when every thread finished within `seconds`.
    func join(seconds: Double = 10) -> Bool {
        let deadline = DispatchTime.now() + seconds
        for _ in 0..<started.load(ordering: .sequentiallyConsistent) {
            if finished.wait(timeout: deadline) == .timedOut { return false }
        }
        return true
    }
}

/// Runs `body` on a fresh thread and waits for it (up to `seconds`).
/// Returns nil on timeout.
func onAnotherThread<T: Sendable>(seconds: Double = 10, _ body: @escaping @Sendable () -> T) -> T? {
    let result = Protected<T?>(nil)
    let group = ThreadGroup()
    group.spawn { result.withLock { $0 = body() } }
    guard group.join(seconds: seconds) else { return nil }
    return result.withLock { $0 }
}

/// An error a callback throws on purpose.
struct Boom: Error, CustomStringConvertible {
    var description: String { "boom" }
}

/// The status of the DFMError `body` throws, or nil when it throws nothing.
/// (Untyped, so that closures inside `#expect` infer the same way.)
func status(_ body: () throws -> Void) -> Status? {
    do {
        try body()
        return nil
    } catch let error as DFMError {
        return error.status
    } catch {
        Issue.record("not a DFMError: \(error)")
        return nil
    }
}

/// The same for async code.
func status(_ body: () async throws -> Void) async -> Status? {
    do {
        try await body()
        return nil
    } catch let error as DFMError {
        return error.status
    } catch {
        Issue.record("not a DFMError: \(error)")
        return nil
    }
}

/// The invariant of the counters: every accepted token is in exactly one
/// of the outcome counts, or still pending.
func checkBalanced(_ stats: RunnerStats, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(
        stats.dispatched
            == stats.delivered + stats.failed + stats.dropped + stats.discarded + stats.pending,
        "stats not balanced: \(stats)", sourceLocation: sourceLocation)
}

/// The actor an executor dispatcher runs callbacks for in these tests.
actor CallbackHost {
    private(set) var log: [String] = []

    func note(_ entry: String) { log.append(entry) }
}
