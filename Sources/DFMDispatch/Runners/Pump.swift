import CDFMShim
import Glibc

extension RunnerCore {
    /// Spin-wait hints an empty pump executes before it returns.
    static let idlePumpPauses = 32
    /// How many slots ahead the pump asks for a slot's first cache line:
    /// each arrives from the producer's core, and without the hint the pump
    /// waits for them one at a time.  It costs the pump about 10
    /// instructions a token; B1-P1 ran 4 to 7% faster and B1-P2 3 to 8%
    /// (medians of sets of 10 to 20 interleaved runs), and 16 ahead ran
    /// slower than 8.
    static let pumpLookahead: UInt64 = 8

    // MARK: Direct

    /// A direct runner's dispatch: validate the whole batch, then call each
    /// token's callback on this thread.
    func dispatchDirect(_ tokens: UnsafePointer<dfm_token>, count: Int) -> DFMError? {
        if count == 1 { return dispatchDirectOne(tokens) }
        return dispatchDirectBatch(tokens, count: count)
    }

    /// One token of any kind, with every message-building path out of line.
    @inline(never)
    private func dispatchDirectOne(_ token: UnsafePointer<dfm_token>) -> DFMError? {
        if cdfm_load_relaxed(word(Word.closed)) != 0 { return refuseClosed(1) }
        var shape = TokenShape()
        guard TokenCodec.measure(token, routes: routeIndex, into: &shape) else {
            return invalidToken(token, index: 0)
        }
        return deliverDirectOne(token, route: shape.route, wordValue: false)
            ? nil : RunnerCore.oneFailed()
    }

    /// Calls one measured token's callback on an open runner, releases its
    /// payload and counts.  Returns false when the callback failed.
    /// `wordValue`: the caller knows the value is carried in the union's
    /// words (a CommonToken), so it needs no text copy.
    @inline(__always)
    func deliverDirectOne(
        _ token: UnsafePointer<dfm_token>, route: UInt16, wordValue: Bool
    ) -> Bool {
        let previous = cdfm_get_current_runner()
        cdfm_set_current_runner(selfPointer)
        let outcome = deliverDirect(token, route: route, wordValue: wordValue)
        if token.pointee.data.kind == DFM_VALUE_OBJECT,
            let release = token.pointee.data.as.object.release
        {
            release(token.pointee.data.as.object.pointer)
        }
        cdfm_set_current_runner(previous)

        switch outcome {
        case .delivered: count(Word.delivered, 1)
        case .failed: count(Word.failed, 1)
        case .dropped: count(Word.dropped, 1)
        }
        if cdfm_load_relaxed(word(Word.requests)) != 0 && previous != selfPointer {
            runRequests()
        }
        if case .failed = outcome { return false }
        return true
    }

    @inline(never)
    private func invalidToken(_ tokens: UnsafePointer<dfm_token>, index: Int) -> DFMError {
        var shape = TokenShape()
        let problem =
            TokenCodec.diagnose(tokens + index, routes: routeIndex, into: &shape)
            ?? "the token is malformed"
        return DFMError(.invalidArgument, "token \(index): \(problem)")
    }

    /// Static: it runs after a callback that may have destroyed the runner.
    @inline(never)
    static func oneFailed() -> DFMError {
        DFMError(.callbackFailed, "1 of 1 callback(s) failed")
    }

    @inline(never)
    private func dispatchDirectBatch(_ tokens: UnsafePointer<dfm_token>, count: Int) -> DFMError? {
        if cdfm_load_relaxed(word(Word.closed)) != 0 {
            return refuseClosed(count)
        }
        var shape = TokenShape()
        for index in 0..<count {
            if let problem = TokenCodec.check(tokens + index, routes: routeIndex, into: &shape) {
                return DFMError(.invalidArgument, "token \(index): \(problem)")
            }
        }

        let previous = cdfm_get_current_runner()
        cdfm_set_current_runner(selfPointer)
        var delivered = 0
        var failed = 0
        var dropped = 0
        for index in 0..<count {
            let token = tokens + index
            // For a batch of one, pass 1 already measured this token.
            if count > 1 { _ = TokenCodec.check(token, routes: routeIndex, into: &shape) }
            let outcome = deliverDirect(token, route: shape.route, wordValue: false)
            switch outcome {
            case .delivered: delivered &+= 1
            case .failed: failed &+= 1
            case .dropped: dropped &+= 1
            }
            let data = token.pointee.data
            if data.kind == DFM_VALUE_OBJECT, let release = data.as.object.release {
                release(data.as.object.pointer)
            }
        }
        cdfm_set_current_runner(previous)

        self.count(Word.delivered, delivered)
        self.count(Word.failed, failed)
        self.count(Word.dropped, dropped)
        if previous != selfPointer && cdfm_load_relaxed(word(Word.requests)) != 0 {
            runRequests()
        }
        if failed > 0 {
            return DFMError(
                .callbackFailed, "\(failed) of \(count) callback(s) failed; the others ran")
        }
        return nil
    }

