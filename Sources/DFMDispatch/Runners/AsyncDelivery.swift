import CDFMShim
import Glibc

/// Async delivery: one token in flight per runner, finished by
/// `dfm_complete` from any thread.  The next callback starts on the
/// runner's own thread (the manual owner's next `dfm_process_pending_async`,
/// or the executor's next work item), never inside `dfm_complete`.
///
/// The token in flight is copied out of the queue (`inFlightSlot`), so the
/// queue can go on filling and discarding around it; the view the callback
/// received (`inFlightView`) points into that copy.
extension RunnerCore {
    /// Work items deliver at most this many tokens before posting a new one,
    /// so one busy runner cannot hold the host's loop.
    static let tokensPerWorkItem = 64

    /// What a drain step ended with.
    enum DrainEnd {
        /// The snapshot (or budget) is exhausted.
        case done
        /// A callback is in flight; its completion will wake us.
        case waiting
    }

    /// Finishes a completed token in flight and starts the next ones until
    /// one stays in flight or `limit` tokens were handled.
    func drainAsync(limit: Int, end: UInt64, _ result: inout PumpResult, _ dropped: inout Int)
        -> DrainEnd
    {
        var started = 0
        while true {
            switch finishInFlight(&result) {
            case .stillRunning: return .waiting
            case .idle: break
            }
            if started == limit || queue.position >= end { return .done }
            // A stop(DISCARD) or destroy from a callback: deliver no more.
            if cdfm_load_relaxed(word(Word.requests)) != 0 { return .done }
            let taken = withQueueLock { () -> Bool in
                guard let slot = queue.peek() else { return false }
                memcpy(self.inFlightSlot, slot, Slot.size)
                queue.advance()
                if queue.publishHead() { self.wakeBlockedProducers() }
                return true
            }
            guard taken else { return .done }
            started += 1
            startInFlight(&dropped)
        }
    }

    private enum InFlight {
        case idle
        case stillRunning
    }

    /// If a token is in flight: finish it when completed, or report that it
    /// is still running (and ask its completion to wake us).
    private func finishInFlight(_ result: inout PumpResult) -> InFlight {
        let state = completion.withLock { state -> (Bool, Int32)? in
            guard state.active else { return nil }
            guard state.completed else {
                state.waiting = true
                return (false, 0)
            }
            state.active = false
            return (true, state.status)
        }
        guard let (completed, status) = state else { return .idle }
        guard completed else { return .stillRunning }

        if status == 0 {
            result.delivered &+= 1
        } else {
            result.failed &+= 1
            report(
                inFlightView, .callbackFailed,
                "the async callback for place '\(placeName(inFlightView))' completed with status "
                    + "\(status)")
        }
        releaseSlot(inFlightSlot)
        return .idle
    }

    /// Calls the async callback of the token in `inFlightSlot`.
    private func startInFlight(_ dropped: inout Int) {
        TokenCodec.read(inFlightSlot, routes: routeIndex, into: &inFlightView.pointee)
        let route = inFlightSlot.load(fromByteOffset: Slot.route, as: UInt16.self)
        let entry = routeIndex.entries + Int(route)
        guard entry.pointee.kind == .cAsync, let callback = entry.pointee.asyncFunction else {
            // No callback for this place (a set with no callbacks, or only
            // places that did not match): dropped.
            dropped &+= 1
            releaseSlot(inFlightSlot)
            return
        }
        let sequence = completion.withLock { state -> UInt32 in
            state.sequence &+= 1
            if state.sequence == 0 { state.sequence = 1 }
            state.active = true
            state.completed = false
            state.waiting = false
            return state.sequence
        }
        let handle = OpaquePointer(bitPattern: UInt(id) << 32 | UInt(sequence))
        let previous = cdfm_get_current_runner()
        cdfm_set_current_runner(selfPointer)
        callback(inFlightView, handle, entry.pointee.user)
        cdfm_set_current_runner(previous)
    }

    // MARK: Completion

    /// `dfm_complete`: records the result; wakes the runner's thread if it
    /// gave up waiting.  Never runs a callback.
    func complete(sequence: UInt32, status: Int32) -> DFMError? {
        let (accepted, wakeNeeded, abandoned) = completion.withLock {
            state -> (Bool, Bool, Bool) in
            guard state.active, state.sequence == sequence, !state.completed else {
                return (false, false, false)
            }
            state.completed = true
            state.status = status
            let wake = state.waiting
            state.waiting = false
            return (true, wake, state.abandoned)
        }
        guard accepted else {
            count(Word.failed, 1)
            cdfm_fetch_add_relaxed(word(Word.lateCompletions), 1)
            // The report goes to the error handler on the runner's thread:
            // wake an idle runner like a producer would, or it would hold
            // the report until the next token came.  A runner that is not
            // idle reports it before it arms (afterConsuming looks).
            if !isDestroyed { signalIfArmed() }
            return DFMError(
                .invalidArgument,
                "dfm_complete: this completion was already completed (or is not the token in "
                    + "flight); the call was ignored and counted as a failure")
        }
        if abandoned {
            // Nobody will pump a destroyed runner: finish here, deliver
            // nothing more, and let the runner go.
            finishAbandoned()
            return nil
        }
        if wakeNeeded { wakeForCompletion() }
        return nil
    }

