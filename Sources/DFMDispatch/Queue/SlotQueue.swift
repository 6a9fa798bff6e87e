import CDFMShim
import Glibc

/// The multi-producer, single-consumer token queue of a manual or executor
/// runner.
///
/// Producers reserve a contiguous run of slot indexes with one
/// compare-and-swap on `tail`, write their tokens into the slots, and
/// publish each slot by storing its index + 1 in the slot's `seq` word.  The
/// reservation order is a total order consistent with every producer's
/// program order and with any synchronisation between producers, so the
/// pump delivers in dispatch order.
///
/// Slots live in 64 KiB segments of 512 slots, found through a directory
/// (a ring of segment pointers indexed by segment number).  Segments are
/// recycled through a pool, oldest first, so the steady state allocates
/// nothing; see SegmentPool for why the newest one rests.  The directory
/// bounds the number of pending tokens; see `limit`.
///
/// The consumer reads a slot only after it saw `seq == index + 1` with
/// acquire ordering, so it sees everything the producer wrote before its
/// release store.  It frees a segment only after delivering all its slots,
/// and publishes `head` (release) only after clearing the segment's directory
/// entry; a producer reads `head` (acquire) before it decides that a
/// directory entry is free, so it never sees a segment that is being
/// recycled.
///
/// A struct of pointers to heap state: copies share the queue, no method
/// touches a reference count, and the owner calls `destroy()` once.
struct SlotQueue: @unchecked Sendable {
    static let slotsPerSegment: UInt64 = 512
    static let segmentHeader = 128
    static let segmentBytes = segmentHeader + Int(slotsPerSegment) * Slot.size
    /// Set in `tail` by `close()`: later reservations fail with CLOSED.
    static let closedBit: UInt64 = 1 << 63

    // The shared words, each on its own cache line so that producers
    // (tail), the consumer (head) and the wake-up protocol (armed) do not
    // slow each other down.
    private let words: UnsafeMutableRawPointer
    var tailWord: UnsafeMutablePointer<UInt64> { words.assumingMemoryBound(to: UInt64.self) }
    /// Producers' copy of head, on the tail's line (see reserve).
    private var headCopyWord: UnsafeMutablePointer<UInt64> {
        (words + 8).assumingMemoryBound(to: UInt64.self)
    }
    private var headWord: UnsafeMutablePointer<UInt64> {
        (words + 64).assumingMemoryBound(to: UInt64.self)
    }
    /// 1 when the consumer is idle and wants to hear about the next token.
    var armedWord: UnsafeMutablePointer<UInt64> {
        (words + 128).assumingMemoryBound(to: UInt64.self)
    }
    private static let wordBytes = 256

    /// Producers waiting for room (DFM_OVERFLOW_BLOCK).
    var waitersWord: UnsafeMutablePointer<UInt64> {
        (words + 192).assumingMemoryBound(to: UInt64.self)
    }

    private let directory: UnsafeMutablePointer<UInt64>
    private let directoryMask: UInt64
    /// The most tokens that may be pending at once: the capacity of a
    /// bounded queue, or what the directory can address.
    let limit: UInt64
    let bounded: Bool

    private let poolLock = Lock()
    private let pool: UnsafeMutablePointer<SegmentPool>
    let spill = SpillPool()

    /// Consumer state: touched only by the thread that holds the consumer
    /// role (see RunnerCore), so it needs no synchronisation of its own.
    private struct Consumer {
        var position: UInt64 = 0
        var segment: UnsafeMutableRawPointer? = nil
        var segmentNumber: UInt64 = .max
    }

    private let consumer: UnsafeMutablePointer<Consumer>

    /// The consumer position: the index of the next token to deliver.
    var position: UInt64 { consumer.pointee.position }

