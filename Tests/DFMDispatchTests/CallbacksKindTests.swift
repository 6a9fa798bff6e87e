import DFMDispatch
import Testing

/// Upstream: TestCallbacksKind.
@Suite("callbacksKind")
struct CallbacksKindTests {
    let sync = Callback.sync { _, _, _, _, _ in }
    let async = Callback.async { _, _, _, _, _ in }

    @Test("one sync default callback is sync")
    func syncDefault() throws {
        #expect(try callbacksKind(defaultCallback: sync) == .sync)
    }

    @Test("a sync default with sync place callbacks is sync")
    func syncDefaultAndPlaces() throws {
        let kind = try callbacksKind(
            defaultCallback: sync, placeCallbacks: ["result": sync, "status": sync])
        #expect(kind == .sync)
    }

    @Test("an async default is async, and async default plus async places too")
    func asyncCallbacks() throws {
        #expect(try callbacksKind(defaultCallback: async) == .async)
        let kind = try callbacksKind(
            defaultCallback: async, placeCallbacks: ["result": async, "status": async])
        #expect(kind == .async)
    }

    @Test("a sync default with an async place callback throws mixedCallbacks mentioning mixed")
    func mixedThrows() {
        let error = #expect(throws: DFMError.self) {
            try callbacksKind(defaultCallback: sync, placeCallbacks: ["result": async])
        }
        #expect(error?.status == .mixedCallbacks)
        #expect(error?.message.lowercased().contains("mixed") == true)
    }

    @Test("an async default with a sync place callback is mixed as well")
    func mixedTheOtherWay() {
        #expect(
            status { _ = try callbacksKind(defaultCallback: async, placeCallbacks: ["a": sync]) }
                == .mixedCallbacks)
        #expect(
            status { _ = try callbacksKind(placeCallbacks: ["a": sync, "b": async]) }
                == .mixedCallbacks)
    }

    @Test("no callbacks is none")
    func noCallbacks() throws {
        #expect(try callbacksKind() == .none)
        #expect(try callbacksKind(defaultCallback: nil, placeCallbacks: [:]) == .none)
    }

    @Test("a nil default with a sync place callback is sync")
    func nilDefaultSyncPlace() throws {
        #expect(try callbacksKind(defaultCallback: nil, placeCallbacks: ["result": sync]) == .sync)
        #expect(try callbacksKind(placeCallbacks: ["result": async]) == .async)
    }

    @Test("every dispatcher refuses a mixed set with mixedCallbacks")
    func dispatchersRefuseMixed() throws {
        let places = ["result": async]
        #expect(
            status {
                _ = try DirectDispatcher().createRunner(
                    defaultCallback: sync, placeCallbacks: places)
            }
                == .mixedCallbacks)
        #expect(
            status {
                _ = try ManualDispatcher().createRunner(
                    defaultCallback: sync, placeCallbacks: places)
            }
                == .mixedCallbacks)
        let dispatcher = ExecutorDispatcher(actor: CallbackHost())
        #expect(
            status {
                _ = try dispatcher.createRunner(defaultCallback: sync, placeCallbacks: places)
            }
                == .mixedCallbacks)
    }
}
