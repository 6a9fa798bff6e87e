import CDFMShim
import Glibc

extension RunnerCore {
    /// `start` is the job's hook: the runner accepts tokens from creation.
    func start() -> DFMError? {
        if cdfm_load_relaxed(word(Word.closed)) != 0 {
            return DFMError(.closed, "the runner is stopped; a stopped runner stays stopped")
        }
        return nil
    }

    /// Refuses later dispatches; with `.discard`, releases what is pending.
    func stop(_ mode: StopMode) {
        // Seq_cst store: a direct dispatch that starts after stop returns
        // sees it (relaxed load there; best effort for calls racing stop).
        cdfm_store_seq_cst(word(Word.closed), 1)
        if self.mode != .direct {
            queue.close()
            wakeBlockedProducers()
        }
        if mode == .discard && self.mode != .direct {
            cdfm_fetch_or_seq_cst(word(Word.requests), RunnerCore.requestDiscard)
            runRequests()
        }
    }

    /// Stops, discards what is pending and lets the runner go.  Deferred
    /// while one of the runner's own callbacks is on this thread's stack.
    func destroy() {
        guard cdfm_exchange_acq_rel(word(Word.destroyed), 1) == 0 else { return }
        stop(.drain)
        cdfm_fetch_or_seq_cst(
            word(Word.requests), RunnerCore.requestDiscard | RunnerCore.requestDestroy)
        runRequests()
    }

    /// Runs pending stop/destroy requests if nobody else can: not from
    /// inside our own callback (that pump runs them when it unwinds), and
    /// only with the consumer role (its holder runs them when it lets go).
    ///
    /// Requesters set `requests` and then try the role; holders release the
    /// role and then read `requests`.  Both sides use seq_cst, so at least
    /// one of them sees the other and the request is never stranded.
    func runRequests() {
        while cdfm_load_seq_cst(word(Word.requests)) != 0 {
            if cdfm_get_current_runner() == selfPointer { return }
            if mode != .direct && !acquireConsumer() { return }
            let requests = cdfm_exchange_seq_cst(word(Word.requests), 0)
            if mode != .direct {
                if requests & (RunnerCore.requestDiscard | RunnerCore.requestDestroy) != 0 {
                    discardPending()
                }
                releaseConsumer()
            }
            if requests & RunnerCore.requestDestroy != 0 {
                finishDestroy()
                return
            }
        }
    }

    /// Releases every pending token without delivering it.  The queue is
    /// closed, so its tail is final; a producer still writing a slot it
    /// reserved before the close finishes in moments, and we wait for it.
    private func discardPending() {
        var releases: [ObjectRelease] = []
        var discarded = 0
        withQueueLock {
            let end = queue.snapshotEnd()
            while queue.position < end {
                guard let slot = queue.peek() else {
                    sched_yield()
                    continue
                }
                if let release = payloadRelease(slot) { releases.append(release) }
                releaseSpill(slot)
                queue.advance()
                discarded += 1
            }
            if queue.publishHead() { wakeBlockedProducers() }
        }
        count(Word.discarded, discarded)
        for (pointer, release) in releases { release(pointer) }
    }

    private func finishDestroy() {
        // With an async token in flight the registry keeps the runner until
        // its completion arrives (see complete(sequence:status:)); one that
        // completed already is finished now.  Decided under the completion
        // lock, so a completion racing this is handled exactly once.
        let (active, completed) = completion.withLock { state -> (Bool, Bool) in
            state.abandoned = true
            return (state.active, state.completed)
        }
        if mode != .direct {
            if active && completed {
                finishAbandoned()
            } else if !active {
                Registry.shared.unregister(id)
            }
        }
        let reference = handleReference
        handleReference = nil
        reference?.release()
    }

    // MARK: Queries

    var hasPending: Bool { mode != .direct && queue.pendingCount > 0 }

    func stats() -> RunnerStats {
        let delivered = cdfm_load_relaxed(word(Word.delivered))
        let failed = cdfm_load_relaxed(word(Word.failed))
        let dropped = cdfm_load_relaxed(word(Word.dropped))
        let discarded = cdfm_load_relaxed(word(Word.discarded))
        let rejected = cdfm_load_relaxed(word(Word.rejected))
        guard mode != .direct else {
            return RunnerStats(
                dispatched: delivered &+ failed &+ dropped, delivered: delivered, failed: failed,
                dropped: dropped, discarded: discarded, rejected: rejected, pending: 0,
                pendingHighWater: 0)
        }
        let inFlight: UInt64 = completion.withLock { $0.active } ? 1 : 0
        let pending = queue.pendingCount &+ inFlight
        noteHighWater(queue.pendingCount)
        return RunnerStats(
            dispatched: queue.reservedCount, delivered: delivered, failed: failed,
            dropped: dropped, discarded: discarded, rejected: rejected, pending: pending,
            pendingHighWater: max(cdfm_load_relaxed(word(Word.highWater)), pending))
    }

    // MARK: Swift async delivery

    /// Delivers to Swift async callbacks, in order, one at a time: the
    /// executor runner's work on its actor, and the manual runner's
    /// `processPending() async`.  The caller holds the consumer role; this
    /// lets it go.  Nonsending: the drain and the callbacks it awaits run on
    /// the caller's actor (the executor runner's, or that of the task that
    /// called `processPending() async`), never on the global executor.
    nonisolated(nonsending) func swiftDrain() async {
        let end = queue.snapshotEnd()
        noteHighWater(end &- queue.position)
        var delivered = 0
        var failed = 0
        var dropped = 0
        while queue.position < end {
            if cdfm_load_relaxed(word(Word.requests)) != 0 { break }
            let taken = withQueueLock { () -> Bool in
                guard let slot = queue.peek() else { return false }
                memcpy(self.inFlightSlot, slot, Slot.size)
                queue.advance()
                if queue.publishHead() { self.wakeBlockedProducers() }
                return true
            }
            guard taken else { break }
            TokenCodec.read(inFlightSlot, routes: routeIndex, into: &inFlightView.pointee)
            let route = inFlightSlot.load(fromByteOffset: Slot.route, as: UInt16.self)
            let entry = routeIndex.entries[Int(route)]
            if entry.kind == .swiftAsync,
                case .async(let callback) = routes.swiftCallbacks[entry.swiftIndex].body
            {
                let token = TokenBridge.swiftToken(inFlightView)
                do {
                    try await callback(token.site, token.node, token.frame, token.place, token.data)
                    delivered += 1
                } catch {
                    failed += 1
                    report(
                        inFlightView, .callbackFailed,
                        "the async callback for place '\(token.place)' threw: \(error)")
                }
            } else if entry.kind == .swiftSync,
                case .sync(let callback) = routes.swiftCallbacks[entry.swiftIndex].body
            {
                let token = TokenBridge.swiftToken(inFlightView)
                do {
                    try callback(token.site, token.node, token.frame, token.place, token.data)
                    delivered += 1
                } catch {
                    failed += 1
                    report(
                        inFlightView, .callbackFailed,
                        "the callback for place '\(token.place)' threw: \(error)")
                }
            } else {
                dropped += 1
            }
            releaseSlot(inFlightSlot)
        }
        count(Word.delivered, delivered)
        count(Word.failed, failed)
        count(Word.dropped, dropped)
        if !isDestroyed { afterConsuming(callbackInFlight: false) }
        releaseConsumer()
        runRequests()
    }
}
