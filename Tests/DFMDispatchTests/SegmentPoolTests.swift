import Glibc
import Testing

@testable import DFMDispatch

/// Segments the test owns until it gives them to a pool.
private func segments(_ count: Int) -> [UnsafeMutableRawPointer] {
    (0..<count).map { _ in aligned_alloc(128, SlotQueue.segmentBytes)! }
}

/// The clock of the tests that do not let time pass: any value above 0.
private let now: UInt64 = 5_000_000_000

/// Takes `count` segments from `pool` at `now` (fewer if it returns nil).
private func take(_ count: Int, from pool: inout SegmentPool) -> [UnsafeMutableRawPointer] {
    var taken: [UnsafeMutableRawPointer] = []
    while taken.count < count, let segment = pool.take(at: now) { taken.append(segment) }
    return taken
}

@Suite("Segment pool")
struct SegmentPoolTests {
    @Test("a given-back segment rests behind four others before it is reused")
    func newestRests() throws {
        var pool = SegmentPool()
        let given = segments(SegmentPool.rested + 1)
        for segment in given { pool.give(segment, at: now) }

        // Five in the pool: the oldest comes back first.
        let first = pool.take(at: now)
        #expect(first == given[0])
        // Four left: they all rest, so the next take is a fresh segment.
        let taken = pool.take(at: now)
        let fresh = try #require(taken)
        #expect(!given.contains(fresh))
        pool.give(fresh, at: now)
        // Now five again, oldest first: given[1] was given before fresh.
        let second = pool.take(at: now)
        #expect(second == given[1])
        Glibc.free(given[0])
        Glibc.free(given[1])
        pool.freeAll()
    }

    @Test("a fresh segment's seq words are zero")
    func freshIsZeroed() throws {
        var pool = SegmentPool()
        let taken = pool.take(at: now)
        let fresh = try #require(taken)
        var offset = SlotQueue.segmentHeader
        var nonZero = 0
        while offset < SlotQueue.segmentBytes {
            if fresh.load(fromByteOffset: offset, as: UInt64.self) != 0 { nonZero += 1 }
            offset += Slot.size
        }
        #expect(nonZero == 0)
        Glibc.free(fresh)
    }

    @Test("the ring grows past its first 16 entries and keeps the order")
    func growsInOrder() {
        var pool = SegmentPool()
        let given = segments(100)
        for segment in given { pool.give(segment, at: now) }
        let taken = take(100 - SegmentPool.rested, from: &pool)
        #expect(taken == Array(given.prefix(100 - SegmentPool.rested)))
        for segment in taken { Glibc.free(segment) }
        pool.freeAll()
    }

    @Test("past 1024 kept segments, a given-back one is freed, not kept")
    func keepsAtMost1024() {
        var pool = SegmentPool()
        let given = segments(1030)
        for segment in given { pool.give(segment, at: now) }
        // The first 1024 stay, in order; the last six were freed on give.
        let taken = take(1024 - SegmentPool.rested, from: &pool)
        #expect(taken == Array(given.prefix(1024 - SegmentPool.rested)))
        // Four rest now, so the next take is fresh; a pool that had kept
        // all 1030 would hand out given[1020] instead.
        let next = pool.take(at: now)
        #expect(next != nil && next != given[1020])
        for segment in taken { Glibc.free(segment) }
        if let next { Glibc.free(next) }
        pool.freeAll()
    }

    @Test("a segment given back a millisecond ago is taken without four behind it")
    func coldSegmentIsReused() throws {
        var pool = SegmentPool()
        let given = segments(2)
        pool.give(given[0], at: now)
        pool.give(given[1], at: now &+ 10)

        // Just under a millisecond: both still rest, so a fresh one comes.
        let early = pool.take(at: now &+ SegmentPool.coldAfter &- 1)
        let fresh = try #require(early)
        #expect(!given.contains(fresh))
        // A millisecond after the first was given back: it is taken, the
        // second (given 10 ns later) still rests.
        #expect(pool.take(at: now &+ SegmentPool.coldAfter) == given[0])
        let next = pool.take(at: now &+ SegmentPool.coldAfter)
        #expect(next != nil && next != given[1])
        #expect(pool.take(at: now &+ SegmentPool.coldAfter &+ 10) == given[1])
        Glibc.free(fresh)
        Glibc.free(given[0])
        Glibc.free(given[1])
        if let next { Glibc.free(next) }
        pool.freeAll()
    }

    @Test("a clock read before a segment was given back does not make it cold")
    func staleClockIsNotCold() throws {
        var pool = SegmentPool()
        let given = segments(1)
        pool.give(given[0], at: now &+ 10)
        // A producer that read the clock, then waited for the lock while
        // the pump gave the segment back, holds an earlier time.
        let taken = pool.take(at: now)
        let fresh = try #require(taken)
        #expect(fresh != given[0])
        Glibc.free(fresh)
        pool.freeAll()
    }

    @Test("a segment that was never written is cold at once")
    func unwrittenIsCold() {
        var pool = SegmentPool()
        let given = segments(1)
        pool.give(given[0], at: 0)
        #expect(pool.take(at: now) == given[0])
        Glibc.free(given[0])
    }

    @Test("the ring keeps each segment's time when it grows")
    func growKeepsTimes() {
        var pool = SegmentPool()
        let given = segments(17)
        // Sixteen fill the first ring; the seventeenth grows it.
        for segment in given { pool.give(segment, at: now) }
        // Nothing is cold yet: thirteen come back by count, then four rest.
        let taken = take(13, from: &pool)
        #expect(taken == Array(given.prefix(13)))
        // A ring that lost the times (0 is cold) would hand out given[13].
        let next = pool.take(at: now &+ 20)
        #expect(next != nil && !given.contains(next!))
        for segment in taken { Glibc.free(segment) }
        if let next { Glibc.free(next) }
        pool.freeAll()
    }
}
