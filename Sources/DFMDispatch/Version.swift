import CDFMShim

@_cdecl("dfm_version")
public func dfm_version() -> UInt32 {
    UInt32(DFM_VERSION_MAJOR * 10000 + DFM_VERSION_MINOR * 100 + DFM_VERSION_PATCH)
}

@_cdecl("dfm_test_async")
public func dfm_test_async() {
    Task { print("x") }
}