    /// `capacity` 0 means unbounded (up to what the directory addresses).
    init?(capacity: Int) {
        // (Allocation failures below leave the small state blocks to the
        // process: they are only possible when memory is already gone.)
        let perSegment = Int(SlotQueue.slotsPerSegment)
        var entries = 16
        if capacity == 0 {
            entries = 8192
        } else {
            // Room for the capacity plus a margin: producers may install the
            // next segment before the consumer retired the last one.
            while entries < (capacity + perSegment - 1) / perSegment + 8 { entries <<= 1 }
        }
        guard let directory = calloc(entries, 8) else { return nil }
        guard let words = aligned_alloc(64, SlotQueue.wordBytes) else {
            Glibc.free(directory)
            return nil
        }
        memset(words, 0, SlotQueue.wordBytes)
        self.words = words
        self.pool = .allocate(capacity: 1)
        self.pool.initialize(to: SegmentPool())
        self.consumer = .allocate(capacity: 1)
        self.consumer.initialize(to: Consumer())
        self.directory = directory.assumingMemoryBound(to: UInt64.self)
        self.directoryMask = UInt64(entries - 1)
        self.bounded = capacity != 0
        self.limit =
            capacity == 0 ? UInt64(entries - 8) * SlotQueue.slotsPerSegment : UInt64(capacity)
        cdfm_store_relaxed(armedWord, 1)
    }

    /// Frees every segment and the queue's state.  The owner calls it once,
    /// when no thread can touch the queue any more.
    func destroy() {
        for index in 0...Int(directoryMask) where directory[index] != 0 {
            Glibc.free(UnsafeMutableRawPointer(bitPattern: UInt(directory[index])))
        }
        pool.pointee.freeAll()
        pool.deinitialize(count: 1)
        pool.deallocate()
        consumer.deinitialize(count: 1)
        consumer.deallocate()
        poolLock.destroy()
        spill.destroy()
        Glibc.free(directory)
        Glibc.free(words)
    }

    // MARK: Producers

    enum Reservation {
        case reserved(UInt64)
        case closed
        case full(pending: UInt64)
        case noMemory
    }

    /// Reserves `count` consecutive slots, all or nothing.
    @inline(__always)
    func reserve(_ count: UInt64) -> Reservation {
        // Relaxed: the CAS below re-validates the value.
        var tail = cdfm_load_relaxed(tailWord)
        while true {
            if tail & SlotQueue.closedBit != 0 { return .closed }
            // The producers' copy of head, on the tail's cache line, so that
            // a dispatch does not pull the consumer's line each time.  A
            // stale copy only overestimates what is pending, which is safe.
            // Acquire: pairs with the release below (and, through it, with
            // the consumer's release of head): directory entries cleared
            // before that head was published are seen cleared.
            var head = cdfm_load_acquire(headCopyWord)
            if tail &+ count &- head > limit || head > tail {
                // Acquire: pairs with the consumer's release of `head`.
                head = cdfm_load_acquire(headWord)
                // Release: passes what we saw on to producers that read
                // the copy.  Racing stores may move the copy back a little;
                // any value it ever holds is a head the consumer published.
                cdfm_store_release(headCopyWord, head)
                if head > tail {
                    // Our tail is stale: the consumer already passed it.
                    tail = cdfm_load_relaxed(tailWord)
                    continue
                }
                if tail &+ count &- head > limit { return .full(pending: tail &- head) }
            }
            if !installSegments(from: tail, count: count) { return .noMemory }
            // Acquire-release: orders this reservation after the head we
            // read and before our slot writes (which are themselves
            // published by each slot's release store).
            if cdfm_cas_acq_rel(tailWord, &tail, tail &+ count) { return .reserved(tail) }
        }
    }

    /// Reserves one slot in an installed segment: the single-token fast
    /// path.  Nil when the queue is closed or full, or the slot's segment
    /// still has to be installed; `reserve(1)` then decides.
    @inline(__always)
    func reserveOne() -> (UInt64, UnsafeMutableRawPointer)? {
        // Relaxed: the CAS below re-validates the value.
        var tail = cdfm_load_relaxed(tailWord)
        while true {
            // The closed bit makes the tail huge, so it fails the room test.
            // Acquire on the head copy: see reserve().
            let head = cdfm_load_acquire(headCopyWord)
            guard tail &+ 1 &- head <= limit, head <= tail else { return nil }
            // Acquire: a non-zero entry comes with its segment's memory.  It
            // stays valid once the CAS succeeds: the consumer retires this
            // segment only after consuming the slot we are reserving.
            let entry = cdfm_load_acquire(
                directory + Int((tail / SlotQueue.slotsPerSegment) & directoryMask))
            guard entry != 0 else { return nil }
            // Acquire-release, as in reserve().
            let found = cdfm_cas_value_acq_rel(tailWord, tail, tail &+ 1)
            if found == tail {
                let segment = UnsafeMutableRawPointer(bitPattern: UInt(entry)).unsafelyUnwrapped
                return (
                    tail,
                    segment + SlotQueue.segmentHeader
                        + Int(tail % SlotQueue.slotsPerSegment) * Slot.size
                )
            }
            tail = found
        }
    }

