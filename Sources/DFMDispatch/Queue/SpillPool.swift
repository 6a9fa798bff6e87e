import CDFMShim
import Glibc

/// Buffers for tokens too large for their slot, recycled by size class so
/// that a steady stream of large tokens allocates nothing.
///
/// Classes hold 256 B, 1 KiB, 4 KiB, 16 KiB and 64 KiB; a larger token gets
/// a buffer of its own from malloc, freed after delivery.  The lock is taken
/// once per spilled token, never while host code runs.  A struct over heap
/// state: copies share it, and the owner calls `destroy()` once.
struct SpillPool: @unchecked Sendable {
    private static let classCount = 5
    private static let largeClass: UInt64 = 255
    /// Buffers kept per class; more are freed.
    private static let keptPerClass = 64

    private let lock = Lock()
    private let free: UnsafeMutablePointer<[UnsafeMutableRawPointer]>

    init() {
        free = .allocate(capacity: SpillPool.classCount)
        free.initialize(repeating: [], count: SpillPool.classCount)
    }

    func destroy() {
        for sizeClass in 0..<SpillPool.classCount {
            for buffer in free[sizeClass] { Glibc.free(buffer) }
        }
        free.deinitialize(count: SpillPool.classCount)
        free.deallocate()
        lock.destroy()
    }

    private static func sizeClass(for bytes: Int) -> Int? {
        var size = 256
        for sizeClass in 0..<classCount {
            if bytes <= size { return sizeClass }
            size <<= 2
        }
        return nil
    }

    /// A buffer of at least `bytes` bytes (header included), or nil when
    /// memory is exhausted.
    func take(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard let sizeClass = SpillPool.sizeClass(for: bytes) else {
            let buffer = malloc(bytes)
            buffer?.storeBytes(
                of: SpillPool.largeClass, toByteOffset: SpillHeader.sizeClass, as: UInt64.self)
            return buffer
        }
        if let buffer = lock.withLock({ free[sizeClass].popLast() }) { return buffer }
        let buffer = malloc(256 << (2 * sizeClass))
        buffer?.storeBytes(
            of: UInt64(sizeClass), toByteOffset: SpillHeader.sizeClass, as: UInt64.self)
        return buffer
    }

    func give(_ buffer: UnsafeMutableRawPointer) {
        let sizeClass = Int(buffer.load(fromByteOffset: SpillHeader.sizeClass, as: UInt64.self))
        if sizeClass == Int(SpillPool.largeClass) {
            Glibc.free(buffer)
            return
        }
        let kept = lock.withLock { () -> Bool in
            guard free[sizeClass].count < SpillPool.keptPerClass else { return false }
            free[sizeClass].append(buffer)
            return true
        }
        if !kept { Glibc.free(buffer) }
    }
}
