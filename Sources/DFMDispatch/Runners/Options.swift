import CDFMShim

/// What a bounded queue does with a batch that does not fit.
public enum Overflow: Sendable, Equatable {
    /// Refuse the batch with `queueFull`.
    case fail
    /// Wait for room (up to a timeout; `nil` waits forever).  Refused on the
    /// runner's owner thread, which is the thread that would make room.
    case block(timeoutNanoseconds: UInt64?)
    /// Discard (release) the oldest pending tokens to make room.
    case dropOldest
}

/// How a manual runner queues tokens and tells the host about them.
public struct ManualOptions: Sendable {
    /// Tokens; 0 means unbounded.
    public var capacity: Int
    public var overflow: Overflow
    /// Called when the queue goes from empty to non-empty, once each time.
    public var notify: (@Sendable () -> Void)?
    /// Keep an eventfd that is readable while tokens are pending.
    public var useWakeFD: Bool

    public init(
        capacity: Int = 0, overflow: Overflow = .fail, notify: (@Sendable () -> Void)? = nil,
        useWakeFD: Bool = false
    ) {
        self.capacity = capacity
        self.overflow = overflow
        self.notify = notify
        self.useWakeFD = useWakeFD
    }
}

/// The notify hook: a C function or a Swift closure.
enum NotifyHook: @unchecked Sendable {
    case none
    case c(@convention(c) (UnsafeMutableRawPointer?) -> Void, UnsafeMutableRawPointer?)
    case swift(@Sendable () -> Void)

    @inline(__always)
    func call() {
        switch self {
        case .none: break
        case .c(let function, let context): function(context)
        case .swift(let closure): closure()
        }
    }

    var isSet: Bool {
        if case .none = self { return false }
        return true
    }
}

/// Queue settings shared by the C and Swift entry points.
struct QueueSettings: @unchecked Sendable {
    var capacity = 0
    var overflow: Overflow = .fail
    var notify: NotifyHook = .none
    var useWakeFD = false
}

/// Where an executor runner runs its callbacks.
enum ExecutorTarget: @unchecked Sendable {
    case c(dfm_executor)
    case actor(any Actor)
}

/// Counts of one pump call.
public struct PumpResult: Sendable, Equatable {
    /// Callbacks that succeeded.
    public var delivered: Int
    /// Callbacks that failed, or type mismatches.
    public var failed: Int
    /// Tokens still queued afterwards.
    public var pending: Int
}

/// The counters of a runner.  Counts are disjoint and count tokens.
public struct RunnerStats: Sendable, Equatable {
    public var dispatched: UInt64
    public var delivered: UInt64
    public var failed: UInt64
    public var dropped: UInt64
    public var discarded: UInt64
    public var rejected: UInt64
    public var pending: UInt64
    public var pendingHighWater: UInt64
}

/// How to stop a runner.
public enum StopMode: Sendable {
    /// Refuse new tokens; what is pending can still be pumped.
    case drain
    /// Refuse new tokens and release what is pending without delivering it.
    case discard
}
