import CDFMShim

/// A payload owned by the host: a pointer and the function that releases it.
///
/// The runner calls `release` exactly once, after the token's callback
/// returned or when the token is discarded.  A Swift object can travel as a
/// payload too: `HostObject(retaining:)` keeps it alive until then.
public struct HostObject: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer?
    public let release: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?

    public init(
        pointer: UnsafeMutableRawPointer?,
        release: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?
    ) {
        self.pointer = pointer
        self.release = release
    }

    /// Carries a Swift object: retained now, released by the runner.
    public init(retaining object: AnyObject) {
        self.pointer = Unmanaged.passRetained(object).toOpaque()
        self.release = { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
    }

    /// The Swift object a `HostObject(retaining:)` carries.  Only valid while
    /// the payload is (during the callback).
    public func object<T: AnyObject>(as type: T.Type) -> T? {
        guard let pointer else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue() as? T
    }
}

/// The value a token carries (nv_dfm_core's unwrapped data).
public enum Value: Sendable, CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case json(String)
    case object(HostObject)
    /// A stop token: a frame, or the whole stream, has ended.
    case stop
    /// An error report, as text.
    case error(String)

    var kind: dfm_value_kind {
        switch self {
        case .none: DFM_VALUE_NONE
        case .bool: DFM_VALUE_BOOL
        case .int: DFM_VALUE_INT
        case .double: DFM_VALUE_DOUBLE
        case .string: DFM_VALUE_STRING
        case .bytes: DFM_VALUE_BYTES
        case .json: DFM_VALUE_JSON
        case .object: DFM_VALUE_OBJECT
        case .stop: DFM_VALUE_STOP
        case .error: DFM_VALUE_ERROR
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .bool(let value): "\(value)"
        case .int(let value): "\(value)"
        case .double(let value): "\(value)"
        case .string(let text): "\"\(text)\""
        case .bytes(let bytes): "<\(bytes.count) bytes>"
        case .json(let text): "json \(text)"
        case .object(let object): "object \(String(describing: object.pointer))"
        case .stop: "stop"
        case .error(let text): "error \(text)"
        }
    }
}

extension Value {
    /// True for the stop token.
    public var isStop: Bool {
        if case .stop = self { return true }
        return false
    }

    /// True for an error report.
    public var isError: Bool {
        if case .error = self { return true }
        return false
    }
}
