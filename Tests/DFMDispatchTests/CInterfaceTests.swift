import CDFMShim
import Foundation
import Synchronization
import Testing

import enum DFMDispatch.Status

// The C entry points, called from Swift through the public header
// (CDFMShim).  DFMDispatch is imported for `Status` only: its @_cdecl
// functions would make every unqualified dfm_ call ambiguous.

private func lastError() -> String { String(cString: dfm_last_error()) }

private func code(_ status: dfm_status) -> Int32 { Int32(bitPattern: status.rawValue) }

/// A C token with static strings for site and place.
private func cToken(place: UnsafePointer<CChar>, data: dfm_value = dfm_value()) -> dfm_token {
    var token = dfm_token()
    token.source_site = UnsafeRawPointer(("site" as StaticString).utf8Start)
        .assumingMemoryBound(to: CChar.self)
    token.source_node.kind = DFM_NODE_NONE
    token.target_place = place
    token.data = data
    return token
}

nonisolated(unsafe) private let placeResult = UnsafeRawPointer(("result" as StaticString).utf8Start)
    .assumingMemoryBound(to: CChar.self)

/// A C sync callback whose user data is a `Counter`.
private let countingCallback:
    @convention(c) (UnsafePointer<dfm_token>?, UnsafeMutableRawPointer?)
        -> Int32 = { _, user in
            Unmanaged<Counter>.fromOpaque(user!).takeUnretainedValue().increment()
            return 0
        }

/// A C sync callback that fails with 7.
private let failingCallback:
    @convention(c) (UnsafePointer<dfm_token>?, UnsafeMutableRawPointer?)
        -> Int32 = { _, _ in 7 }

/// Completions an async C callback received; its user data.
private final class CompletionBox: Sendable {
    let handles = Protected<[UInt]>([])
    let places = Protected<[String]>([])
}

private let storingAsyncCallback:
    @convention(c) (
        UnsafePointer<dfm_token>?, OpaquePointer?, UnsafeMutableRawPointer?
    ) -> Void = { token, completion, user in
        let box = Unmanaged<CompletionBox>.fromOpaque(user!).takeUnretainedValue()
        box.places.withLock { $0.append(String(cString: token!.pointee.target_place)) }
        box.handles.withLock { $0.append(UInt(bitPattern: completion)) }
    }

/// Reports the error handler received; its context.
private final class ReportBox: Sendable {
    let reports = Protected<[(hasToken: Bool, status: Int32, message: String)]>([])
}

private let recordingErrorHandler:
    @convention(c) (
        UnsafePointer<dfm_token>?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?
    ) -> Void = { token, status, message, context in
        let box = Unmanaged<ReportBox>.fromOpaque(context!).takeUnretainedValue()
        let text = message.map { String(cString: $0) } ?? ""
        box.reports.withLock { $0.append((token != nil, status, text)) }
    }

/// What a C callback saw of the tokens it received; its user data.
private final class TokenCheckBox: Sendable {
    struct Seen: Equatable {
        var depth: Int
        var levelsNil: Bool
        var terminated: Bool
        var text: [UInt8]
    }

    let seen = Protected<[Seen]>([])
}

private let checkingCallback:
    @convention(c) (UnsafePointer<dfm_token>?, UnsafeMutableRawPointer?) -> Int32 = {
        token, user in
        let box = Unmanaged<TokenCheckBox>.fromOpaque(user!).takeUnretainedValue()
        let view = token!.pointee
        let length = view.data.as.text.length
        let bytes = UnsafeRawPointer(view.data.as.text.data!).assumingMemoryBound(to: UInt8.self)
        let seen = TokenCheckBox.Seen(
            depth: view.frame.depth, levelsNil: view.frame.levels == nil,
            terminated: bytes[length] == 0,
            text: Array(UnsafeBufferPointer(start: bytes, count: length)))
        box.seen.withLock { $0.append(seen) }
        return 0
    }

/// Makes a runner from a fresh dispatcher and callback set.
private func makeRunner(
    _ dispatcher: OpaquePointer?, configure: (OpaquePointer?) -> Void = { _ in }
) -> OpaquePointer? {
    let set = dfm_callbacks_create()
    configure(set)
    var runner: OpaquePointer? = nil
    let status = dfm_dispatcher_create_runner(dispatcher, set, &runner)
    dfm_callbacks_destroy(set)
    dfm_dispatcher_destroy(dispatcher)
    #expect(status == DFM_OK, "\(lastError())")
    return runner
}

