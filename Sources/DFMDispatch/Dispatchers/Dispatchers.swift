import CDFMShim

/// Runs callbacks for one job, according to its dispatcher's strategy
/// (nv_dfm_core's `CallbackRunner`).
public protocol CallbackRunner: AnyObject, Sendable {
    /// The default callback for places without one of their own.
    var defaultCallback: Callback? { get }
    /// The callbacks by place.
    var placeCallbacks: [String: Callback] { get }
    /// Hands a batch of tokens to the runner, all or nothing.
    func dispatch(_ tokens: [Token]) throws(DFMError)
    /// The job's start hook.  Runners accept tokens from creation.
    func start() throws(DFMError)
    /// Refuses later tokens; `.discard` also releases what is pending.
    func stop(_ mode: StopMode)
    /// The runner's counters.
    var stats: RunnerStats { get }
}

extension CallbackRunner {
    /// Hands one token to the runner.
    public func dispatch(_ token: Token) throws(DFMError) { try dispatch([token]) }
}

/// Makes a runner per job (nv_dfm_core's `CallbackDispatcher`).
public protocol CallbackDispatcher: Sendable {
    func createRunner(
        defaultCallback: Callback?, placeCallbacks: [String: Callback],
        errorHandler: ErrorHandler?
    ) throws(DFMError) -> any CallbackRunner
}

extension CallbackDispatcher {
    public func createRunner(
        defaultCallback: Callback? = nil, placeCallbacks: [String: Callback] = [:]
    ) throws(DFMError) -> any CallbackRunner {
        try createRunner(
            defaultCallback: defaultCallback, placeCallbacks: placeCallbacks, errorHandler: nil)
    }
}

/// What the C layer needs of a dispatcher: a runner core for a route table.
protocol CoreFactory: Sendable {
    func makeCore(_ routes: RouteTable) throws(DFMError) -> RunnerCore
}

extension CoreFactory {
    func makeRunner(
        _ defaultCallback: Callback?, _ placeCallbacks: [String: Callback],
        _ errorHandler: ErrorHandler?
    ) throws(DFMError) -> RunnerCore {
        let set = CallbackSet(
            defaultCallback: defaultCallback, placeCallbacks: placeCallbacks,
            errorSink: errorHandler.map { .swift($0) } ?? .none)
        return try makeCore(RouteTable(set))
    }
}

/// Calls callbacks at once, on the thread that dispatches.  Sync callbacks
/// (or none) only.
public struct DirectDispatcher: CallbackDispatcher, CoreFactory {
    public init() {}

    func makeCore(_ routes: RouteTable) throws(DFMError) -> RunnerCore {
        if routes.kind == .async {
            throw DFMError(
                .wrongKind,
                "the direct dispatcher only supports synchronous callbacks; use an executor "
                    + "dispatcher for async callbacks")
        }
        return try RunnerCore(mode: .direct, routes: routes)
    }

    public func createRunner(
        defaultCallback: Callback?, placeCallbacks: [String: Callback],
        errorHandler: ErrorHandler?
    ) throws(DFMError) -> any CallbackRunner {
        BasicCallbackRunner(
            core: try makeRunner(defaultCallback, placeCallbacks, errorHandler),
            defaultCallback: defaultCallback, placeCallbacks: placeCallbacks)
    }
}

/// Queues tokens; the host delivers them on a thread of its choosing with
/// `processPending()`, usually once per frame on its main thread.
public struct ManualDispatcher: CallbackDispatcher, CoreFactory {
    let settings: QueueSettings

    public init(_ options: ManualOptions = ManualOptions()) throws(DFMError) {
        guard options.capacity >= 0 else {
            throw DFMError(.invalidArgument, "capacity must not be negative")
        }
        var settings = QueueSettings()
        settings.capacity = options.capacity
        settings.overflow = options.overflow
        settings.notify = options.notify.map { .swift($0) } ?? .none
        settings.useWakeFD = options.useWakeFD
        self.settings = settings
    }

    init(settings: QueueSettings) { self.settings = settings }

    func makeCore(_ routes: RouteTable) throws(DFMError) -> RunnerCore {
        try RunnerCore(mode: .manual, routes: routes, settings: settings)
    }

    public func createRunner(
        defaultCallback: Callback?, placeCallbacks: [String: Callback],
        errorHandler: ErrorHandler?
    ) throws(DFMError) -> any CallbackRunner {
        try createManualRunner(
            defaultCallback: defaultCallback, placeCallbacks: placeCallbacks,
            errorHandler: errorHandler)
    }

    /// The same as `createRunner`, typed as the manual runner it returns.
    public func createManualRunner(
        defaultCallback: Callback? = nil, placeCallbacks: [String: Callback] = [:],
        errorHandler: ErrorHandler? = nil
    ) throws(DFMError) -> ManualCallbackRunner {
        ManualCallbackRunner(
            core: try makeRunner(defaultCallback, placeCallbacks, errorHandler),
            defaultCallback: defaultCallback, placeCallbacks: placeCallbacks)
    }
}

