import CDFMShim
import Glibc

/// What happened to one token.
enum Outcome {
    case delivered
    case failed
    case dropped
}

extension RunnerCore {
    /// Calls the token's sync callback on this thread.
    @inline(__always)
    func deliverSync(_ token: UnsafePointer<dfm_token>, route: UInt16) -> Outcome {
        let entry = routeIndex.entries + Int(route)
        switch entry.pointee.kind {
        case .c:
            let result = entry.pointee.syncFunction.unsafelyUnwrapped(token, entry.pointee.user)
            if result == 0 { return .delivered }
            return callbackFailed(token, result)
        case .shaped:
            return deliverShaped(token, entry)
        case .swiftSync:
            return deliverSwift(token, entry)
        case .drop:
            return .dropped
        case .cAsync, .swiftAsync:
            report(token, .wrongKind, "an async callback cannot run in a sync delivery")
            return .failed
        }
    }

    /// Out of line, so that the hot path carries no message building.
    @inline(never)
    private func callbackFailed(_ token: UnsafePointer<dfm_token>, _ result: Int32) -> Outcome {
        report(
            token, .callbackFailed,
            "the callback for place '\(placeName(token))' returned \(result)")
        return .failed
    }

    @inline(never)
    private func deliverSwift(
        _ token: UnsafePointer<dfm_token>, _ entry: UnsafePointer<RouteEntry>
    ) -> Outcome {
        guard case .sync(let callback) = routes.swiftCallbacks[entry.pointee.swiftIndex].body
        else { return .failed }
        let swiftToken = TokenBridge.swiftToken(token)
        do {
            try callback(
                swiftToken.site, swiftToken.node, swiftToken.frame, swiftToken.place,
                swiftToken.data)
            return .delivered
        } catch {
            report(
                token, .callbackFailed,
                "the callback for place '\(swiftToken.place)' threw: \(error)")
            return .failed
        }
    }

    @inline(__always)
    private func deliverShaped(
        _ token: UnsafePointer<dfm_token>, _ entry: UnsafePointer<RouteEntry>
    ) -> Outcome {
        let packed = cdfm_shape_invoke(entry.pointee.shape, token, entry.pointee.user)
        if packed == 0 { return .delivered }
        return shapedFailure(token, entry, packed)
    }

    /// A mismatch (the function was not called) or a non-zero result.
    @inline(never)
    private func shapedFailure(
        _ token: UnsafePointer<dfm_token>, _ entry: UnsafePointer<RouteEntry>, _ packed: Int64
    ) -> Outcome {
        let status = Int32(truncatingIfNeeded: packed >> 32)
        let result = Int32(truncatingIfNeeded: packed)
        if status != DFM_OK.rawValue {
            // A mismatch never calls the function, so asking again for the
            // message is safe; the hot path skips the thread-local buffer.
            let message = cdfm_message_buffer()!
            var ignored: Int32 = 0
            _ = cdfm_shape_call(
                entry.pointee.shape, token, entry.pointee.user, &ignored, message,
                Int(CDFM_MESSAGE_CAPACITY))
            report(token, Status(rawValue: status) ?? .typeMismatch, String(cString: message))
            return .failed
        }
        report(
            token, .callbackFailed,
            "the shaped callback for place '\(placeName(token))' returned \(result)")
        return .failed
    }

    func placeName(_ token: UnsafePointer<dfm_token>) -> String {
        token.pointee.target_place.map { String(cString: $0) } ?? ""
    }

    /// Hands a failure to the set's error handler, on this thread.
    @inline(never)
    func report(_ token: UnsafePointer<dfm_token>?, _ status: Status, _ message: String) {
        switch routes.errorSink {
        case .none:
            break
        case .c(let handler, let context):
            message.withCString { handler(token, status.rawValue, $0, context) }
        case .swift(let handler):
            handler(token.map(TokenBridge.swiftToken), DFMError(status, message))
        }
    }
}