    /// Delivers the caller's own token, normalised to what every callback
    /// is promised: NULL levels at depth 0 and NUL-terminated text.  Most
    /// tokens need no change and are passed as they are.
    @inline(__always)
    private func deliverDirect(
        _ token: UnsafePointer<dfm_token>, route: UInt16, wordValue: Bool
    ) -> Outcome {
        let kind = token.pointee.data.kind
        let isText =
            !wordValue
            && (kind == DFM_VALUE_STRING || kind == DFM_VALUE_JSON || kind == DFM_VALUE_ERROR)
        if !isText && (token.pointee.frame.depth != 0 || token.pointee.frame.levels == nil) {
            return deliverSync(token, route: route)
        }
        return deliverNormalised(token, route: route)
    }

    @inline(never)
    private func deliverNormalised(_ token: UnsafePointer<dfm_token>, route: UInt16) -> Outcome {
        var view = token.pointee
        if view.frame.depth == 0 { view.frame.levels = nil }
        switch view.data.kind {
        case DFM_VALUE_STRING, DFM_VALUE_JSON, DFM_VALUE_ERROR:
            let length = view.data.as.text.length
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { copy in
                if length > 0 { memcpy(copy.baseAddress!, view.data.as.text.data, length) }
                copy[length] = 0
                view.data.as.text.data = UnsafePointer(copy.baseAddress!)
                return deliverSync(&view, route: route)
            }
        default:
            return deliverSync(&view, route: route)
        }
    }

    @inline(never)
    func refuseClosed(_ count: Int) -> DFMError {
        self.count(Word.rejected, count)
        return DFMError(.closed, "the runner is stopped; \(count) token(s) were refused")
    }

    // MARK: Manual, sync

    /// `dfm_process_pending` and its budget form: delivers the tokens that
    /// were pending when it was called, in dispatch order.
    func pump(maxTokens: Int, maxNanoseconds: UInt64, operation: String)
        -> (PumpResult, DFMError?)
    {
        var result = PumpResult(delivered: 0, failed: 0, pending: 0)
        if let problem = checkManual(operation, wantsAsync: false) { return (result, problem) }
        guard acquireConsumer() else { return (result, busyElsewhere(operation)) }

        // Nothing ready at the head: return without reading the tail, whose
        // cache line belongs to the producers (a host that pumps in a tight
        // loop would otherwise pull it from them on every call).
        if !usesDropLock && queue.peek() == nil && cdfm_load_relaxed(word(Word.requests)) == 0 {
            // An empty pump rests a moment before returning.  A host that
            // pumps in a tight loop would otherwise read the slot the
            // producer is writing on every call, and that cache line would
            // bounce between the two cores once per token (the dominant
            // cost of a single-producer stream).  About half a microsecond,
            // paid only when there was nothing to deliver: invisible to a
            // host that pumps once per frame.  The tokens pending when the
            // call was made have all been seen by then (there were none).
            for _ in 0..<RunnerCore.idlePumpPauses { cdfm_cpu_relax() }
            resetWakeFD()
            afterConsuming(callbackInFlight: false)
            if maxTokens != 0 || maxNanoseconds != 0 { result.pending = Int(queue.pendingCount) }
            releaseConsumer()
            return (result, nil)
        }
        let end = queue.snapshotEnd()
        noteHighWater(end &- queue.position)
        let deadline = maxNanoseconds > 0 ? cdfm_now_ns() &+ maxNanoseconds : 0
        let previous = cdfm_get_current_runner()
        cdfm_set_current_runner(selfPointer)

        var dropped = 0
        if usesDropLock {
            pumpChunks(end: end, maxTokens: maxTokens, deadline: deadline, &result, &dropped)
        } else {
            pumpInPlace(end: end, maxTokens: maxTokens, deadline: deadline, &result, &dropped)
        }

        cdfm_set_current_runner(previous)
        count(Word.delivered, result.delivered)
        count(Word.failed, result.failed)
        count(Word.dropped, dropped)
        resetWakeFD()
        afterConsuming(callbackInFlight: false)
        if maxTokens != 0 || maxNanoseconds != 0 { result.pending = Int(queue.pendingCount) }
        releaseConsumer()
        // Last: a destroy requested by a callback runs here and may free
        // the runner, so nothing after this line touches self.
        runRequests()

        if result.failed > 0 {
            return (
                result,
                DFMError(
                    .callbackFailed,
                    "\(result.failed) callback(s) failed in this pump; the other tokens were "
                        + "delivered")
            )
        }
        return (result, nil)
    }