/// Runs async callbacks in order on an actor the host gives (or on a serial
/// executor, through an actor bound to it): the Swift counterpart of
/// nv_dfm_core's asyncio dispatcher.  It never uses `MainActor` or the main
/// queue, which nothing drains in a host such as Kit.
public struct ExecutorDispatcher: CallbackDispatcher, CoreFactory {
    let target: ExecutorTarget

    /// Callbacks run isolated to `actor`.
    public init(actor: any Actor) { target = .actor(actor) }

    /// Callbacks run on `executor`.
    public init(executor: any SerialExecutor) { target = .actor(ExecutorBoundActor(executor)) }

    init(c executor: dfm_executor) { target = .c(executor) }

    func makeCore(_ routes: RouteTable) throws(DFMError) -> RunnerCore {
        if routes.kind == .sync {
            throw DFMError(
                .wrongKind,
                "the executor dispatcher requires asynchronous callbacks; use a direct or manual "
                    + "dispatcher for sync callbacks")
        }
        return try RunnerCore(mode: .executor, routes: routes, executor: target)
    }

    public func createRunner(
        defaultCallback: Callback?, placeCallbacks: [String: Callback],
        errorHandler: ErrorHandler?
    ) throws(DFMError) -> any CallbackRunner {
        BasicCallbackRunner(
            core: try makeRunner(defaultCallback, placeCallbacks, errorHandler),
            defaultCallback: defaultCallback, placeCallbacks: placeCallbacks)
    }
}

/// An actor whose jobs run on a serial executor the host gave.
actor ExecutorBoundActor {
    nonisolated let executor: any SerialExecutor

    init(_ executor: any SerialExecutor) { self.executor = executor }

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
}

/// A runner made by one of the dispatchers above.
public class BasicCallbackRunner: CallbackRunner, @unchecked Sendable {
    let core: RunnerCore
    public let defaultCallback: Callback?
    public let placeCallbacks: [String: Callback]

    init(core: RunnerCore, defaultCallback: Callback?, placeCallbacks: [String: Callback]) {
        self.core = core
        self.defaultCallback = defaultCallback
        self.placeCallbacks = placeCallbacks
    }

    deinit { core.destroy() }

    public func dispatch(_ tokens: [Token]) throws(DFMError) {
        if tokens.isEmpty { return }
        let problem = TokenBridge.withCTokens(tokens) { views, count in
            core.dispatch(views, count: count)
        }
        if let problem { throw problem }
    }

    public func start() throws(DFMError) {
        if let problem = core.start() { throw problem }
    }

    public func stop(_ mode: StopMode = .drain) { core.stop(mode) }

    public var stats: RunnerStats { core.stats() }
}

/// A manual runner: tokens wait until the host pumps them.
public final class ManualCallbackRunner: BasicCallbackRunner, @unchecked Sendable {
    /// True when tokens are waiting.
    public var hasPending: Bool { core.hasPending }

    /// An eventfd readable while tokens are pending (`useWakeFD`), else -1.
    public var wakeFD: Int32 { core.wakeFD }

    /// Delivers, on this thread, the tokens pending when it was called.
    /// Sync callbacks (or none) only.  The first thread that pumps owns the
    /// runner.  Throws `callbackFailed` after delivering everything when
    /// callbacks failed.
    public func processPending() throws(DFMError) {
        let (_, problem) = core.pump(maxTokens: 0, maxNanoseconds: 0, operation: "processPending")
        if let problem { throw problem }
    }

    /// The budget form: stops after `maxTokens` tokens or `maxNanoseconds`
    /// (0 means no limit), whichever comes first.
    @discardableResult
    public func processPending(maxTokens: Int = 0, maxNanoseconds: UInt64 = 0)
        throws(DFMError) -> PumpResult
    {
        let (result, problem) = core.pump(
            maxTokens: maxTokens, maxNanoseconds: maxNanoseconds, operation: "processPending")
        if let problem, problem.status != .callbackFailed { throw problem }
        return result
    }

    /// Delivers the pending tokens to async callbacks, awaiting each in
    /// order, on the caller's actor.  Async callbacks (or none) only.  Not
    /// bound to a thread, but one drain at a time: a call while another
    /// runs (from another task, or from inside one of the callbacks) gets
    /// `busy`.
    nonisolated(nonsending) public func processPending() async throws(DFMError) {
        if core.routes.kind == .sync {
            throw DFMError(
                .wrongKind,
                "processPending() async cannot run sync callbacks; use processPending() instead")
        }
        guard core.acquireConsumer() else {
            throw DFMError(
                .busy,
                "processPending() async was called while another drain of this runner is "
                    + "running (from another task, from inside one of its callbacks, or a stop "
                    + "discarding)")
        }
        let before = core.stats().failed
        await core.swiftDrain()
        let failed = core.stats().failed &- before
        if failed > 0 {
            throw DFMError(.callbackFailed, "\(failed) async callback(s) failed")
        }
    }
}
