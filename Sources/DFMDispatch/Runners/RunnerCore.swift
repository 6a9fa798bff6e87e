import CDFMShim
import Glibc

/// The one implementation behind every runner, C and Swift alike.
///
/// A direct runner calls the callbacks inside `dispatch`.  A manual runner
/// queues tokens in a `SlotQueue` and delivers them in `pump`, on the thread
/// that owns it.  An executor runner queues them too and delivers them in
/// work items it posts to the host's executor.
///
/// Roles.  Any number of threads dispatch.  One thread at a time holds the
/// consumer role (`consumerWord`): the pump, an executor work item, or a
/// stop/destroy that discards.  Stop and destroy never wait for the role:
/// they leave a request in `requestWord`, and whoever holds the role runs it
/// when it lets go (see `runRequests`).
///
/// Host code (callbacks, release functions, the error handler, notify, the
/// executor's post) is never called with a lock held.
final class RunnerCore: @unchecked Sendable {
    enum Mode {
        case direct
        case manual
        case executor
    }

    let mode: Mode
    // The hot paths reach the route table and the queue through unowned
    // (unsafe) references: no reference counting per token.  The strong
    // references below keep both alive as long as the runner.
    unowned(unsafe) let routes: RouteTable
    let queue: SlotQueue
    let routeIndex: RouteIndex
    private let routesStorage: RouteTable
    let settings: QueueSettings
    let executor: ExecutorTarget?
    let wakeFD: Int32
    /// The registry id: names this runner in completions and work items.
    private(set) var id: UInt32 = 0

    /// Counters and control words, each group on its own cache line.
    let words: UnsafeMutableRawPointer

    private let waiter: OpaquePointer?
    private let dropLock: Lock?
    /// Copies of slots taken out of the queue (drop-oldest pumps, and the
    /// async token in flight), so the queue never waits on delivery.
    private let chunk: UnsafeMutableRawPointer
    static let chunkSlots = 32
    /// The C view of the async token in flight: valid until its completion.
    let inFlightView: UnsafeMutablePointer<dfm_token>
    let inFlightSlot: UnsafeMutableRawPointer
    let completion = Locked<CompletionState>(CompletionState())

    /// Where a dfm_token's value union starts: the fast path copies the
    /// union as two words.  (A stored constant: a static would cost a lazy
    /// initialisation check per token.)
    let valueWordsOffset =
        MemoryLayout<dfm_token>.offset(of: \dfm_token.data)!
        + MemoryLayout<dfm_value>.offset(of: \dfm_value.as)!

    /// Set by the C layer: the reference that `dfm_runner_destroy` gives up.
    var handleReference: Unmanaged<RunnerCore>?

    init(
        mode: Mode, routes: RouteTable, settings: QueueSettings = QueueSettings(),
        executor: ExecutorTarget? = nil
    ) throws(DFMError) {
        self.mode = mode
        self.routesStorage = routes
        self.routes = routes
        self.routeIndex = routes.index
        self.settings = settings
        self.executor = executor

        // A direct runner never queues; it gets the smallest queue so that
        // the queue is never optional on the hot paths.
        guard let queue = SlotQueue(capacity: mode == .direct ? 1 : settings.capacity) else {
            throw DFMError(.noMemory, "could not allocate the runner's queue")
        }
        self.queue = queue
        if settings.useWakeFD {
            let fd = cdfm_wake_fd_create()
            guard fd >= 0 else {
                throw DFMError(
                    .noMemory, "could not create the wake eventfd (errno \(errno))")
            }
            wakeFD = fd
        } else {
            wakeFD = -1
        }
        if case .block = settings.overflow, settings.capacity > 0 {
            waiter = cdfm_waiter_create()
        } else {
            waiter = nil
        }
        if settings.overflow == .dropOldest && settings.capacity > 0 {
            dropLock = Lock()
        } else {
            dropLock = nil
        }
        signals = mode == .executor || settings.useWakeFD || settings.notify.isSet
        words = UnsafeMutableRawPointer.allocate(byteCount: Word.bytes, alignment: 64)
        words.initializeMemory(as: UInt64.self, repeating: 0, count: Word.bytes / 8)
        chunk = .allocate(byteCount: RunnerCore.chunkSlots * Slot.size, alignment: 64)
        inFlightSlot = .allocate(byteCount: Slot.size, alignment: 64)
        inFlightView = .allocate(capacity: 1)
        inFlightView.initialize(to: dfm_token())

        if mode != .direct { id = Registry.shared.register(self) }
    }