private func stats(_ runner: OpaquePointer?) -> dfm_stats {
    var out = dfm_stats()
    #expect(dfm_runner_stats(runner, &out) == DFM_OK)
    return out
}

@Suite("C interface")
struct CInterfaceTests {
    @Test("dfm_status_name and dfm_strerror cover all thirteen codes")
    func namesAndSentences() {
        for (status, number, name) in pinnedStatuses {
            #expect(String(cString: dfm_status_name(number)) == name)
            #expect(String(cString: dfm_strerror(number)) == "\(status.sentence)")
            #expect(!String(cString: dfm_strerror(number)).isEmpty)
        }
        #expect(code(DFM_ERR_QUEUE_FULL) == 5)
        #expect(code(DFM_ERR_TIMED_OUT) == 12)
    }

    @Test("an unknown code gets one fixed text, never NULL")
    func unknownCode() {
        let names = [13, -1, 1000, Int32.min, Int32.max].map {
            String(cString: dfm_status_name($0))
        }
        let sentences = [13, -1, 1000, Int32.min, Int32.max].map {
            String(cString: dfm_strerror($0))
        }
        #expect(Set(names).count == 1)
        #expect(Set(sentences).count == 1)
        #expect(names[0].lowercased().contains("unknown"))
        #expect(sentences[0].lowercased().contains("unknown"))
    }

    @Test("dfm_last_error names the function of the last failing call")
    func lastErrorNamesFunction() {
        #expect(dfm_runner_dispatch(nil, nil, 1) == DFM_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("dfm_runner_dispatch"))

        #expect(dfm_callbacks_set_default(nil, countingCallback, nil) == DFM_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("dfm_callbacks_set_default"))

        var out = dfm_stats()
        #expect(dfm_runner_stats(nil, &out) == DFM_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("dfm_runner_stats"))

        // A successful call leaves the message as it was.
        #expect(String(cString: dfm_status_name(0)) == "DFM_OK")
        let set = dfm_callbacks_create()
        #expect(dfm_callbacks_set_default(set, countingCallback, nil) == DFM_OK)
        dfm_callbacks_destroy(set)
        #expect(lastError().contains("dfm_runner_stats"))
    }

    @Test("dfm_last_error is empty on a thread that has had no failure, and per thread")
    func lastErrorPerThread() {
        #expect(dfm_runner_start(nil) == DFM_ERR_INVALID_ARGUMENT)
        let fresh = onAnotherThread { lastError() }
        #expect(fresh == "")
        #expect(lastError().contains("dfm_runner_start"))
    }

    @Test("a token whose place is not UTF-8 is refused with DFM_ERR_INVALID_ARGUMENT")
    func badUTF8Place() {
        let counter = Counter()
        let runner = makeRunner(dfm_manual_dispatcher_create(nil)) { set in
            _ = dfm_callbacks_set_default(
                set, countingCallback, Unmanaged.passUnretained(counter).toOpaque())
        }
        defer { dfm_runner_destroy(runner) }
        let bad: [UInt8] = [0x72, 0xFF, 0x73, 0x00]
        bad.withUnsafeBufferPointer { bytes in
            let place = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            var token = cToken(place: place)
            #expect(dfm_runner_dispatch(runner, &token, 1) == DFM_ERR_INVALID_ARGUMENT)
        }
        let message = lastError()
        #expect(message.contains("dfm_runner_dispatch"))
        #expect(message.contains("target_place"))
        #expect(message.contains("UTF-8"))
        #expect(!dfm_has_pending(runner))
        #expect(stats(runner).dispatched == 0)
        #expect(counter.current == 0)
    }