    /// Delivers straight from the queue's slots.
    @inline(__always)
    private func pumpInPlace(
        end: UInt64, maxTokens: Int, deadline: UInt64, _ result: inout PumpResult,
        _ dropped: inout Int
    ) {
        var view = dfm_token()
        var handled = 0
        while queue.position < end {
            if cdfm_load_relaxed(word(Word.requests)) & RunnerCore.requestDiscard != 0 { break }
            guard let slot = queue.peek() else { break }
            queue.prefetch(ahead: RunnerCore.pumpLookahead, of: slot, end: end)
            TokenCodec.read(slot, routes: routeIndex, into: &view)
            let route = slot.load(fromByteOffset: Slot.route, as: UInt16.self)
            switch deliverSync(&view, route: route) {
            case .delivered: result.delivered &+= 1
            case .failed: result.failed &+= 1
            case .dropped: dropped &+= 1
            }
            releaseSlot(slot)
            if queue.step() { retireSegment() }
            handled &+= 1
            // Free room for producers now and then, not per token: the head
            // word's cache line is shared with every producer.
            if handled & 63 == 0 && queue.publishHead() { wakeBlockedProducers() }
            if handled == maxTokens { break }
            if deadline != 0 && cdfm_now_ns() >= deadline { break }
        }
        if queue.publishHead() { wakeBlockedProducers() }
    }

    /// Delivers from copies taken under the drop lock (drop-oldest queues,
    /// whose producers may discard the oldest tokens at any time).
    private func pumpChunks(
        end: UInt64, maxTokens: Int, deadline: UInt64, _ result: inout PumpResult,
        _ dropped: inout Int
    ) {
        var view = dfm_token()
        var handled = 0
        while true {
            if cdfm_load_relaxed(word(Word.requests)) & RunnerCore.requestDiscard != 0 { break }
            // With a time budget, take one token at a time so that nothing
            // is taken out of the queue that the budget will not deliver.
            var limit = deadline != 0 ? 1 : RunnerCore.chunkSlots
            if maxTokens > 0 { limit = min(limit, maxTokens - handled) }
            let taken = takeChunk(limit: limit, end: end)
            if taken == 0 { break }
            for index in 0..<taken {
                let slot = chunkBase + index * Slot.size
                TokenCodec.read(slot, routes: routeIndex, into: &view)
                let route = slot.load(fromByteOffset: Slot.route, as: UInt16.self)
                switch deliverSync(&view, route: route) {
                case .delivered: result.delivered &+= 1
                case .failed: result.failed &+= 1
                case .dropped: dropped &+= 1
                }
                releaseSlot(slot)
            }
            handled &+= taken
            if handled == maxTokens { break }
            if deadline != 0 && cdfm_now_ns() >= deadline { break }
        }
    }

    @inline(never)
    private func retireSegment() { queue.retireSegment() }

    /// The checks every pump makes before it takes the consumer role.
    func checkManual(_ operation: String, wantsAsync: Bool) -> DFMError? {
        guard mode == .manual else {
            return DFMError(
                .wrongKind,
                "\(operation) needs a manual runner; this one is "
                    + (mode == .direct ? "a direct runner" : "an executor runner"))
        }
        if wantsAsync && routes.kind == .sync {
            return DFMError(
                .wrongKind,
                "\(operation) cannot run sync callbacks; use dfm_process_pending instead")
        }
        if !wantsAsync && routes.kind == .async {
            return DFMError(
                .wrongKind,
                "\(operation) cannot run async callbacks; use dfm_process_pending_async instead")
        }
        return checkPumpThread(operation)
    }

    func busyElsewhere(_ operation: String) -> DFMError {
        DFMError(
            .busy, "\(operation): the runner is being stopped or destroyed on another thread")
    }

    /// Pending tokens are most numerous just before the consumer takes some,
    /// so the high-water mark is sampled there (and by stats()).
    @inline(__always)
    func noteHighWater(_ pending: UInt64) {
        let mark = word(Word.highWater)
        // Relaxed: only the consumer-role holder and stats() write it, and a
        // lost race between them loses nothing that the next sample misses.
        if pending > cdfm_load_relaxed(mark) { cdfm_store_relaxed(mark, pending) }
    }
}