    deinit {
        queue.destroy()
        dropLock?.destroy()
        cdfm_wake_fd_close(wakeFD)
        cdfm_waiter_destroy(waiter)
        words.deallocate()
        chunk.deallocate()
        inFlightSlot.deallocate()
        inFlightView.deinitialize(count: 1)
        inFlightView.deallocate()
        completion.destroy()
    }

    // MARK: Words

    /// Offsets of the shared words (bytes).  Counters the consumer writes
    /// sit apart from those producers write.
    enum Word {
        // Written by the consumer (one thread at a time).
        static let delivered = 0
        static let failed = 8
        static let dropped = 16
        static let discarded = 24
        static let highWater = 32
        // Written by producers and by other threads.
        static let rejected = 64
        static let directDispatched = 72
        static let closed = 80
        static let requests = 88
        static let destroyed = 96
        static let lateCompletions = 104
        // Roles.
        static let owner = 128
        static let consumer = 136
        static let missedTurn = 144
        static let bytes = 192
    }

    @inline(__always)
    func word(_ offset: Int) -> UnsafeMutablePointer<UInt64> {
        (words + offset).assumingMemoryBound(to: UInt64.self)
    }

    /// Adds to a counter.  Relaxed: counters are statistics; nothing is
    /// ordered by them.
    @inline(__always)
    func count(_ offset: Int, _ amount: Int) {
        if amount != 0 { cdfm_fetch_add_relaxed(word(offset), UInt64(amount)) }
    }

    static let requestDiscard: UInt64 = 1
    static let requestDestroy: UInt64 = 2

    var isDestroyed: Bool { cdfm_load_relaxed(word(Word.destroyed)) != 0 }

    /// Whether producers must tell an idle consumer about new tokens.
    let signals: Bool

    // MARK: Dispatch

    /// Accepts a batch of C tokens, all or nothing.
    func dispatch(_ tokens: UnsafePointer<dfm_token>, count: Int) -> DFMError? {
        if count == 1 {
            switch dispatchCommon(tokens) {
            case .accepted: return nil
            case .callbackFailed: return RunnerCore.oneFailed()
            case .notTaken: break
            }
        }
        return dispatchGeneral(tokens, count: count)
    }

    /// `dispatch` without the common-token attempt, for a caller that has
    /// made it already (the C entry point).
    func dispatchGeneral(_ tokens: UnsafePointer<dfm_token>, count: Int) -> DFMError? {
        if mode == .direct { return dispatchDirect(tokens, count: count) }
        return dispatchBatch(tokens, count: count)
    }

    /// What `dispatchCommon` did with a token.
    enum CommonDispatch {
        /// Queued, or delivered by a direct runner whose callback succeeded.
        case accepted
        /// A direct runner's callback failed (reported, counted, released).
        case callbackFailed
        /// Not a common token, or the queue refused it: nothing was done,
        /// and the general path decides and explains.
        case notTaken
    }

    /// One token of the common kind (see CommonToken), measured in one
    /// pass: delivered at once by a direct runner, or written into a queue
    /// without the drop lock.  The C entry point calls this first, so the
    /// usual dispatch builds no error value at all.
    @inline(__always)
    func dispatchCommon(_ token: UnsafePointer<dfm_token>) -> CommonDispatch {
        guard let common = CommonToken(token, routes: routeIndex) else { return .notTaken }
        if mode == .direct {
            if cdfm_load_relaxed(word(Word.closed)) != 0 { return .notTaken }
            return deliverDirectOne(token, route: common.route, wordValue: true)
                ? .accepted : .callbackFailed
        }
        if dropLock == nil && enqueueCommon(token, common) { return .accepted }
        return .notTaken
    }

