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

/// A value behind a `Lock`, for state that host threads reach at any time
/// (the runner registry, a completion).  Not `Synchronization.Mutex`: on
/// Linux its contended paths wait in futex calls that ThreadSanitizer does
/// not see, so the sanitizer reports races on the very values it protects;
/// a pthread mutex it does see.  Heap-allocated like `Lock`; its owner
/// calls `destroy()` once, or keeps it for the life of the process.
struct Locked<Value>: @unchecked Sendable {
    private let lock = Lock()
    private let value: UnsafeMutablePointer<Value>

    init(_ initial: Value) {
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    func destroy() {
        value.deinitialize(count: 1)
        value.deallocate()
        lock.destroy()
    }

    @inline(__always)
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { try body(&value.pointee) }
    }
}
