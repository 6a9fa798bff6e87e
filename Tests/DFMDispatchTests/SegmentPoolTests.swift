import Glibc
import Testing

@testable import DFMDispatch

/// Segments the test owns until it gives them to a pool.
private func segments(_ count: Int) -> [UnsafeMutableRawPointer] {
    (0..<count).map { _ in aligned_alloc(128, SlotQueue.segmentBytes)! }
}

/// Takes `count` segments from `pool` (fewer if it returns nil).
private func take(_ count: Int, from pool: inout SegmentPool) -> [UnsafeMutableRawPointer] {
    var taken: [UnsafeMutableRawPointer] = []
    while taken.count < count, let segment = pool.take() { taken.append(segment) }
    return taken
}

@Suite("Segment pool")
struct SegmentPoolTests {
    @Test("a given-back segment rests behind four others before it is reused")
    func newestRests() throws {
        var pool = SegmentPool()
        let given = segments(SegmentPool.rested + 1)
        for segment in given { pool.give(segment) }

        // Five in the pool: the oldest comes back first.
        let first = pool.take()
        #expect(first == given[0])
        // Four left: they all rest, so the next take is a fresh segment.
        let taken = pool.take()
        let fresh = try #require(taken)
        #expect(!given.contains(fresh))
        pool.give(fresh)
        // Now five again, oldest first: given[1] was given before fresh.
        let second = pool.take()
        #expect(second == given[1])
        Glibc.free(given[0])
        Glibc.free(given[1])
        pool.freeAll()
    }

    @Test("a fresh segment's seq words are zero")
    func freshIsZeroed() throws {
        var pool = SegmentPool()
        let taken = pool.take()
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
        for segment in given { pool.give(segment) }
        let taken = take(100 - SegmentPool.rested, from: &pool)
        #expect(taken == Array(given.prefix(100 - SegmentPool.rested)))
        for segment in taken { Glibc.free(segment) }
        pool.freeAll()
    }

    @Test("past 1024 kept segments, a given-back one is freed, not kept")
    func keepsAtMost1024() {
        var pool = SegmentPool()
        let given = segments(1030)
        for segment in given { pool.give(segment) }
        // The first 1024 stay, in order; the last six were freed on give.
        let taken = take(1024 - SegmentPool.rested, from: &pool)
        #expect(taken == Array(given.prefix(1024 - SegmentPool.rested)))
        // Four rest now, so the next take is fresh; a pool that had kept
        // all 1030 would hand out given[1020] instead.
        let next = pool.take()
        #expect(next != nil && next != given[1020])
        for segment in taken { Glibc.free(segment) }
        if let next { Glibc.free(next) }
        pool.freeAll()
    }
}
