import CDFMShim

// dfm_dispatcher: a factory of runners; one of the three Swift dispatchers.

final class DispatcherBox {
    let factory: any CoreFactory

    init(_ factory: any CoreFactory) { self.factory = factory }
}

private func box(_ factory: any CoreFactory) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(DispatcherBox(factory)).toOpaque())
}

/// The C function is `dfm_manual_options_init`.
@_cdecl("dfm_manual_options_init")
public func dfm_manual_options_init(_ options: UnsafeMutablePointer<dfm_manual_options>?) {
    guard let options else { return }
    options.pointee = dfm_manual_options()
    options.pointee.struct_size = MemoryLayout<dfm_manual_options>.size
    options.pointee.overflow = DFM_OVERFLOW_FAIL
}

/// The C function is `dfm_direct_dispatcher_create`.
@_cdecl("dfm_direct_dispatcher_create")
public func dfm_direct_dispatcher_create() -> OpaquePointer? {
    box(DirectDispatcher())
}

/// The C function is `dfm_manual_dispatcher_create`.
@_cdecl("dfm_manual_dispatcher_create")
public func dfm_manual_dispatcher_create(
    _ options: UnsafePointer<dfm_manual_options>?
) -> OpaquePointer? {
    var settings = QueueSettings()
    guard let options else { return box(ManualDispatcher(settings: settings)) }

    let expected = MemoryLayout<dfm_manual_options>.size
    guard options.pointee.struct_size == expected else {
        _ = fail(
            "dfm_manual_dispatcher_create", .invalidArgument,
            "options->struct_size is \(options.pointee.struct_size) but this library expects "
                + "\(expected); call dfm_manual_options_init() first")
        return nil
    }
    let given = options.pointee
    switch given.overflow {
    case DFM_OVERFLOW_FAIL:
        settings.overflow = .fail
    case DFM_OVERFLOW_BLOCK:
        settings.overflow = .block(
            timeoutNanoseconds: given.block_timeout_ns == 0 ? nil : given.block_timeout_ns)
    case DFM_OVERFLOW_DROP_OLDEST:
        settings.overflow = .dropOldest
    default:
        _ = fail(
            "dfm_manual_dispatcher_create", .invalidArgument,
            "options->overflow \(given.overflow.rawValue) is not a dfm_overflow (0 to 2)")
        return nil
    }
    guard given.capacity <= Int.max / 4 else {
        _ = fail(
            "dfm_manual_dispatcher_create", .invalidArgument,
            "options->capacity \(given.capacity) is too large")
        return nil
    }
    settings.capacity = given.capacity
    settings.notify = given.notify.map { .c($0, given.notify_context) } ?? .none
    settings.useWakeFD = given.use_wake_fd
    return box(ManualDispatcher(settings: settings))
}

/// The C function is `dfm_executor_dispatcher_create`.
@_cdecl("dfm_executor_dispatcher_create")
public func dfm_executor_dispatcher_create(_ executor: dfm_executor) -> OpaquePointer? {
    guard executor.post != nil else {
        _ = fail(
            "dfm_executor_dispatcher_create", .invalidArgument,
            "executor.post is NULL; the runner needs it to hand work to your loop")
        return nil
    }
    return box(ExecutorDispatcher(c: executor))
}

/// The C function is `dfm_dispatcher_destroy`.
@_cdecl("dfm_dispatcher_destroy")
public func dfm_dispatcher_destroy(_ dispatcher: OpaquePointer?) {
    guard let dispatcher else { return }
    Unmanaged<DispatcherBox>.fromOpaque(UnsafeRawPointer(dispatcher)).release()
}

/// The C function is `dfm_dispatcher_create_runner`.
@_cdecl("dfm_dispatcher_create_runner")
public func dfm_dispatcher_create_runner(
    _ dispatcher: OpaquePointer?, _ set: OpaquePointer?,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> dfm_status {
    guard let out else {
        return fail("dfm_dispatcher_create_runner", .invalidArgument, "out is NULL")
    }
    out.pointee = nil
    guard let dispatcher else {
        return fail("dfm_dispatcher_create_runner", .invalidArgument, "dispatcher is NULL")
    }
    let factory = Unmanaged<DispatcherBox>.fromOpaque(UnsafeRawPointer(dispatcher))
        .takeUnretainedValue().factory
    let callbacks = callbackSet(set) ?? CallbackSet()
    do {
        let core = try factory.makeCore(RouteTable(callbacks))
        let handle = Unmanaged.passRetained(core)
        core.handleReference = handle
        out.pointee = OpaquePointer(handle.toOpaque())
        return DFM_OK
    } catch {
        return fail("dfm_dispatcher_create_runner", error)
    }
}