    /// Writes a common token into the next slot.  Returns false, having
    /// written nothing, when the queue refuses it (closed, full, a segment
    /// to allocate): the general path then retries and reports.
    @inline(__always)
    private func enqueueCommon(_ token: UnsafePointer<dfm_token>, _ common: CommonToken) -> Bool {
        guard let (index, slot) = queue.reserveOne() else { return false }

        let depth = token.pointee.frame.depth
        let nodeKind = token.pointee.source_node.kind.rawValue
        let flags =
            (common.placeInterned ? Slot.flagPlaceInterned : 0)
            | (token.pointee.frame.is_stop ? Slot.flagStop : 0)
        let header =
            UInt64(common.route) | UInt64(token.pointee.data.kind.rawValue) << 16
            | UInt64(nodeKind) << 24 | UInt64(flags) << 32 | UInt64(depth) << 40
            | UInt64(common.site.length) << 48 | UInt64(common.place.length) << 56
        slot.storeBytes(of: header, toByteOffset: Slot.route, as: UInt64.self)
        let node = nodeKind == DFM_NODE_INT.rawValue ? token.pointee.source_node.id : 0
        slot.storeBytes(of: node, toByteOffset: Slot.node, as: Int64.self)
        let value = UnsafeRawPointer(token) + valueWordsOffset
        slot.storeBytes(of: value.load(as: UInt64.self), toByteOffset: Slot.value0, as: UInt64.self)
        slot.storeBytes(
            of: value.load(fromByteOffset: 8, as: UInt64.self), toByteOffset: Slot.value1,
            as: UInt64.self)

        // The blob: levels, then the site and (unless interned) the place as
        // whole words; at most 8 levels and two words fit in its 88 bytes.
        var blob = slot + Slot.blob
        if depth > 0 {
            // Two levels a step (frames are mostly one or two deep): an odd
            // first level, then pairs.
            let levels = UnsafeRawPointer(token.pointee.frame.levels.unsafelyUnwrapped)
            var offset = 0
            let bytes = depth &* 8
            if depth & 1 != 0 {
                blob.storeBytes(of: levels.load(as: UInt64.self), as: UInt64.self)
                offset = 8
            }
            while offset < bytes {
                let first = levels.load(fromByteOffset: offset, as: UInt64.self)
                let second = levels.load(fromByteOffset: offset &+ 8, as: UInt64.self)
                blob.storeBytes(of: first, toByteOffset: offset, as: UInt64.self)
                blob.storeBytes(of: second, toByteOffset: offset &+ 8, as: UInt64.self)
                offset &+= 16
            }
            blob += bytes
        }
        blob.storeBytes(of: common.site.word, as: UInt64.self)
        if !common.placeInterned {
            blob.storeBytes(
                of: common.place.word, toByteOffset: common.site.length &+ 1, as: UInt64.self)
        }

        queue.publish(slot, index: index)
        if signals { signalIfArmed() }
        return true
    }

