import CDFMShim
import Glibc

extension TokenBridge {
    /// Calls `body` with C views of a batch of Swift tokens.  Every string,
    /// level and payload is copied into one buffer that lives for the call;
    /// the runner copies again what it keeps.
    static func withCTokens<R>(
        _ tokens: [Token], _ body: (UnsafePointer<dfm_token>, Int) -> R
    ) -> R {
        var bytes = 0
        for token in tokens {
            bytes += token.frame.levels.count * 8
            bytes += token.site.utf8.count + token.place.utf8.count + 2
            if case .name(let name) = token.node { bytes += name.utf8.count + 1 }
            switch token.data {
            case .string(let text), .json(let text), .error(let text): bytes += text.utf8.count + 1
            case .bytes(let payload): bytes += payload.count
            default: break
            }
            bytes = (bytes + 7) & ~7
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 8), alignment: 8)
        defer { storage.deallocate() }

        var cursor = storage
        func place(_ text: String) -> UnsafePointer<CChar> {
            let start = cursor.assumingMemoryBound(to: CChar.self)
            var text = text
            let count = text.withUTF8 { utf8 -> Int in
                if let base = utf8.baseAddress { memcpy(cursor, base, utf8.count) }
                return utf8.count
            }
            cursor.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)
            cursor += count + 1
            return UnsafePointer(start)
        }

        var views: [dfm_token] = []
        views.reserveCapacity(tokens.count)
        for token in tokens {
            var view = dfm_token()
            let levels = token.frame.levels
            if !levels.isEmpty {
                let start = cursor.assumingMemoryBound(to: Int64.self)
                for (index, level) in levels.enumerated() { start[index] = level }
                cursor += levels.count * 8
                view.frame.levels = UnsafePointer(start)
            }
            view.frame.depth = levels.count
            view.frame.is_stop = token.frame.isStop
            view.source_site = place(token.site)
            view.target_place = place(token.place)
            switch token.node {
            case .none: view.source_node.kind = DFM_NODE_NONE
            case .int(let id):
                view.source_node.kind = DFM_NODE_INT
                view.source_node.id = id
            case .name(let name):
                view.source_node.kind = DFM_NODE_NAME
                view.source_node.name = place(name)
            }
            view.data.kind = token.data.kind
            switch token.data {
            case .none, .stop: break
            case .bool(let flag): view.data.as.boolean = flag
            case .int(let number): view.data.as.integer = number
            case .double(let number): view.data.as.real = number
            case .string(let text), .json(let text), .error(let text):
                view.data.as.text.data = place(text)
                view.data.as.text.length = text.utf8.count
            case .bytes(let payload):
                let start = cursor
                payload.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { memcpy(start, base, raw.count) }
                }
                cursor += payload.count
                view.data.as.bytes.data = UnsafeRawPointer(start)
                view.data.as.bytes.length = payload.count
            case .object(let object):
                view.data.as.object.pointer = object.pointer
                view.data.as.object.release = object.release
            }
            cursor = storage + ((cursor - storage + 7) & ~7)
            views.append(view)
        }
        return views.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