    @Test("a batch with one malformed token is refused whole")
    func malformedBatchRefusedWhole() {
        let runner = makeRunner(dfm_manual_dispatcher_create(nil))
        defer { dfm_runner_destroy(runner) }
        var tokens = [
            cToken(place: placeResult), cToken(place: placeResult), cToken(place: placeResult),
        ]
        tokens[2].source_node.kind = DFM_NODE_NAME  // a NAME node without a name
        #expect(dfm_runner_dispatch(runner, &tokens, 3) == DFM_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("token 2"))
        #expect(!dfm_has_pending(runner))

        tokens[2].source_node.kind = DFM_NODE_NONE
        tokens[1].frame.depth = 2  // levels NULL with depth 2
        #expect(dfm_runner_dispatch(runner, &tokens, 3) == DFM_ERR_INVALID_ARGUMENT)
        tokens[1].frame.depth = 0
        tokens[0].target_place = nil
        #expect(dfm_runner_dispatch(runner, &tokens, 3) == DFM_ERR_INVALID_ARGUMENT)
        tokens[0].target_place = placeResult
        #expect(dfm_runner_dispatch(runner, &tokens, 3) == DFM_OK)
        #expect(stats(runner).pending == 3)
    }

    @Test("count 0 is a no-op with any tokens; a NULL runner is always refused")
    func countZero() {
        let runner = makeRunner(dfm_manual_dispatcher_create(nil))
        defer { dfm_runner_destroy(runner) }
        #expect(dfm_runner_dispatch(runner, nil, 0) == DFM_OK)
        #expect(dfm_runner_dispatch(nil, nil, 0) == DFM_ERR_INVALID_ARGUMENT)
        #expect(dfm_runner_dispatch(runner, nil, 2) == DFM_ERR_INVALID_ARGUMENT)
        #expect(!dfm_has_pending(runner))
    }

    @Test("dfm_callbacks_kind says none, sync, async or mixed")
    func callbacksKind() {
        var kind = dfm_kind(rawValue: 99)
        let set = dfm_callbacks_create()
        defer { dfm_callbacks_destroy(set) }
        #expect(dfm_callbacks_kind(set, &kind) == DFM_OK)
        #expect(kind == DFM_CALLBACKS_NONE)
        #expect(dfm_callbacks_add_place(set, placeResult, countingCallback, nil) == DFM_OK)
        #expect(dfm_callbacks_kind(set, &kind) == DFM_OK)
        #expect(kind == DFM_CALLBACKS_SYNC)
        #expect(dfm_callbacks_set_default_async(set, storingAsyncCallback, nil) == DFM_OK)
        #expect(dfm_callbacks_kind(set, &kind) == DFM_ERR_MIXED_CALLBACKS)

        let async = dfm_callbacks_create()
        defer { dfm_callbacks_destroy(async) }
        _ = dfm_callbacks_set_default_async(async, storingAsyncCallback, nil)
        #expect(dfm_callbacks_kind(async, &kind) == DFM_OK)
        #expect(kind == DFM_CALLBACKS_ASYNC)
        #expect(dfm_callbacks_kind(nil, &kind) == DFM_ERR_INVALID_ARGUMENT)
    }

    @Test("each dispatcher accepts its kinds and refuses the others")
    func dispatcherKinds() {
        let syncSet = dfm_callbacks_create()
        let asyncSet = dfm_callbacks_create()
        let mixedSet = dfm_callbacks_create()
        defer { [syncSet, asyncSet, mixedSet].forEach { dfm_callbacks_destroy($0) } }
        _ = dfm_callbacks_set_default(syncSet, countingCallback, nil)
        _ = dfm_callbacks_set_default_async(asyncSet, storingAsyncCallback, nil)
        _ = dfm_callbacks_set_default(mixedSet, countingCallback, nil)
        _ = dfm_callbacks_add_place_async(mixedSet, placeResult, storingAsyncCallback, nil)

        let post:
            @convention(c) (
                UnsafeMutableRawPointer?, (@convention(c) (UnsafeMutableRawPointer?) -> Void)?,
                UnsafeMutableRawPointer?
            ) -> Void = { _, _, _ in }
        let direct = dfm_direct_dispatcher_create()
        let manual = dfm_manual_dispatcher_create(nil)
        let executor = dfm_executor_dispatcher_create(dfm_executor(post: post, context: nil))
        defer { [direct, manual, executor].forEach { dfm_dispatcher_destroy($0) } }

        func create(_ dispatcher: OpaquePointer?, _ set: OpaquePointer?) -> dfm_status {
            var runner: OpaquePointer? = nil
            let status = dfm_dispatcher_create_runner(dispatcher, set, &runner)
            #expect((status == DFM_OK) == (runner != nil))
            dfm_runner_destroy(runner)
            return status
        }
        #expect(create(direct, syncSet) == DFM_OK)
        #expect(create(direct, asyncSet) == DFM_ERR_WRONG_KIND)
        #expect(create(direct, mixedSet) == DFM_ERR_MIXED_CALLBACKS)
        #expect(create(manual, syncSet) == DFM_OK)
        #expect(create(manual, asyncSet) == DFM_OK)
        #expect(create(manual, mixedSet) == DFM_ERR_MIXED_CALLBACKS)
        #expect(create(executor, asyncSet) == DFM_OK)
        #expect(create(executor, syncSet) == DFM_ERR_WRONG_KIND)
        #expect(create(executor, mixedSet) == DFM_ERR_MIXED_CALLBACKS)
        #expect(create(direct, nil) == DFM_OK)
        #expect(create(nil, syncSet) == DFM_ERR_INVALID_ARGUMENT)
    }