    /// Every batch but the common single small token.
    @inline(never)
    private func dispatchBatch(_ tokens: UnsafePointer<dfm_token>, count: Int) -> DFMError? {
        var shape = TokenShape()

        // Pass 1: validate and measure.  A batch with one malformed token
        // is refused whole, before anything is reserved.
        var spills = 0
        for index in 0..<count {
            if let problem = TokenCodec.check(tokens + index, routes: routeIndex, into: &shape) {
                return DFMError(.invalidArgument, "token \(index): \(problem)")
            }
            if !shape.fitsInline(depth: Int(tokens[index].frame.depth)) { spills += 1 }
        }
        if spills == 0 { return enqueue(tokens, count: count, spills: nil) }

        // Tokens too large for a slot get their buffers now, so that nothing
        // can fail after the slots are reserved.
        return withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: count) {
            buffers in
            for index in 0..<count {
                _ = TokenCodec.check(tokens + index, routes: routeIndex, into: &shape)
                let depth = Int(tokens[index].frame.depth)
                if shape.fitsInline(depth: depth) {
                    buffers[index] = nil
                    continue
                }
                guard let buffer = queue.spill.take(SpillHeader.size + shape.blobSize(depth: depth))
                else {
                    for earlier in 0..<index { if let b = buffers[earlier] { queue.spill.give(b) } }
                    return DFMError(
                        .noMemory,
                        "token \(index): could not allocate \(shape.blobSize(depth: depth)) bytes")
                }
                buffers[index] = buffer
            }
            let problem = enqueue(tokens, count: count, spills: buffers.baseAddress)
            if problem != nil {
                for index in 0..<count { if let b = buffers[index] { queue.spill.give(b) } }
            }
            return problem
        }
    }

    /// Pass 2: reserve, write, publish, signal.
    @inline(__always)
    private func enqueue(
        _ tokens: UnsafePointer<dfm_token>, count: Int,
        spills: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> DFMError? {
        if let dropLock {
            // The releases of dropped payloads are host code: collected
            // under the lock, called after it.
            var releases: [ObjectRelease] = []
            let outcome = dropLock.withLock {
                enqueueDroppingOldest(tokens, count, spills, releasing: &releases)
            }
            for (pointer, release) in releases { release(pointer) }
            return outcome
        }
        let total = UInt64(count)
        var first: UInt64
        switch queue.reserve(total) {
        case .reserved(let index):
            first = index
        case .closed:
            return refuse(.closed, count, "the runner is stopped; \(count) token(s) were refused")
        case .noMemory:
            return refuse(.noMemory, count, "could not allocate a queue segment")
        case .full(let pending):
            if case .block(let timeout) = settings.overflow, queue.bounded {
                switch waitForRoom(count: total, timeout: timeout) {
                case .success(let index): first = index
                case .failure(let error): return error
                }
            } else {
                return refuseFull(pending: pending, count: count)
            }
        }
        write(tokens, count: count, spills: spills, at: first)
        return nil
    }

    @inline(__always)
    private func write(
        _ tokens: UnsafePointer<dfm_token>, count: Int,
        spills: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, at first: UInt64
    ) {
        var shape = TokenShape()
        for index in 0..<count {
            let token = tokens + index
            // Measured again instead of kept from pass 1: re-reading a few
            // short strings is cheaper than storing shapes for a batch.
            _ = TokenCodec.check(token, routes: routeIndex, into: &shape)
            let slot = queue.slot(first &+ UInt64(index))
            TokenCodec.write(token, shape: shape, slot: slot, spill: spills?[index])
            queue.publish(slot, index: first &+ UInt64(index))
        }
        if signals { signalIfArmed() }
    }

    /// A bounded queue that is full refuses with `queueFull`; an unbounded
    /// one at the limit of its directory with `noMemory` (the header's
    /// promise: unbounded queues are full only when memory runs out).
    private func refuseFull(pending: UInt64, count: Int) -> DFMError {
        refuse(
            queue.bounded ? .queueFull : .noMemory, count,
            fullMessage(pending: pending, count: count))
    }

    private func fullMessage(pending: UInt64, count: Int) -> String {
        let capacity = queue.limit
        if queue.bounded {
            return "the queue is full (capacity \(capacity) tokens, \(pending) pending); the batch "
                + "of \(count) token(s) was refused"
        }
        return "the unbounded queue reached its hard limit of \(capacity) pending tokens; the "
            + "batch of \(count) token(s) was refused (pump to make room)"
    }

    private func refuse(_ status: Status, _ count: Int, _ message: String) -> DFMError {
        self.count(Word.rejected, count)
        return DFMError(status, message)
    }

    /// DFM_OVERFLOW_BLOCK: wait until the consumer makes room.
    private func waitForRoom(count: UInt64, timeout: UInt64?) -> Result<UInt64, DFMError> {
        let me = cdfm_thread_id()
        if cdfm_load_relaxed(word(Word.owner)) == me || cdfm_get_current_runner() == selfPointer {
            return .failure(
                refuse(
                    .wrongThread, Int(count),
                    "a blocking dispatch on the runner's owner thread would deadlock: that thread "
                        + "is the one that makes room"))
        }
        guard count <= queue.limit else {
            return .failure(
                refuse(
                    .queueFull, Int(count),
                    fullMessage(pending: queue.pendingCount, count: Int(count))))
        }
        let deadline = timeout.map { cdfm_now_ns() &+ $0 } ?? 0
        let waiter = self.waiter.unsafelyUnwrapped
        cdfm_waiter_lock(waiter)
        // Seq_cst: half of the Dekker pair described in publishHead().
        cdfm_fetch_add_seq_cst(queue.waitersWord, 1)
        var outcome: Result<UInt64, DFMError>
        while true {
            switch queue.reserve(count) {
            case .reserved(let index):
                outcome = .success(index)
            case .closed:
                outcome = .failure(refuse(.closed, Int(count), "the runner was stopped while the "
                    + "dispatch waited for room; \(count) token(s) were refused"))
            case .noMemory:
                outcome = .failure(
                    refuse(.noMemory, Int(count), "could not allocate a queue segment"))
            case .full(let pending):
                if cdfm_waiter_wait(waiter, deadline) { continue }
                // One last look after the deadline, then give up.
                if case .reserved(let index) = queue.reserve(count) {
                    outcome = .success(index)
                    break
                }
                outcome = .failure(
                    refuse(
                        .timedOut, Int(count),
                        "waited \(timeout ?? 0) ns for room (capacity \(queue.limit), \(pending) "
                            + "pending); \(count) token(s) were refused"))
            }
            break
        }
        cdfm_fetch_sub_seq_cst(queue.waitersWord, 1)
        cdfm_waiter_unlock(waiter)
        return outcome
    }

    /// Wakes producers blocked in waitForRoom.
    func wakeBlockedProducers() {
        guard let waiter else { return }
        cdfm_waiter_lock(waiter)
        cdfm_waiter_broadcast(waiter)
        cdfm_waiter_unlock(waiter)
    }

    /// DFM_OVERFLOW_DROP_OLDEST; the caller holds the drop lock, which also
    /// serialises the consumer's moves (see pumpDroppingOldest).
    private func enqueueDroppingOldest(
        _ tokens: UnsafePointer<dfm_token>, _ count: Int,
        _ spills: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
        releasing releases: inout [ObjectRelease]
    ) -> DFMError? {
        if queue.isClosed {
            return refuse(.closed, count, "the runner is stopped; \(count) token(s) were refused")
        }
        guard UInt64(count) <= queue.limit else {
            return refuse(
                .queueFull, count,
                "a batch of \(count) tokens can never fit a queue of capacity \(queue.limit)")
        }
        let pending = queue.pendingFromConsumer
        let excess = Int(pending &+ UInt64(count)) - Int(queue.limit)
        if excess > 0 {
            for _ in 0..<excess {
                // Every reserved slot is written (writers hold this lock).
                guard let slot = queue.peek() else { break }
                if let release = payloadRelease(slot) { releases.append(release) }
                releaseSpill(slot)
                queue.advance()
            }
            queue.publishHead()
            self.count(Word.discarded, excess)
        }
        return enqueueUnlocked(tokens, count, spills)
    }

    private func enqueueUnlocked(
        _ tokens: UnsafePointer<dfm_token>, _ count: Int,
        _ spills: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> DFMError? {
        switch queue.reserve(UInt64(count)) {
        case .reserved(let first):
            write(tokens, count: count, spills: spills, at: first)
            return nil
        case .closed:
            return refuse(.closed, count, "the runner is stopped; \(count) token(s) were refused")
        case .noMemory:
            return refuse(.noMemory, count, "could not allocate a queue segment")
        case .full(let pending):
            return refuseFull(pending: pending, count: count)
        }
    }

    // MARK: Wake-ups

    /// Producer side of the edge protocol: after publishing, if the consumer
    /// said it was idle (armed), exactly one producer takes the arm and
    /// wakes it.
    @inline(__always)
    func signalIfArmed() {
        let armed = queue.armedWord
        // Seq_cst fence: our slot stores must be ordered before the load of
        // `armed`, against the consumer's store of `armed` and its re-read
        // of the tail (Dekker); otherwise both could miss each other.
        cdfm_fence_seq_cst()
        if cdfm_load_relaxed(armed) != 0 && cdfm_exchange_acq_rel(armed, 0) != 0 {
            wake()
        }
    }

    /// Tells the consumer there is work: the wake fd and notify, or a work
    /// item for the executor.
    func wake() {
        if mode == .executor {
            post()
            return
        }
        if wakeFD >= 0 { cdfm_wake_fd_signal(wakeFD) }
        settings.notify.call()
    }

    /// Consumer side, at the end of a pump: go idle (arm) when nothing is
    /// ready to deliver, re-checking for a token that raced in; or, when
    /// tokens remain ready, say so again (wake fd and notify for a manual
    /// runner, a new work item for an executor runner).  While an async
    /// callback is in flight it does neither: the completion wakes the
    /// runner, and a signal now would only spin the host (a work item that
    /// finds the callback still running would post the next at once).
    func afterConsuming(callbackInFlight: Bool) {
        guard signals, !callbackInFlight else { return }
        let ready = withQueueLock { queue.peek() != nil }
        if !ready {
            cdfm_store_relaxed(queue.armedWord, 1)
            // Seq_cst fence: the other half of the Dekker pair in
            // signalIfArmed (producer: publish, fence, read the arm).  A
            // token published before the fence is seen by the second look
            // below; one published after it finds the arm and wakes us.
            cdfm_fence_seq_cst()
            // A second completion counted before the fence is reported by
            // the work item or pump this wakes (see complete).
            let late = cdfm_load_relaxed(word(Word.lateCompletions)) != 0
            if (late || withQueueLock({ queue.peek() != nil }))
                && cdfm_exchange_acq_rel(queue.armedWord, 0) != 0
            {
                wake()
            }
        } else if mode == .executor {
            post()
        } else {
            // Tokens remain (they arrived during the pump, or the budget
            // ran out): the host must hear that another pump is worth it,
            // or a host that waits for the signal would wait forever.
            if wakeFD >= 0 { cdfm_wake_fd_signal(wakeFD) }
            settings.notify.call()
        }
    }

    /// Consumer side, after delivering: make the fd unreadable until the
    /// next signal (afterConsuming then re-arms or signals again).  Only
    /// when the arm was taken, so an idle pump costs no system call; and
    /// after delivery, so the system call is not on the wake-up's path.
    @inline(__always)
    func resetWakeFD() {
        guard wakeFD >= 0 else { return }
        if cdfm_load_relaxed(queue.armedWord) == 0 {
            cdfm_wake_fd_reset(wakeFD)
        }
    }

    // MARK: Roles

    var selfPointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    @inline(__always)
    func acquireConsumer() -> Bool {
        var expected: UInt64 = 0
        // Seq_cst: pairs with requestWord in runRequests (Dekker).
        return cdfm_cas_seq_cst(word(Word.consumer), &expected, 1)
    }

    @inline(__always)
    func releaseConsumer() {
        cdfm_store_seq_cst(word(Word.consumer), 0)
        // Seq_cst load after the seq_cst release of the role: the other
        // half of the Dekker pair in takeTurn.  Either that work item's
        // second try saw the role free, or we see its flag here and post
        // the turn it could not take.
        if mode == .executor && cdfm_load_seq_cst(word(Word.missedTurn)) != 0 {
            repostMissedTurn()
        }
    }

    /// An executor work item's claim on the consumer role.  The role can be
    /// held elsewhere: by the item that posted this one and has not let go
    /// yet (a host executor with several threads runs the new item at once),
    /// or by a stop that is discarding.  The item must not vanish then, or
    /// the runner would sit with tokens pending and nothing posted: it
    /// leaves a flag that the holder reads after letting go.
    func takeTurn() -> Bool {
        if acquireConsumer() { return true }
        // Seq_cst store, then a second try: see releaseConsumer.
        cdfm_store_seq_cst(word(Word.missedTurn), 1)
        return acquireConsumer()
    }

    private func repostMissedTurn() {
        // Acquire-release exchange: one thread takes the flag and posts.
        guard cdfm_exchange_acq_rel(word(Word.missedTurn), 0) != 0, !isDestroyed else { return }
        post()
    }

    /// Checks that the calling thread may pump: not from inside one of our
    /// callbacks, and only on the owner thread (the first that pumped).
    func checkPumpThread(_ operation: String) -> DFMError? {
        if cdfm_get_current_runner() == selfPointer {
            return DFMError(
                .busy, "\(operation) was called from inside one of this runner's own callbacks")
        }
        let me = cdfm_thread_id()
        var owner: UInt64 = 0
        // Acquire-release: the first pump claims the runner once.
        if cdfm_cas_strong(word(Word.owner), &owner, me) || owner == me { return nil }
        return DFMError(
            .wrongThread,
            "\(operation) was called from a thread that does not own the runner (the owner is "
                + "the first thread that pumped it)")
    }

    // MARK: Payloads

    @inline(__always)
    func payloadRelease(_ slot: UnsafeRawPointer) -> ObjectRelease? {
        guard slot.load(fromByteOffset: Slot.valueKind, as: UInt8.self)
            == UInt8(DFM_VALUE_OBJECT.rawValue)
        else { return nil }
        guard let release = slot.load(
            fromByteOffset: Slot.value1,
            as: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?.self)
        else { return nil }
        return (slot.load(fromByteOffset: Slot.value0, as: UnsafeMutableRawPointer?.self), release)
    }

    @inline(__always)
    func releaseSpill(_ slot: UnsafeRawPointer) {
        if slot.load(fromByteOffset: Slot.flags, as: UInt8.self) & Slot.flagSpilled != 0 {
            queue.spill.give(
                slot.load(fromByteOffset: Slot.blob, as: UnsafeMutableRawPointer.self))
        }
    }

    /// Releases what a consumed slot owns: the host's object, our buffer.
    @inline(__always)
    func releaseSlot(_ slot: UnsafeRawPointer) {
        if let (pointer, release) = payloadRelease(slot) { release(pointer) }
        releaseSpill(slot)
    }

    // MARK: Drop-oldest consumption

    /// Moves up to `limit` tokens out of the queue into `chunk`, under the
    /// drop lock (or directly when there is none).  Returns how many.
    func takeChunk(limit: Int, end: UInt64) -> Int {
        let take = { () -> Int in
            var taken = 0
            while taken < limit && self.queue.position < end {
                guard let slot = self.queue.peek() else { break }
                memcpy(self.chunk + taken * Slot.size, slot, Slot.size)
                self.queue.advance()
                taken += 1
            }
            if taken > 0 && self.queue.publishHead() { self.wakeBlockedProducers() }
            return taken
        }
        if let dropLock { return dropLock.withLock { take() } }
        return take()
    }

    var chunkBase: UnsafeMutableRawPointer { chunk }
    var usesDropLock: Bool { dropLock != nil }

    /// Runs `body` with the drop lock held when there is one.
    func withQueueLock<T>(_ body: () -> T) -> T {
        if let dropLock { return dropLock.withLock { body() } }
        return body()
    }
}

/// A host object and the function that releases it.
typealias ObjectRelease = (
    UnsafeMutableRawPointer?, @convention(c) (UnsafeMutableRawPointer?) -> Void
)

/// The async token in flight, and completions that arrived for it.
struct CompletionState {
    var sequence: UInt32 = 0
    var active = false
    var completed = false
    var status: Int32 = 0
    /// The runner gave up waiting: whoever completes must wake it.
    var waiting = false
    /// The runner was destroyed and no pump will come: whoever completes
    /// finishes the token and lets the runner go.
    var abandoned = false
}