/// Converts between the C view of a token and the Swift `Token`.
enum TokenBridge {
    static func swiftToken(_ token: UnsafePointer<dfm_token>) -> Token {
        let t = token.pointee
        let node: NodeID
        switch t.source_node.kind {
        case DFM_NODE_INT: node = .int(t.source_node.id)
        case DFM_NODE_NAME: node = .name(String(cString: t.source_node.name))
        default: node = .none
        }
        let frame: Frame
        if t.frame.is_stop {
            frame = .stop
        } else {
            frame = Frame(Array(UnsafeBufferPointer(start: t.frame.levels, count: t.frame.depth)))
        }
        return Token(
            site: String(cString: t.source_site), node: node, frame: frame,
            place: String(cString: t.target_place), data: value(t.data))
    }

    static func value(_ value: dfm_value) -> Value {
        func text() -> String {
            let bytes = UnsafeRawBufferPointer(
                start: value.as.text.data, count: value.as.text.length)
            return String(decoding: bytes, as: UTF8.self)
        }
        switch value.kind {
        case DFM_VALUE_BOOL: return .bool(value.as.boolean)
        case DFM_VALUE_INT: return .int(value.as.integer)
        case DFM_VALUE_DOUBLE: return .double(value.as.real)
        case DFM_VALUE_STRING: return .string(text())
        case DFM_VALUE_JSON: return .json(text())
        case DFM_VALUE_ERROR: return .error(text())
        case DFM_VALUE_BYTES:
            return .bytes(
                Array(
                    UnsafeRawBufferPointer(
                        start: value.as.bytes.data, count: value.as.bytes.length)))
        case DFM_VALUE_OBJECT:
            return .object(
                HostObject(pointer: value.as.object.pointer, release: value.as.object.release))
        case DFM_VALUE_STOP: return .stop
        default: return .none
        }
    }

    /// Calls `body` with a C view of a Swift token.  The view lives only
    /// during the call.
    static func withCToken<R>(_ token: Token, _ body: (UnsafePointer<dfm_token>) -> R) -> R {
        token.site.withCString { site in
            token.place.withCString { place in
                withNodeName(token.node) { name in
                    token.frame.levels.withUnsafeBufferPointer { levels in
                        withCValue(token.data) { value in
                            var view = dfm_token()
                            view.source_site = site
                            view.target_place = place
                            switch token.node {
                            case .none: view.source_node.kind = DFM_NODE_NONE
                            case .int(let id):
                                view.source_node.kind = DFM_NODE_INT
                                view.source_node.id = id
                            case .name:
                                view.source_node.kind = DFM_NODE_NAME
                                view.source_node.name = name
                            }
                            view.frame.is_stop = token.frame.isStop
                            view.frame.depth = levels.count
                            view.frame.levels = levels.count > 0 ? levels.baseAddress : nil
                            view.data = value
                            return withUnsafePointer(to: &view) { body($0) }
                        }
                    }
                }
            }
        }
    }

    private static func withNodeName<R>(
        _ node: NodeID, _ body: (UnsafePointer<CChar>?) -> R
    ) -> R {
        if case .name(let name) = node { return name.withCString { body($0) } }
        return body(nil)
    }

    private static func withCValue<R>(_ value: Value, _ body: (dfm_value) -> R) -> R {
        var c = dfm_value()
        c.kind = value.kind
        switch value {
        case .none, .stop:
            return body(c)
        case .bool(let flag):
            c.as.boolean = flag
            return body(c)
        case .int(let number):
            c.as.integer = number
            return body(c)
        case .double(let number):
            c.as.real = number
            return body(c)
        case .string(let text), .json(let text), .error(let text):
            var text = text
            return text.withUTF8 { bytes in
                c.as.text.data = UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(
                    to: CChar.self)
                c.as.text.length = bytes.count
                return body(c)
            }
        case .bytes(let bytes):
            return bytes.withUnsafeBytes { raw in
                c.as.bytes.data = raw.baseAddress
                c.as.bytes.length = raw.count
                return body(c)
            }
        case .object(let object):
            c.as.object.pointer = object.pointer
            c.as.object.release = object.release
            return body(c)
        }
    }
}