    @Test("create functions return NULL with a reason for bad options or a missing post")
    func badCreateArguments() {
        var options = dfm_manual_options()
        dfm_manual_options_init(&options)
        #expect(options.struct_size == MemoryLayout<dfm_manual_options>.size)
        #expect(options.capacity == 0)
        #expect(options.overflow == DFM_OVERFLOW_FAIL)
        #expect(options.block_timeout_ns == 0)
        #expect(options.notify == nil)
        #expect(!options.use_wake_fd)

        options.struct_size = 3
        #expect(dfm_manual_dispatcher_create(&options) == nil)
        #expect(lastError().contains("dfm_manual_dispatcher_create"))
        #expect(lastError().contains("struct_size"))

        dfm_manual_options_init(&options)
        options.overflow = dfm_overflow(rawValue: 9)
        #expect(dfm_manual_dispatcher_create(&options) == nil)
        #expect(lastError().contains("overflow"))

        #expect(dfm_executor_dispatcher_create(dfm_executor(post: nil, context: nil)) == nil)
        #expect(lastError().contains("dfm_executor_dispatcher_create"))
    }

    @Test("the pumps of a direct runner return DFM_ERR_WRONG_KIND; no pending, no wake fd")
    func directRunnerPumps() {
        let runner = makeRunner(dfm_direct_dispatcher_create())
        defer { dfm_runner_destroy(runner) }
        #expect(dfm_process_pending(runner) == DFM_ERR_WRONG_KIND)
        #expect(dfm_process_pending_async(runner) == DFM_ERR_WRONG_KIND)
        var result = dfm_pump_result()
        #expect(dfm_process_pending_budget(runner, 0, 0, &result) == DFM_ERR_WRONG_KIND)
        #expect(!dfm_has_pending(runner))
        #expect(dfm_runner_wake_fd(runner) == -1)
        #expect(dfm_process_pending(nil) == DFM_ERR_INVALID_ARGUMENT)
        #expect(!dfm_has_pending(nil))
        #expect(dfm_runner_wake_fd(nil) == -1)
    }

    @Test("a C callback fails the pump with DFM_ERR_CALLBACK_FAILED; the handler sees its value")
    func cCallbackFailure() {
        let counter = Counter()
        let reports = ReportBox()
        let failing = UnsafeRawPointer(("failing" as StaticString).utf8Start)
            .assumingMemoryBound(to: CChar.self)
        let runner = makeRunner(dfm_manual_dispatcher_create(nil)) { set in
            _ = dfm_callbacks_set_default(
                set, countingCallback, Unmanaged.passUnretained(counter).toOpaque())
            _ = dfm_callbacks_add_place(set, failing, failingCallback, nil)
            _ = dfm_callbacks_set_error_handler(
                set, recordingErrorHandler, Unmanaged.passUnretained(reports).toOpaque())
        }
        defer { dfm_runner_destroy(runner) }
        var tokens = [
            cToken(place: placeResult), cToken(place: failing), cToken(place: placeResult),
        ]
        #expect(dfm_runner_dispatch(runner, &tokens, 3) == DFM_OK)
        #expect(dfm_process_pending(runner) == DFM_ERR_CALLBACK_FAILED)
        #expect(counter.current == 2)
        let got = reports.reports.withLock { $0 }
        #expect(got.count == 1)
        #expect(got.first?.hasToken == true)
        #expect(got.first?.status == code(DFM_ERR_CALLBACK_FAILED))
        #expect(got.first?.message.contains("7") == true)
        let counts = stats(runner)
        #expect(counts.delivered == 2)
        #expect(counts.failed == 1)
    }

