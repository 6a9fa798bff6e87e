import CDFMShim

/// The outcome of an operation, numbered exactly as the C `dfm_status` codes.
///
/// The numbers are pinned forever: C hosts compare against them.
public enum Status: Int32, Sendable, CaseIterable {
    case ok = 0
    case invalidArgument = 1
    case mixedCallbacks = 2
    case wrongKind = 3
    case closed = 4
    case queueFull = 5
    case noMemory = 6
    case badShape = 7
    case typeMismatch = 8
    case callbackFailed = 9
    case wrongThread = 10
    case busy = 11
    case timedOut = 12

    /// The C name of the code, e.g. `"DFM_ERR_QUEUE_FULL"`.
    public var name: StaticString {
        switch self {
        case .ok: "DFM_OK"
        case .invalidArgument: "DFM_ERR_INVALID_ARGUMENT"
        case .mixedCallbacks: "DFM_ERR_MIXED_CALLBACKS"
        case .wrongKind: "DFM_ERR_WRONG_KIND"
        case .closed: "DFM_ERR_CLOSED"
        case .queueFull: "DFM_ERR_QUEUE_FULL"
        case .noMemory: "DFM_ERR_NO_MEMORY"
        case .badShape: "DFM_ERR_BAD_SHAPE"
        case .typeMismatch: "DFM_ERR_TYPE_MISMATCH"
        case .callbackFailed: "DFM_ERR_CALLBACK_FAILED"
        case .wrongThread: "DFM_ERR_WRONG_THREAD"
        case .busy: "DFM_ERR_BUSY"
        case .timedOut: "DFM_ERR_TIMED_OUT"
        }
    }

    /// One sentence saying what the code means.
    public var sentence: StaticString {
        switch self {
        case .ok: "Success."
        case .invalidArgument:
            "An argument was invalid: a NULL handle, bad UTF-8, a malformed token or option."
        case .mixedCallbacks: "The callback set mixes sync and async callbacks."
        case .wrongKind: "The dispatcher or pump does not accept this kind of callbacks."
        case .closed: "The runner is stopped; nothing was enqueued."
        case .queueFull: "The bounded queue is full; nothing was enqueued."
        case .noMemory: "Memory could not be allocated; nothing was enqueued."
        case .badShape: "The callback shape string was rejected."
        case .typeMismatch: "A token does not fit the shape its callback declared."
        case .callbackFailed: "One or more callbacks reported failure; the others still ran."
        case .wrongThread: "The call was made from a thread that does not own the runner."
        case .busy: "The runner was pumped from inside one of its own callbacks."
        case .timedOut: "A blocking dispatch waited past its timeout."
        }
    }

    static let unknownName: StaticString = "DFM_UNKNOWN_STATUS"
    static let unknownSentence: StaticString = "Unknown status code."
}

/// An error of the dispatcher: a status with the meaning of the C code and a
/// message that says what was wrong and where.
public struct DFMError: Error, Sendable, CustomStringConvertible, Equatable {
    public let status: Status
    public let message: String

    public init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.name): \(message)" }
}
