import DFMDispatch
import Testing

/// The C numbers and names of the status codes, pinned by API.md.
let pinnedStatuses: [(Status, Int32, String)] = [
    (.ok, 0, "DFM_OK"),
    (.invalidArgument, 1, "DFM_ERR_INVALID_ARGUMENT"),
    (.mixedCallbacks, 2, "DFM_ERR_MIXED_CALLBACKS"),
    (.wrongKind, 3, "DFM_ERR_WRONG_KIND"),
    (.closed, 4, "DFM_ERR_CLOSED"),
    (.queueFull, 5, "DFM_ERR_QUEUE_FULL"),
    (.noMemory, 6, "DFM_ERR_NO_MEMORY"),
    (.badShape, 7, "DFM_ERR_BAD_SHAPE"),
    (.typeMismatch, 8, "DFM_ERR_TYPE_MISMATCH"),
    (.callbackFailed, 9, "DFM_ERR_CALLBACK_FAILED"),
    (.wrongThread, 10, "DFM_ERR_WRONG_THREAD"),
    (.busy, 11, "DFM_ERR_BUSY"),
    (.timedOut, 12, "DFM_ERR_TIMED_OUT"),
]

@Suite("Status and DFMError")
struct StatusTests {
    @Test("every status has its pinned C number and name")
    func pinnedNumbersAndNames() {
        for (status, number, name) in pinnedStatuses {
            #expect(status.rawValue == number, "\(name)")
            #expect("\(status.name)" == name)
            #expect(Status(rawValue: number) == status)
        }
        #expect(Status.queueFull.rawValue == 5)
        #expect("\(Status.queueFull.name)" == "DFM_ERR_QUEUE_FULL")
    }

    @Test("there are exactly the thirteen pinned statuses")
    func allCases() {
        #expect(Status.allCases.count == 13)
        #expect(Status.allCases.map(\.rawValue) == Array(0...12))
        #expect(Status(rawValue: 13) == nil)
        #expect(Status(rawValue: -1) == nil)
    }

    @Test("every status has a sentence, and the sentences differ")
    func sentences() {
        let sentences = Status.allCases.map { "\($0.sentence)" }
        #expect(sentences.allSatisfy { !$0.isEmpty })
        #expect(Set(sentences).count == 13)
    }

    @Test("a DFMError carries its status and message, and prints the C name")
    func errorDescription() {
        let error = DFMError(.queueFull, "the queue is full")
        #expect(error.status == .queueFull)
        #expect(error.message == "the queue is full")
        #expect(error.description.contains("DFM_ERR_QUEUE_FULL"))
        #expect(error.description.contains("the queue is full"))
        #expect(error == DFMError(.queueFull, "the queue is full"))
        #expect(error != DFMError(.closed, "the queue is full"))
    }

    @Test("errors thrown by the library have the statuses of API.md")
    func thrownStatuses() throws {
        let sync = Callback.sync { _, _, _, _, _ in }
        let async = Callback.async { _, _, _, _, _ in }
        #expect(
            status { _ = try callbacksKind(defaultCallback: sync, placeCallbacks: ["a": async]) }
                == .mixedCallbacks)
        #expect(
            status { _ = try DirectDispatcher().createRunner(defaultCallback: async) } == .wrongKind
        )
        let full = try ManualDispatcher(ManualOptions(capacity: 1)).createManualRunner()
        try full.dispatch(token())
        #expect(status { try full.dispatch(token()) } == .queueFull)
        full.stop(.drain)
        #expect(status { try full.dispatch(token()) } == .closed)
        #expect(status { _ = try Frame.stop.parent() } == .invalidArgument)
    }
}