    @Test("the runner copies the callback set: destroying the set changes nothing")
    func setCopied() {
        let counter = Counter()
        let set = dfm_callbacks_create()
        _ = dfm_callbacks_set_default(
            set, countingCallback, Unmanaged.passUnretained(counter).toOpaque())
        let dispatcher = dfm_direct_dispatcher_create()
        var runner: OpaquePointer? = nil
        #expect(dfm_dispatcher_create_runner(dispatcher, set, &runner) == DFM_OK)
        _ = dfm_callbacks_set_default(set, failingCallback, nil)
        dfm_callbacks_destroy(set)
        dfm_dispatcher_destroy(dispatcher)
        defer { dfm_runner_destroy(runner) }

        var token = cToken(place: placeResult)
        #expect(dfm_runner_dispatch(runner, &token, 1) == DFM_OK)
        #expect(counter.current == 1)
    }

    @Test("OBJECT ownership: a refused call keeps it with the caller; destroy releases pending")
    func objectOwnership() {
        let releases = Counter()
        func object() -> dfm_value {
            var data = dfm_value()
            data.kind = DFM_VALUE_OBJECT
            data.as.object.pointer = Unmanaged.passRetained(releases).toOpaque()
            data.as.object.release = countingRelease
            return data
        }
        let runner = makeRunner(dfm_manual_dispatcher_create(nil))
        var tokens = [
            cToken(place: placeResult, data: object()), cToken(place: placeResult, data: object()),
        ]
        #expect(dfm_runner_dispatch(runner, &tokens, 2) == DFM_OK)
        #expect(dfm_runner_stop(runner, DFM_STOP_DRAIN) == DFM_OK)

        let refused = object()
        var refusedToken = cToken(place: placeResult, data: refused)
        #expect(dfm_runner_dispatch(runner, &refusedToken, 1) == DFM_ERR_CLOSED)
        #expect(releases.current == 0)
        countingRelease(refused.as.object.pointer)
        #expect(releases.current == 1)

        dfm_runner_destroy(runner)
        #expect(releases.current == 3)
    }

    @Test("dfm_runner_stop refuses a NULL runner and an unknown mode")
    func stopArguments() {
        #expect(dfm_runner_stop(nil, DFM_STOP_DRAIN) == DFM_ERR_INVALID_ARGUMENT)
        let runner = makeRunner(dfm_manual_dispatcher_create(nil))
        defer { dfm_runner_destroy(runner) }
        #expect(dfm_runner_stop(runner, dfm_stop_mode(rawValue: 7)) == DFM_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("dfm_runner_stop"))
        #expect(dfm_runner_start(runner) == DFM_OK)
    }

