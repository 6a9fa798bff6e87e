import CDFMShim

// dfm_runner: dispatch, pumps, life-cycle and counters.

/// The runner behind a handle, without retaining it: the handle's own
/// reference keeps it alive for the duration of the call.
@inline(__always)
func withRunner<R>(_ handle: OpaquePointer?, _ body: (RunnerCore) -> R) -> R? {
    guard let handle else { return nil }
    return Unmanaged<RunnerCore>.fromOpaque(UnsafeRawPointer(handle))._withUnsafeGuaranteedRef(body)
}

/// The C function is `dfm_runner_dispatch`.
@_cdecl("dfm_runner_dispatch")
public func dfm_runner_dispatch(
    _ runner: OpaquePointer?, _ tokens: UnsafePointer<dfm_token>?, _ count: Int
) -> dfm_status {
    // One token of the common kind: no error value is built on the way,
    // and this frame ends in a jump to dispatchOne.
    guard count == 1, let tokens, let runner else { return dispatchChecked(runner, tokens, count) }
    return Unmanaged<RunnerCore>.fromOpaque(UnsafeRawPointer(runner))._withUnsafeGuaranteedRef {
        dispatchOne($0, runner, tokens)
    }
}

/// One token through the common path, and the status it earns; anything
/// the common path does not take goes to the general one.
@inline(never)
private func dispatchOne(
    _ core: RunnerCore, _ runner: OpaquePointer, _ token: UnsafePointer<dfm_token>
) -> dfm_status {
    switch core.dispatchCommon(token) {
    case .accepted: return DFM_OK
    case .callbackFailed: return oneCallbackFailed()
    case .notTaken: return dispatchChecked(runner, token, 1)
    }
}

/// The callback may have destroyed the runner: nothing here touches it.
@inline(never)
private func oneCallbackFailed() -> dfm_status {
    fail("dfm_runner_dispatch", RunnerCore.oneFailed())
}

/// Everything but an accepted common token: the arguments checked, the
/// general dispatch, the status and message of what it refused.
@inline(never)
private func dispatchChecked(
    _ runner: OpaquePointer?, _ tokens: UnsafePointer<dfm_token>?, _ count: Int
) -> dfm_status {
    guard let runner else {
        return fail("dfm_runner_dispatch", .invalidArgument, "runner is NULL")
    }
    if count == 0 { return DFM_OK }
    guard let tokens else {
        return fail("dfm_runner_dispatch", .invalidArgument, "tokens is NULL but count is \(count)")
    }
    guard count > 0 && count <= Int.max / 256 else {
        return fail(
            "dfm_runner_dispatch", .invalidArgument,
            "count \(UInt(bitPattern: count)) is too large")
    }
    // A single token has been offered to dispatchCommon already.
    let problem = withRunner(runner) { $0.dispatchGeneral(tokens, count: count) }!
    guard let problem else { return DFM_OK }
    return fail("dfm_runner_dispatch", problem)
}

/// The C function is `dfm_runner_start`.
@_cdecl("dfm_runner_start")
public func dfm_runner_start(_ runner: OpaquePointer?) -> dfm_status {
    guard let problem = withRunner(runner, { $0.start() }) else {
        return fail("dfm_runner_start", .invalidArgument, "runner is NULL")
    }
    guard let problem else { return DFM_OK }
    return fail("dfm_runner_start", problem)
}

/// The C function is `dfm_runner_stop`.
@_cdecl("dfm_runner_stop")
public func dfm_runner_stop(_ runner: OpaquePointer?, _ mode: dfm_stop_mode) -> dfm_status {
    let stopMode: StopMode
    switch mode {
    case DFM_STOP_DRAIN: stopMode = .drain
    case DFM_STOP_DISCARD: stopMode = .discard
    default:
        return fail(
            "dfm_runner_stop", .invalidArgument,
            "mode \(mode.rawValue) is not a dfm_stop_mode (0 or 1)")
    }
    guard withRunner(runner, { $0.stop(stopMode) }) != nil else {
        return fail("dfm_runner_stop", .invalidArgument, "runner is NULL")
    }
    return DFM_OK
}

private func pumpStatus(
    _ function: StaticString, _ outcome: (PumpResult, DFMError?)?
) -> dfm_status {
    guard let (_, problem) = outcome else {
        return fail(function, .invalidArgument, "runner is NULL")
    }
    guard let problem else { return DFM_OK }
    return fail(function, problem)
}

/// The C function is `dfm_process_pending`.
@_cdecl("dfm_process_pending")
public func dfm_process_pending(_ runner: OpaquePointer?) -> dfm_status {
    pumpStatus(
        "dfm_process_pending",
        withRunner(runner) {
            $0.pump(maxTokens: 0, maxNanoseconds: 0, operation: "dfm_process_pending")
        })
}

/// The C function is `dfm_process_pending_async`.
@_cdecl("dfm_process_pending_async")
public func dfm_process_pending_async(_ runner: OpaquePointer?) -> dfm_status {
    pumpStatus(
        "dfm_process_pending_async",
        withRunner(runner) { $0.pumpAsync(operation: "dfm_process_pending_async") })
}

/// The C function is `dfm_process_pending_budget`.
@_cdecl("dfm_process_pending_budget")
public func dfm_process_pending_budget(
    _ runner: OpaquePointer?, _ maxTokens: Int, _ maxNanoseconds: UInt64,
    _ out: UnsafeMutablePointer<dfm_pump_result>?
) -> dfm_status {
    let outcome = withRunner(runner) {
        $0.pump(
            maxTokens: maxTokens, maxNanoseconds: maxNanoseconds,
            operation: "dfm_process_pending_budget")
    }
    if let out {
        let result = outcome?.0 ?? PumpResult(delivered: 0, failed: 0, pending: 0)
        out.pointee = dfm_pump_result(
            delivered: result.delivered, failed: result.failed, pending: result.pending)
    }
    return pumpStatus("dfm_process_pending_budget", outcome)
}

/// The C function is `dfm_has_pending`.
@_cdecl("dfm_has_pending")
public func dfm_has_pending(_ runner: OpaquePointer?) -> Bool {
    withRunner(runner) { $0.hasPending } ?? false
}

/// The C function is `dfm_runner_wake_fd`.
@_cdecl("dfm_runner_wake_fd")
public func dfm_runner_wake_fd(_ runner: OpaquePointer?) -> Int32 {
    withRunner(runner) { $0.wakeFD } ?? -1
}

/// The C function is `dfm_runner_stats`.
@_cdecl("dfm_runner_stats")
public func dfm_runner_stats(
    _ runner: OpaquePointer?, _ out: UnsafeMutablePointer<dfm_stats>?
) -> dfm_status {
    guard let out else { return fail("dfm_runner_stats", .invalidArgument, "out is NULL") }
    guard let stats = withRunner(runner, { $0.stats() }) else {
        return fail("dfm_runner_stats", .invalidArgument, "runner is NULL")
    }
    out.pointee = dfm_stats(
        dispatched: stats.dispatched, delivered: stats.delivered, failed: stats.failed,
        dropped: stats.dropped, discarded: stats.discarded, rejected: stats.rejected,
        pending: stats.pending, pending_high_water: stats.pendingHighWater)
    return DFM_OK
}

/// The C function is `dfm_runner_destroy`.
@_cdecl("dfm_runner_destroy")
public func dfm_runner_destroy(_ runner: OpaquePointer?) {
    _ = withRunner(runner) { $0.destroy() }
}
