// swift-tools-version:6.0
//
// dfmdispatch: deliver pipeline results from worker threads to the host's
// own thread.  One Swift core (DFMDispatch), a small C shim (CDFMShim:
// atomics on raw memory, thread-local state, libffi calls), and two
// products: the Swift library and libdfmdispatch.so for C and C++ hosts.
import PackageDescription

let package = Package(
    name: "dfmdispatch",
    products: [
        .library(name: "DFMDispatch", targets: ["DFMDispatch"]),
        .library(name: "dfmdispatch", type: .dynamic, targets: ["DFMDispatch"]),
    ],
    targets: [
        .target(
            name: "CDFMShim",
            cSettings: [.unsafeFlags(["-fvisibility=hidden"])],
            linkerSettings: [.linkedLibrary("ffi")]
        ),
        .target(
            name: "DFMDispatch",
            dependencies: ["CDFMShim"],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .testTarget(
            name: "DFMDispatchTests",
            dependencies: ["DFMDispatch", "CDFMShim"]
        ),
    ]
)
