/// Runners by number, for the two things that must find a runner without
/// holding a pointer to it: completions (`dfm_completion *`) and executor
/// work items (their `arg`).  A number that is no longer registered finds
/// nothing, so a stale completion or a work item run after destroy can do
/// no harm.
final class Registry: Sendable {
    static let shared = Registry()

    private struct Table {
        var runners: [UInt32: RunnerCore] = [:]
        var next: UInt32 = 1
    }

    /// Kept for the life of the process.
    private let table = Locked<Table>(Table())

    func register(_ runner: RunnerCore) -> UInt32 {
        table.withLock { table in
            var id = table.next
            while id == 0 || table.runners[id] != nil { id &+= 1 }
            table.next = id &+ 1
            table.runners[id] = runner
            return id
        }
    }

    func unregister(_ id: UInt32) {
        _ = table.withLock { $0.runners.removeValue(forKey: id) }
    }

    /// Not inlined, so that no caller ends in a tail call to
    /// `pthread_mutex_unlock`: the C stress tests run under ThreadSanitizer
    /// with the library's own calls ignored (`called_from_lib`), and a tail
    /// call from a function the host called (an executor work item) makes
    /// the unlock look like the host's, without the lock that went before.
    @inline(never)
    func lookup(_ id: UInt32) -> RunnerCore? {
        table.withLock { $0.runners[id] }
    }
}