    /// Makes sure the segments that hold slots `[first, first + count)` are
    /// in the directory, so that nothing can fail once slots are reserved.
    @inline(__always)
    private func installSegments(from first: UInt64, count: UInt64) -> Bool {
        let last = (first &+ count &- 1) / SlotQueue.slotsPerSegment
        let number = first / SlotQueue.slotsPerSegment
        // The common case: one segment, already installed.
        if number == last && cdfm_load_acquire(directory + Int(number & directoryMask)) != 0 {
            return true
        }
        return installSegmentsSlowly(from: number, to: last)
    }

    @inline(never)
    private func installSegmentsSlowly(from first: UInt64, to last: UInt64) -> Bool {
        var number = first
        while number <= last {
            // Acquire: a non-zero entry must come with its segment's memory.
            if cdfm_load_acquire(directory + Int(number & directoryMask)) == 0 {
                if !install(number) { return false }
            }
            number &+= 1
        }
        return true
    }

    private func install(_ number: UInt64) -> Bool {
        // Under the pool's lock, taken once per 512 tokens: the lock also
        // hands over the segment's memory as its last owner left it.
        let now = cdfm_now_ns()
        guard let fresh = poolLock.withLock({ pool.pointee.take(at: now) }) else { return false }
        var expected: UInt64 = 0
        // Strong CAS, acquire-release: publishes the segment to whoever
        // loads the entry with acquire.  If another producer won, keep its
        // segment and return ours to the pool.
        if !cdfm_cas_strong(
            directory + Int(number & directoryMask), &expected, UInt64(UInt(bitPattern: fresh)))
        {
            // It was never written: cold at once.
            poolLock.withLock { pool.pointee.give(fresh, at: 0) }
        }
        return true
    }

    /// The slot of a reserved index (its segment was installed by reserve).
    @inline(__always)
    func slot(_ index: UInt64) -> UnsafeMutableRawPointer {
        let number = index / SlotQueue.slotsPerSegment
        let entry = cdfm_load_acquire(directory + Int(number & directoryMask))
        let segment = UnsafeMutableRawPointer(bitPattern: UInt(entry)).unsafelyUnwrapped
        return segment + SlotQueue.segmentHeader
            + Int(index % SlotQueue.slotsPerSegment) * Slot.size
    }

    /// Publishes a written slot.
    @inline(__always)
    func publish(_ slot: UnsafeMutableRawPointer, index: UInt64) {
        // Release: the consumer's acquire load of seq sees the whole token.
        cdfm_store_release(slot.assumingMemoryBound(to: UInt64.self), index &+ 1)
    }

    /// Refuses every later reservation.  Returns false if already closed.
    @discardableResult
    func close() -> Bool {
        // Acquire-release: a producer that reserved before this sees the
        // queue open; one after sees it closed.  Nothing else is ordered.
        cdfm_fetch_or_acq_rel(tailWord, SlotQueue.closedBit) & SlotQueue.closedBit == 0
    }

    var isClosed: Bool { cdfm_load_relaxed(tailWord) & SlotQueue.closedBit != 0 }

    /// Tokens ever accepted.
    var reservedCount: UInt64 { cdfm_load_relaxed(tailWord) & ~SlotQueue.closedBit }

    /// Tokens reserved and not yet consumed (relaxed: a snapshot for stats).
    var pendingCount: UInt64 {
        let head = cdfm_load_relaxed(headWord)
        let tail = cdfm_load_relaxed(tailWord) & ~SlotQueue.closedBit
        return tail > head ? tail - head : 0
    }

