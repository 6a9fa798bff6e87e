import CDFMShim

// The C entry points for status codes, error text and versions.
//
// Every C entry point follows one pattern: convert and validate the
// arguments, call the core, and turn a DFMError into its status plus a
// `dfm_last_error()` message that names the function.

@inline(__always)
func cStatus(_ status: Status) -> dfm_status {
    dfm_status(rawValue: UInt32(bitPattern: status.rawValue))
}

/// Records `error` as the calling thread's last error and returns its code.
func fail(_ function: StaticString, _ error: DFMError) -> dfm_status {
    "\(function): \(error.message)".withCString { cdfm_set_last_error($0) }
    return cStatus(error.status)
}

func fail(_ function: StaticString, _ status: Status, _ message: String) -> dfm_status {
    fail(function, DFMError(status, message))
}

func cString(_ text: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// The C function is `dfm_status_name`.
@_cdecl("dfm_status_name")
public func dfm_status_name(_ status: Int32) -> UnsafePointer<CChar> {
    cString(Status(rawValue: status)?.name ?? Status.unknownName)
}

/// The C function is `dfm_strerror`.
@_cdecl("dfm_strerror")
public func dfm_strerror(_ status: Int32) -> UnsafePointer<CChar> {
    cString(Status(rawValue: status)?.sentence ?? Status.unknownSentence)
}

/// The C function is `dfm_last_error`.
@_cdecl("dfm_last_error")
public func dfm_last_error() -> UnsafePointer<CChar> {
    cdfm_last_error()
}

/// The C function is `dfm_version`.
@_cdecl("dfm_version")
public func dfm_version() -> UInt32 {
    UInt32(DFM_VERSION_MAJOR * 10000 + DFM_VERSION_MINOR * 100 + DFM_VERSION_PATCH)
}

private let versionString: StaticString = "0.1.0"

/// The C function is `dfm_version_string`.
@_cdecl("dfm_version_string")
public func dfm_version_string() -> UnsafePointer<CChar> {
    cString(versionString)
}