    @Test("an async C callback finishes with dfm_complete from another thread")
    func asyncCompletion() {
        let box = CompletionBox()
        let reports = ReportBox()
        let runner = makeRunner(dfm_manual_dispatcher_create(nil)) { set in
            _ = dfm_callbacks_set_default_async(
                set, storingAsyncCallback, Unmanaged.passUnretained(box).toOpaque())
            _ = dfm_callbacks_set_error_handler(
                set, recordingErrorHandler, Unmanaged.passUnretained(reports).toOpaque())
        }
        defer { dfm_runner_destroy(runner) }
        let second = UnsafeRawPointer(("second" as StaticString).utf8Start)
            .assumingMemoryBound(to: CChar.self)
        var tokens = [cToken(place: placeResult), cToken(place: second)]
        #expect(dfm_runner_dispatch(runner, &tokens, 2) == DFM_OK)

        #expect(dfm_process_pending(runner) == DFM_ERR_WRONG_KIND)
        #expect(dfm_process_pending_async(runner) == DFM_OK)
        #expect(box.places.withLock { $0 } == ["result"])
        #expect(dfm_process_pending_async(runner) == DFM_OK)
        #expect(box.places.withLock { $0 } == ["result"])  // still in flight

        let handle = box.handles.withLock { $0[0] }
        let completed = onAnotherThread {
            dfm_complete(OpaquePointer(bitPattern: handle), 0)
            return true
        }
        #expect(completed == true)
        // The next callback never starts inside dfm_complete.
        #expect(box.places.withLock { $0 } == ["result"])
        #expect(dfm_process_pending_async(runner) == DFM_OK)
        #expect(box.places.withLock { $0 } == ["result", "second"])
        #expect(stats(runner).delivered == 1)

        // A second completion of the same handle is ignored and counted.
        dfm_complete(OpaquePointer(bitPattern: handle), 0)
        #expect(lastError().contains("dfm_complete"))
        let secondHandle = box.handles.withLock { $0[1] }
        dfm_complete(OpaquePointer(bitPattern: secondHandle), 0)
        #expect(dfm_process_pending_async(runner) == DFM_OK)
        let counts = stats(runner)
        #expect(counts.delivered == 2)
        #expect(counts.failed == 1)
        let got = reports.reports.withLock { $0 }
        #expect(got.count == 1)
        #expect(got.first?.hasToken == false)
        #expect(got.first?.status == code(DFM_ERR_INVALID_ARGUMENT))
    }

    @Test("callbacks get NUL-terminated text and NULL levels at depth 0, from every runner")
    func normalisedTokens() {
        for dispatcher in [
            dfm_direct_dispatcher_create(), dfm_manual_dispatcher_create(nil),
        ] {
            let box = TokenCheckBox()
            let runner = makeRunner(dispatcher) { set in
                _ = dfm_callbacks_set_default(
                    set, checkingCallback, Unmanaged.passUnretained(box).toOpaque())
            }
            defer { dfm_runner_destroy(runner) }
            // Text that is not NUL-terminated at its length, with a NUL
            // inside; a frame of depth 0 whose levels pointer is set.
            let text: [CChar] = [0x61, 0x00, 0x62, 0x63, 0x64]
            let levels: [Int64] = [5, 6]
            text.withUnsafeBufferPointer { textBytes in
                levels.withUnsafeBufferPointer { levelBuffer in
                    var data = dfm_value()
                    data.kind = DFM_VALUE_STRING
                    data.as.text.data = textBytes.baseAddress
                    data.as.text.length = 3
                    var token = cToken(place: placeResult, data: data)
                    token.frame.levels = levelBuffer.baseAddress
                    token.frame.depth = 0
                    #expect(dfm_runner_dispatch(runner, &token, 1) == DFM_OK)
                }
            }
            if dfm_has_pending(runner) {
                #expect(dfm_process_pending(runner) == DFM_OK)
            }
            let seen = box.seen.withLock { $0 }
            #expect(
                seen == [
                    TokenCheckBox.Seen(
                        depth: 0, levelsNil: true, terminated: true, text: [0x61, 0, 0x62])
                ])
        }
    }

    @Test("registering a place twice replaces the earlier callback")
    func placeReplaced() {
        let counter = Counter()
        let reports = ReportBox()
        let runner = makeRunner(dfm_direct_dispatcher_create()) { set in
            _ = dfm_callbacks_add_place(set, placeResult, failingCallback, nil)
            _ = dfm_callbacks_add_place(
                set, placeResult, countingCallback, Unmanaged.passUnretained(counter).toOpaque())
            _ = dfm_callbacks_set_error_handler(
                set, recordingErrorHandler, Unmanaged.passUnretained(reports).toOpaque())
        }
        defer { dfm_runner_destroy(runner) }
        var token = cToken(place: placeResult)
        #expect(dfm_runner_dispatch(runner, &token, 1) == DFM_OK)
        #expect(counter.current == 1)
        #expect(reports.reports.withLock { $0.isEmpty })
    }

    @Test("the version matches the header")
    func version() {
        #expect(
            dfm_version()
                == UInt32(DFM_VERSION_MAJOR * 10000 + DFM_VERSION_MINOR * 100 + DFM_VERSION_PATCH))
        let text = String(cString: dfm_version_string())
        #expect(text == "\(DFM_VERSION_MAJOR).\(DFM_VERSION_MINOR).\(DFM_VERSION_PATCH)")
    }
}