    // MARK: Consumer (one thread at a time: the holder of the consumer role)

    /// The end of the current snapshot: every index below it was reserved.
    @inline(__always)
    func snapshotEnd() -> UInt64 {
        // Acquire is not needed for the slots (each seq is read with
        // acquire); relaxed gives the reservation count.
        cdfm_load_relaxed(tailWord) & ~SlotQueue.closedBit
    }

    /// The slot at the consumer position if its token is fully written.
    @inline(__always)
    func peek() -> UnsafeMutableRawPointer? {
        let position = consumer.pointee.position
        let number = position / SlotQueue.slotsPerSegment
        if number != consumer.pointee.segmentNumber {
            // Acquire: see the segment's memory as its installer left it.
            let entry = cdfm_load_acquire(directory + Int(number & directoryMask))
            guard entry != 0 else { return nil }
            consumer.pointee.segment = UnsafeMutableRawPointer(bitPattern: UInt(entry))
            consumer.pointee.segmentNumber = number
        }
        let slot =
            consumer.pointee.segment.unsafelyUnwrapped + SlotQueue.segmentHeader
            + Int(position % SlotQueue.slotsPerSegment) * Slot.size
        // Acquire: pairs with the producer's release in publish().
        guard cdfm_load_acquire(slot.assumingMemoryBound(to: UInt64.self)) == position &+ 1 else {
            return nil
        }
        return slot
    }

    /// Starts loading the slot `distance` places past `slot` (the one peek()
    /// returned), when it is below `end` (reserved, so nearly always
    /// written: the hint never pulls a line the producer is about to write)
    /// and in the same segment.
    @inline(__always)
    func prefetch(ahead distance: UInt64, of slot: UnsafeMutableRawPointer, end: UInt64) {
        let position = consumer.pointee.position
        guard position &+ distance < end,
            position % SlotQueue.slotsPerSegment < SlotQueue.slotsPerSegment &- distance
        else { return }
        cdfm_prefetch_read(slot + Int(distance) * Slot.size)
    }

    /// Moves past the slot returned by peek(); retires a finished segment.
    @inline(__always)
    func advance() {
        consumer.pointee.position &+= 1
        if consumer.pointee.position % SlotQueue.slotsPerSegment == 0 { retireSegment() }
    }

    /// `advance()` for the pump's loop: moves past the slot and returns
    /// true when it was the last of its segment, which the caller then
    /// retires out of line (a call from inside the loop would copy this
    /// struct out of the runner on every token).
    @inline(__always)
    func step() -> Bool {
        consumer.pointee.position &+= 1
        return consumer.pointee.position % SlotQueue.slotsPerSegment == 0
    }

    func retireSegment() {
        let number = consumer.pointee.position / SlotQueue.slotsPerSegment - 1
        // Release: ordered before the head store that lets producers reuse
        // the entry (see the type's comment).
        cdfm_store_release(directory + Int(number & directoryMask), 0)
        if let segment = consumer.pointee.segment {
            let now = cdfm_now_ns()
            poolLock.withLock { pool.pointee.give(segment, at: now) }
        }
        consumer.pointee.segment = nil
        consumer.pointee.segmentNumber = .max
    }

    /// Tells producers how far the consumer got (frees room in a bounded
    /// queue).  Returns true when producers are waiting for room.
    @inline(__always)
    @discardableResult
    func publishHead() -> Bool {
        // Release: after the directory entries retired above.
        cdfm_store_release(headWord, consumer.pointee.position)
        guard bounded else { return false }
        // Dekker with a waiting producer: it increments `waiters` (seq_cst)
        // and then re-reads head; we store head and then read waiters.  The
        // fence makes sure at least one of us sees the other.
        cdfm_fence_seq_cst()
        return cdfm_load_relaxed(waitersWord) != 0
    }

    /// Consumer-side pending count: reserved beyond the consumer position.
    var pendingFromConsumer: UInt64 { snapshotEnd() &- position }

