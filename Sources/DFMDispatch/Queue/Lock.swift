import Glibc

/// A plain mutex for the library's own short critical sections (segment and
/// spill pools, drop-oldest queues).  No host code ever runs while one is
/// held.
///
/// A struct over a heap-allocated `pthread_mutex_t`, so that taking it costs
/// no reference counting; its owner calls `destroy()` once.  Not
/// `Synchronization.Mutex`: its closures are checked as `sending`, which
/// refuses the raw pointers these sections move around.
struct Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func destroy() {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