    /// Finishes the token in flight of a destroyed runner and unregisters
    /// it (its last reference then goes).
    func finishAbandoned() {
        var result = PumpResult(delivered: 0, failed: 0, pending: 0)
        _ = finishInFlight(&result)
        count(Word.delivered, result.delivered)
        count(Word.failed, result.failed)
        Registry.shared.unregister(id)
    }

    private func wakeForCompletion() {
        if mode == .executor {
            post()
            return
        }
        if wakeFD >= 0 { cdfm_wake_fd_signal(wakeFD) }
        settings.notify.call()
    }

    /// Reports second completions to the error handler, on the runner's
    /// thread.
    func reportLateCompletions() {
        let late = cdfm_exchange_acq_rel(word(Word.lateCompletions), 0)
        for _ in 0..<late {
            report(
                nil, .invalidArgument,
                "dfm_complete was called for a completion that was already completed; the call "
                    + "was ignored and counted as a failure")
        }
    }

    // MARK: Manual async pump

    /// `dfm_process_pending_async`.
    func pumpAsync(operation: String) -> (PumpResult, DFMError?) {
        var result = PumpResult(delivered: 0, failed: 0, pending: 0)
        if let problem = checkManual(operation, wantsAsync: true) { return (result, problem) }
        guard acquireConsumer() else { return (result, busyElsewhere(operation)) }

        reportLateCompletions()
        let end = queue.snapshotEnd()
        noteHighWater(end &- queue.position)
        var dropped = 0
        let ending = drainAsync(limit: Int.max, end: end, &result, &dropped)

        count(Word.delivered, result.delivered)
        count(Word.failed, result.failed)
        count(Word.dropped, dropped)
        resetWakeFD()
        afterConsuming(callbackInFlight: ending == .waiting)
        result.pending = Int(queue.pendingCount)
        releaseConsumer()
        // Last: a destroy requested by a callback may free the runner here.
        runRequests()

        if result.failed > 0 {
            return (
                result,
                DFMError(
                    .callbackFailed, "\(result.failed) async callback(s) completed with failure")
            )
        }
        return (result, nil)
    }

    // MARK: Executor

    /// Posts one work item to the host's executor.
    func post() {
        switch executor {
        case .c(let executor):
            executor.post.unsafelyUnwrapped(
                executor.context, runExecutorWorkItem,
                UnsafeMutableRawPointer(bitPattern: UInt(id)))
        case .actor(let actor):
            let id = self.id
            Task { await RunnerCore.runWorkItem(id: id, on: actor) }
        case nil:
            break
        }
    }

    private static func runWorkItem(id: UInt32, on actor: isolated any Actor) async {
        guard let runner = Registry.shared.lookup(id), !runner.isDestroyed,
            runner.takeTurn()
        else { return }
        await runner.swiftDrain()
    }

    /// One executor work item: at most `tokensPerWorkItem` tokens, then a
    /// new item if more are pending, or the arm when idle.
    func workItem() {
        if isDestroyed { return }
        guard takeTurn() else { return }
        reportLateCompletions()
        noteHighWater(queue.snapshotEnd() &- queue.position)
        var result = PumpResult(delivered: 0, failed: 0, pending: 0)
        var dropped = 0
        let previous = cdfm_get_current_runner()
        cdfm_set_current_runner(selfPointer)
        let ending = drainAsync(
            limit: RunnerCore.tokensPerWorkItem, end: queue.snapshotEnd(), &result, &dropped)
        cdfm_set_current_runner(previous)

        count(Word.delivered, result.delivered)
        count(Word.failed, result.failed)
        count(Word.dropped, dropped)
        // Idle, or more to do (a new work item), or a callback in flight
        // (its completion posts the next item).
        if !isDestroyed { afterConsuming(callbackInFlight: ending == .waiting) }
        releaseConsumer()
        // The caller (runExecutorWorkItem) holds a reference, so the runner
        // outlives a destroy that runs here.
        runRequests()
    }
}

/// The work function handed to `dfm_executor.post`; its argument is the
/// runner's registry number, not a pointer.
private let runExecutorWorkItem: @convention(c) (UnsafeMutableRawPointer?) -> Void = { argument in
    let id = UInt32(truncatingIfNeeded: UInt(bitPattern: argument))
    Registry.shared.lookup(id)?.workItem()
}