    // MARK: Drop-oldest support (callers hold the runner's drop lock)

    /// Head as published, for the drop-oldest bookkeeping.
    var publishedHead: UInt64 { cdfm_load_acquire(headWord) }
}

/// Free segments, behind the queue's lock: the consumer gives each one back
/// when it has delivered its slots, and producers take them, oldest first.
///
/// The newest few rest before they are taken again.  The consumer has just
/// read the newest, so its cache lines sit in that core's nearest caches;
/// a producer on another core that writes into it at once waits for each
/// line to leave that core, and a single-producer stream ran about a third
/// slower that way (docs/DESIGN.md).  Four resting gained as much as 16 or
/// 40 in the same measurements, one a little less.
///
/// Rest is needed only while segments come back quickly, so a segment
/// given back `coldAfter` (1 ms) ago or longer is taken even with fewer
/// than four behind it.  At 2 M tokens/s or more, four newer segments
/// come back sooner than that and nothing changes; a slower queue reuses
/// the one or two segments it has instead of cycling through six, and so
/// keeps 128 KiB rather than 384 KiB (B2's peak RSS).
///
/// Keeps every segment it is given back, up to 1024 (64 MiB): a queue
/// retains the memory of its largest burst so that the next burst
/// allocates nothing (docs/KNOWN_ISSUES.md).
struct SegmentPool {
    /// A segment and when it was given back (cdfm_now_ns; 0: never written).
    private struct Entry {
        let segment: UnsafeMutableRawPointer
        let givenAt: UInt64
    }

    /// A ring, oldest at `first`; its size is a power of two.
    private var ring: [Entry?] = Array(repeating: nil, count: 16)
    private var first = 0
    private var count = 0
    private static let keptAtMost = 1024
    static let rested = 4
    static let coldAfter: UInt64 = 1_000_000

    init() {}

    /// A segment for a producer, `now` being cdfm_now_ns(): the oldest
    /// given back, once it has rested; else a fresh one (nil when out of
    /// memory).
    mutating func take(at now: UInt64) -> UnsafeMutableRawPointer? {
        // `now` was read before the lock, so it may be older than a time
        // given back since: such a segment is recent, not cold.
        if count > 0, let oldest = ring[first],
            count > SegmentPool.rested
                || (now > oldest.givenAt && now &- oldest.givenAt >= SegmentPool.coldAfter)
        {
            // A recycled segment's seq words hold indexes + 1 of segments
            // it served before; segment numbers only grow, so none of them
            // can equal an index + 1 of its next use.
            ring[first] = nil
            first = (first &+ 1) & (ring.count &- 1)
            count &-= 1
            return oldest.segment
        }
        guard let fresh = aligned_alloc(128, SlotQueue.segmentBytes) else { return nil }
        // Fresh memory may hold anything, even another queue's indexes: zero
        // the seq words (index + 1 is never 0).
        var offset = SlotQueue.segmentHeader
        while offset < SlotQueue.segmentBytes {
            fresh.storeBytes(of: 0, toByteOffset: offset, as: UInt64.self)
            offset += Slot.size
        }
        return fresh
    }

    /// Takes back a segment whose slots were all delivered, `now` being
    /// cdfm_now_ns() (0 for one that was never written).
    mutating func give(_ segment: UnsafeMutableRawPointer, at now: UInt64) {
        if count == SegmentPool.keptAtMost {
            Glibc.free(segment)
            return
        }
        if count == ring.count { grow() }
        ring[(first &+ count) & (ring.count &- 1)] = Entry(segment: segment, givenAt: now)
        count &+= 1
    }

    /// Doubles the ring, oldest first again.  Only while a burst is larger
    /// than any before it.
    private mutating func grow() {
        var larger = [Entry?](repeating: nil, count: ring.count * 2)
        for index in 0..<count { larger[index] = ring[(first &+ index) & (ring.count &- 1)] }
        ring = larger
        first = 0
    }

    mutating func freeAll() {
        while count > 0 {
            Glibc.free(ring[first]?.segment)
            ring[first] = nil
            first = (first &+ 1) & (ring.count &- 1)
            count &-= 1
        }
    }
}
