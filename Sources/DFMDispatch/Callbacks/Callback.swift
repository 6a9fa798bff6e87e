import CDFMShim

/// A synchronous callback: the reference's five values.  Throwing reports a
/// failure; the other tokens are still delivered.
public typealias SyncCallback =
    @Sendable (_ site: String, _ node: NodeID, _ frame: Frame, _ place: String, _ data: Value)
    throws -> Void

/// An asynchronous callback: the reference's five values, awaited in order.
/// It runs on the caller's actor: the executor runner's actor or serial
/// executor, or the task that called `processPending() async`.
public typealias AsyncCallback =
    nonisolated(nonsending) @Sendable (
        _ site: String, _ node: NodeID, _ frame: Frame, _ place: String, _ data: Value
    ) async throws -> Void

/// Receives failures: the token (nil when the failure has no token, such as
/// a second completion) and the error.
public typealias ErrorHandler = @Sendable (_ token: Token?, _ error: DFMError) -> Void

/// Whether a set of callbacks is empty, all synchronous or all asynchronous.
public enum CallbacksKind: Sendable, Equatable {
    case none
    case sync
    case async
}

/// A callback of any of the forms the library can call.
public struct Callback: Sendable {
    enum Body: @unchecked Sendable {
        case sync(SyncCallback)
        case async(AsyncCallback)
        case c(dfm_callback, UnsafeMutableRawPointer?)
        case cAsync(dfm_async_callback, UnsafeMutableRawPointer?)
        case shaped(ShapedFunction, UnsafeMutableRawPointer?)
    }

    let body: Body

    init(_ body: Body) { self.body = body }

    /// A synchronous Swift callback.
    public static func sync(_ callback: @escaping SyncCallback) -> Callback {
        Callback(.sync(callback))
    }

    /// An asynchronous Swift callback.
    public static func async(_ callback: @escaping AsyncCallback) -> Callback {
        Callback(.async(callback))
    }

    var isAsync: Bool {
        switch body {
        case .async, .cAsync: true
        case .sync, .c, .shaped: false
        }
    }
}

/// A C function registered with a shape: the prepared call it owns.
final class ShapedFunction: @unchecked Sendable {
    let shape: OpaquePointer

    init(shape: OpaquePointer) { self.shape = shape }

    deinit { cdfm_shape_destroy(shape) }
}

/// Says whether the callbacks are all sync, all async, or none, as
/// nv_dfm_core's `callbacks_kind`; a mixed set is refused.
public func callbacksKind(
    defaultCallback: Callback? = nil,
    placeCallbacks: [String: Callback] = [:]
) throws(DFMError) -> CallbacksKind {
    var all = Array(placeCallbacks.values)
    if let defaultCallback { all.append(defaultCallback) }
    return try kind(of: all)
}

func kind(of callbacks: [Callback]) throws(DFMError) -> CallbacksKind {
    if callbacks.isEmpty { return .none }
    let asyncCount = callbacks.count { $0.isAsync }
    let syncCount = callbacks.count - asyncCount
    if asyncCount > 0 && syncCount > 0 {
        throw DFMError(
            .mixedCallbacks,
            "mixed sync and async callbacks are not supported: found \(syncCount) sync and "
                + "\(asyncCount) async callbacks")
    }
    return asyncCount > 0 ? .async : .sync
}

/// The error handler of a set: a C function or a Swift closure.
enum ErrorSink: @unchecked Sendable {
    case none
    case c(dfm_error_handler, UnsafeMutableRawPointer?)
    case swift(ErrorHandler)
}

/// A mutable set of callbacks, as the C `dfm_callbacks` handle holds it.
/// Places keep their registration order, so route indexes are stable.
final class CallbackSet: @unchecked Sendable {
    var defaultCallback: Callback?
    var placeNames: [String] = []
    var placeCallbacks: [String: Callback] = [:]
    var errorSink: ErrorSink = .none

    init() {}

    init(defaultCallback: Callback?, placeCallbacks: [String: Callback], errorSink: ErrorSink) {
        self.defaultCallback = defaultCallback
        self.placeNames = placeCallbacks.keys.sorted()
        self.placeCallbacks = placeCallbacks
        self.errorSink = errorSink
    }

    func setPlace(_ place: String, _ callback: Callback) {
        if placeCallbacks.updateValue(callback, forKey: place) == nil {
            placeNames.append(place)
        }
    }

    func kind() throws(DFMError) -> CallbacksKind {
        var all = placeNames.compactMap { placeCallbacks[$0] }
        if let defaultCallback { all.append(defaultCallback) }
        return try DFMDispatch.kind(of: all)
    }
}
