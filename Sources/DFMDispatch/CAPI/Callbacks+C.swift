import CDFMShim

// dfm_callbacks: a mutable set of callbacks; runners copy it.

typealias CCallback = @convention(c) (UnsafePointer<dfm_token>?, UnsafeMutableRawPointer?) -> Int32

@inline(__always)
func callbackSet(_ handle: OpaquePointer?) -> CallbackSet? {
    handle.map { Unmanaged<CallbackSet>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

/// Converts a C place name, refusing NULL and bad UTF-8.
func placeName(_ place: UnsafePointer<CChar>?) -> Result<String, DFMError> {
    guard let place else { return .failure(DFMError(.invalidArgument, "place is NULL")) }
    let length = UTF8Check.cStringLength(place)
    if length < 0 {
        return .failure(
            DFMError(
                .invalidArgument,
                "place is not valid UTF-8 (bad byte at offset \(-length - 1))"))
    }
    return .success(String(cString: place))
}

/// The C function is `dfm_callbacks_create`.
@_cdecl("dfm_callbacks_create")
public func dfm_callbacks_create() -> OpaquePointer? {
    OpaquePointer(Unmanaged.passRetained(CallbackSet()).toOpaque())
}

/// The C function is `dfm_callbacks_destroy`.
@_cdecl("dfm_callbacks_destroy")
public func dfm_callbacks_destroy(_ set: OpaquePointer?) {
    guard let set else { return }
    Unmanaged<CallbackSet>.fromOpaque(UnsafeRawPointer(set)).release()
}

/// Where a registration puts its callback.
private enum Registration {
    case defaultCallback
    case place(UnsafePointer<CChar>?)
}

/// The one path of the four plain registrations: check the set, the
/// callback and the place, then store.
private func register(
    _ function: StaticString, _ set: OpaquePointer?, _ target: Registration, _ callback: Callback?
) -> dfm_status {
    guard let callbacks = callbackSet(set) else {
        return fail(function, .invalidArgument, "set is NULL")
    }
    guard let callback else { return fail(function, .invalidArgument, "callback is NULL") }
    switch target {
    case .defaultCallback:
        callbacks.defaultCallback = callback
    case .place(let place):
        switch placeName(place) {
        case .success(let name): callbacks.setPlace(name, callback)
        case .failure(let error): return fail(function, error)
        }
    }
    return DFM_OK
}

/// The C function is `dfm_callbacks_set_default`.
@_cdecl("dfm_callbacks_set_default")
public func dfm_callbacks_set_default(
    _ set: OpaquePointer?, _ callback: dfm_callback?, _ user: UnsafeMutableRawPointer?
) -> dfm_status {
    register(
        "dfm_callbacks_set_default", set, .defaultCallback,
        callback.map { Callback(.c($0, user)) })
}

/// The C function is `dfm_callbacks_set_default_async`.
@_cdecl("dfm_callbacks_set_default_async")
public func dfm_callbacks_set_default_async(
    _ set: OpaquePointer?, _ callback: dfm_async_callback?, _ user: UnsafeMutableRawPointer?
) -> dfm_status {
    register(
        "dfm_callbacks_set_default_async", set, .defaultCallback,
        callback.map { Callback(.cAsync($0, user)) })
}

/// The C function is `dfm_callbacks_add_place`.
@_cdecl("dfm_callbacks_add_place")
public func dfm_callbacks_add_place(
    _ set: OpaquePointer?, _ place: UnsafePointer<CChar>?, _ callback: dfm_callback?,
    _ user: UnsafeMutableRawPointer?
) -> dfm_status {
    register(
        "dfm_callbacks_add_place", set, .place(place), callback.map { Callback(.c($0, user)) })
}

/// The C function is `dfm_callbacks_add_place_async`.
@_cdecl("dfm_callbacks_add_place_async")
public func dfm_callbacks_add_place_async(
    _ set: OpaquePointer?, _ place: UnsafePointer<CChar>?, _ callback: dfm_async_callback?,
    _ user: UnsafeMutableRawPointer?
) -> dfm_status {
    register(
        "dfm_callbacks_add_place_async", set, .place(place),
        callback.map { Callback(.cAsync($0, user)) })
}

/// The C function is `dfm_callbacks_add_shaped`.
@_cdecl("dfm_callbacks_add_shaped")
public func dfm_callbacks_add_shaped(
    _ set: OpaquePointer?, _ place: UnsafePointer<CChar>?,
    _ function: (@convention(c) () -> Void)?, _ shape: UnsafePointer<CChar>?,
    _ user: UnsafeMutableRawPointer?
) -> dfm_status {
    guard let callbacks = callbackSet(set) else {
        return fail("dfm_callbacks_add_shaped", .invalidArgument, "set is NULL")
    }
    guard let function else {
        return fail("dfm_callbacks_add_shaped", .invalidArgument, "function is NULL")
    }
    guard let shape else {
        return fail("dfm_callbacks_add_shaped", .invalidArgument, "shape is NULL")
    }
    var name: String? = nil
    if place != nil {
        switch placeName(place) {
        case .success(let text): name = text
        case .failure(let error): return fail("dfm_callbacks_add_shaped", error)
        }
    }

    var prepared: OpaquePointer? = nil
    let message = cdfm_message_buffer()!
    message[0] = 0
    let status = cdfm_shape_create(shape, function, &prepared, message, Int(CDFM_MESSAGE_CAPACITY))
    guard status == DFM_OK.rawValue, let prepared else {
        return fail(
            "dfm_callbacks_add_shaped", Status(rawValue: status) ?? .badShape,
            String(cString: message))
    }
    let callback = Callback(.shaped(ShapedFunction(shape: prepared), user))
    if let name {
        callbacks.setPlace(name, callback)
    } else {
        callbacks.defaultCallback = callback
    }
    return DFM_OK
}

/// The C function is `dfm_callbacks_set_error_handler`.
@_cdecl("dfm_callbacks_set_error_handler")
public func dfm_callbacks_set_error_handler(
    _ set: OpaquePointer?, _ handler: dfm_error_handler?, _ context: UnsafeMutableRawPointer?
) -> dfm_status {
    guard let callbacks = callbackSet(set) else {
        return fail("dfm_callbacks_set_error_handler", .invalidArgument, "set is NULL")
    }
    callbacks.errorSink = handler.map { .c($0, context) } ?? .none
    return DFM_OK
}

/// The C function is `dfm_callbacks_kind`.
@_cdecl("dfm_callbacks_kind")
public func dfm_callbacks_kind(
    _ set: OpaquePointer?, _ out: UnsafeMutablePointer<dfm_kind>?
) -> dfm_status {
    guard let callbacks = callbackSet(set) else {
        return fail("dfm_callbacks_kind", .invalidArgument, "set is NULL")
    }
    guard let out else { return fail("dfm_callbacks_kind", .invalidArgument, "out is NULL") }
    do {
        switch try callbacks.kind() {
        case .none: out.pointee = DFM_CALLBACKS_NONE
        case .sync: out.pointee = DFM_CALLBACKS_SYNC
        case .async: out.pointee = DFM_CALLBACKS_ASYNC
        }
        return DFM_OK
    } catch {
        return fail("dfm_callbacks_kind", error)
    }
}

/// The C function is `dfm_complete`.
@_cdecl("dfm_complete")
public func dfm_complete(_ completion: OpaquePointer?, _ status: Int32) {
    let bits = UInt(bitPattern: completion)
    let id = UInt32(truncatingIfNeeded: bits >> 32)
    let sequence = UInt32(truncatingIfNeeded: bits)
    guard let runner = Registry.shared.lookup(id) else {
        _ = fail(
            "dfm_complete", .invalidArgument,
            "the completion does not belong to a live runner (already completed, or its runner "
                + "was destroyed); the call was ignored")
        return
    }
    if let problem = runner.complete(sequence: sequence, status: status) {
        _ = fail("dfm_complete", problem)
    }
}
