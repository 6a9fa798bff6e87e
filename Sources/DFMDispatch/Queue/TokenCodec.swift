import CDFMShim
import Glibc

/// The layout of a stored token: a 128-byte slot whose first cache line holds
/// everything a small token needs (header, frame levels, site).
///
///     0  seq        UInt64  slot index + 1 once written (the ready flag)
///     8  route      UInt16  index into the runner's RouteTable
///    10  valueKind  UInt8
///    11  nodeKind   UInt8
///    12  flags      UInt8   isStop | spilled
///    13  depth      UInt8   frame depth (inline tokens)
///    14  siteLen    UInt8   (inline tokens)
///    15  placeLen   UInt8   (inline tokens; 0 when the place is interned)
///    16  node       Int64   node id, or the node name's length
///    24  value0     UInt64  int, double bits, bool, object pointer, length
///    32  value1     UInt64  object release function
///    40  blob       88 bytes: levels, site, place, node name, payload
///
/// A token whose blob does not fit (or whose depth or string lengths exceed
/// a byte) is "spilled": the blob lives in a buffer from the SpillPool and
/// the slot's blob area holds that buffer's address.
enum Slot {
    static let size = 128
    static let seq = 0
    static let route = 8
    static let valueKind = 10
    static let nodeKind = 11
    static let flags = 12
    static let depth = 13
    static let siteLength = 14
    static let placeLength = 15
    static let node = 16
    static let value0 = 24
    static let value1 = 32
    static let blob = 40
    static let inlineBlobCapacity = 88

    static let flagStop: UInt8 = 1
    static let flagSpilled: UInt8 = 2
    static let flagPlaceInterned: UInt8 = 4
}

/// The header of a spill buffer: the lengths an inline slot keeps in bytes.
enum SpillHeader {
    static let sizeClass = 0
    static let depth = 8
    static let siteLength = 16
    static let placeLength = 24
    static let size = 32
}

/// What the first pass over a C token learned: enough to size its storage.
struct TokenShape {
    var siteLength = 0
    var placeLength = 0
    var nameLength = 0
    var payloadLength = 0
    var route: UInt16 = 0
    var placeInterned = false

    /// Bytes of the blob: levels, site, place, name and payload.
    @inline(__always)
    func blobSize(depth: Int) -> Int {
        depth &* 8 &+ siteLength &+ 1 &+ (placeInterned ? 0 : placeLength &+ 1)
            &+ (nameLength > 0 ? nameLength &+ 1 : 0) &+ payloadLength
    }

    @inline(__always)
    func fitsInline(depth: Int) -> Bool {
        depth <= 255 && siteLength <= 255 && placeLength <= 255
            && blobSize(depth: depth) <= Slot.inlineBlobCapacity
    }
}

enum TokenCodec {
    /// Validates a C token and measures it.  Returns nil when the token is
    /// well formed, else a message naming the field.
    @inline(__always)
    static func check(
        _ token: UnsafePointer<dfm_token>, routes: RouteIndex, into shape: inout TokenShape
    ) -> String? {
        if measure(token, routes: routes, into: &shape) { return nil }
        return diagnose(token, routes: routes, into: &shape) ?? "the token is malformed"
    }

    /// The hot path of `check`: true when the token is well formed, with
    /// its shape measured.
    @inline(__always)
    static func measure(
        _ token: UnsafePointer<dfm_token>, routes: RouteIndex, into shape: inout TokenShape
    ) -> Bool {
        guard let site = token.pointee.source_site else { return false }
        let siteLength = UTF8Check.cStringLength(site)
        guard siteLength >= 0, let place = token.pointee.target_place else { return false }
        shape.siteLength = siteLength
        let registered = routes.matchRegistered(place)
        if registered >= 0 {
            shape.placeLength = routes.entries[registered].placeLength
            shape.route = UInt16(truncatingIfNeeded: registered)
            shape.placeInterned = true
        } else {
            let placeLength = UTF8Check.cStringLength(place)
            guard placeLength >= 0 else { return false }
            shape.placeLength = placeLength
            shape.route = registered == -1 ? routes.defaultIndex : routes.route(place, placeLength)
            shape.placeInterned = Int(shape.route) < routes.placeCount
        }

        let nodeKind = token.pointee.source_node.kind
        if nodeKind == DFM_NODE_NAME {
            guard let name = token.pointee.source_node.name else { return false }
            let nameLength = UTF8Check.cStringLength(name)
            guard nameLength >= 0 else { return false }
            shape.nameLength = nameLength &+ 1
        } else {
            guard nodeKind.rawValue <= DFM_NODE_INT.rawValue else { return false }
            shape.nameLength = 0
        }

        let depth = token.pointee.frame.depth
        if depth != 0 {
            guard !token.pointee.frame.is_stop, token.pointee.frame.levels != nil,
                depth <= 1 << 24
            else { return false }
        }
        return measureValue(token, into: &shape)
    }

    /// The hot path of checkValue: no messages.
    @inline(__always)
    private static func measureValue(
        _ token: UnsafePointer<dfm_token>, into shape: inout TokenShape
    ) -> Bool {
        let kind = token.pointee.data.kind
        if kind.rawValue <= DFM_VALUE_DOUBLE.rawValue || kind == DFM_VALUE_OBJECT
            || kind == DFM_VALUE_STOP
        {
            shape.payloadLength = 0
            return true
        }
        return checkValue(token.pointee.data, into: &shape) == nil
    }

    /// The slow path of `check`: says what is wrong with a token that
    /// `measure` refused.  Kept out of line so that the hot path carries no
    /// message-building code.
    @inline(never)
    static func diagnose(
        _ token: UnsafePointer<dfm_token>, routes: RouteIndex, into shape: inout TokenShape
    ) -> String? {
        guard let site = token.pointee.source_site else { return "source_site is NULL" }
        let siteLength = UTF8Check.cStringLength(site)
        if siteLength < 0 { return badUTF8("source_site", site, -siteLength - 1) }
        guard let place = token.pointee.target_place else { return "target_place is NULL" }
        shape.siteLength = siteLength
        let registered = routes.matchRegistered(place)
        if registered >= 0 {
            shape.placeLength = routes.entries[registered].placeLength
            shape.route = UInt16(truncatingIfNeeded: registered)
            shape.placeInterned = true
        } else {
            let placeLength = UTF8Check.cStringLength(place)
            if placeLength < 0 { return badUTF8("target_place", place, -placeLength - 1) }
            shape.placeLength = placeLength
            shape.route = routes.route(place, placeLength)
            shape.placeInterned = Int(shape.route) < routes.placeCount
        }

        switch token.pointee.source_node.kind {
        case DFM_NODE_NONE, DFM_NODE_INT:
            shape.nameLength = 0
        case DFM_NODE_NAME:
            guard let name = token.pointee.source_node.name else {
                return "source_node is DFM_NODE_NAME but its name is NULL"
            }
            let nameLength = UTF8Check.cStringLength(name)
            if nameLength < 0 { return badUTF8("source_node.name", name, -nameLength - 1) }
            // A name of length 0 still needs its terminator in the blob.
            shape.nameLength = nameLength &+ 1
        default:
            return "source_node.kind \(token.pointee.source_node.kind.rawValue) is not a "
                + "dfm_node_kind (0 to 2)"
        }

        let frame = token.pointee.frame
        if frame.is_stop && frame.depth != 0 {
            return "frame is the stop frame but its depth is \(frame.depth) (must be 0)"
        }
        if frame.depth > 0 && frame.levels == nil {
            return "frame.depth is \(frame.depth) but frame.levels is NULL"
        }
        if frame.depth > 1 << 24 {
            return "frame.depth \(frame.depth) is larger than 16777216 levels"
        }
        return checkValue(token.pointee.data, into: &shape)
    }

    @inline(__always)
    private static func checkValue(_ value: dfm_value, into shape: inout TokenShape) -> String? {
        switch value.kind {
        case DFM_VALUE_NONE, DFM_VALUE_BOOL, DFM_VALUE_INT, DFM_VALUE_DOUBLE, DFM_VALUE_OBJECT,
            DFM_VALUE_STOP:
            shape.payloadLength = 0
            return nil
        case DFM_VALUE_STRING, DFM_VALUE_JSON, DFM_VALUE_ERROR:
            let length = value.as.text.length
            guard length < Int.max / 2 else { return "data.as.text.length \(length) is too large" }
            guard let text = value.as.text.data else {
                if length == 0 {
                    shape.payloadLength = 1
                    return nil
                }
                return "data.as.text.data is NULL but its length is \(length)"
            }
            let bytes = UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self)
            let bad = UTF8Check.firstInvalid(bytes, length)
            if bad >= 0 {
                return "data (\(kindName(value.kind))) is not valid UTF-8 (byte 0x"
                    + String(bytes[bad], radix: 16) + " at offset \(bad))"
            }
            shape.payloadLength = length &+ 1
            return nil
        case DFM_VALUE_BYTES:
            let length = value.as.bytes.length
            guard length < Int.max / 2 else { return "data.as.bytes.length \(length) is too large" }
            if value.as.bytes.data == nil && length != 0 {
                return "data.as.bytes.data is NULL but its length is \(length)"
            }
            shape.payloadLength = length
            return nil
        default:
            return "data.kind \(value.kind.rawValue) is not a dfm_value_kind (0 to 9)"
        }
    }

    static func kindName(_ kind: dfm_value_kind) -> String {
        switch kind {
        case DFM_VALUE_NONE: "NONE"
        case DFM_VALUE_BOOL: "BOOL"
        case DFM_VALUE_INT: "INT"
        case DFM_VALUE_DOUBLE: "DOUBLE"
        case DFM_VALUE_STRING: "STRING"
        case DFM_VALUE_BYTES: "BYTES"
        case DFM_VALUE_JSON: "JSON"
        case DFM_VALUE_OBJECT: "OBJECT"
        case DFM_VALUE_STOP: "STOP"
        case DFM_VALUE_ERROR: "ERROR"
        default: "kind \(kind.rawValue)"
        }
    }

    private static func badUTF8(_ field: String, _ text: UnsafePointer<CChar>, _ offset: Int)
        -> String
    {
        let byte = UInt8(bitPattern: text[offset])
        return "\(field) is not valid UTF-8 (byte 0x\(String(byte, radix: 16)) at offset \(offset))"
    }

    // MARK: Writing

    /// Writes a checked token into a slot (and its spill buffer, if it needs
    /// one).  Does not publish the slot: the caller stores `seq` last.
    @inline(__always)
    static func write(
        _ token: UnsafePointer<dfm_token>, shape: TokenShape, slot: UnsafeMutableRawPointer,
        spill: UnsafeMutableRawPointer?
    ) {
        let depth = Int(token.pointee.frame.depth)
        var flags: UInt8 = token.pointee.frame.is_stop ? Slot.flagStop : 0
        if shape.placeInterned { flags |= Slot.flagPlaceInterned }
        slot.storeBytes(of: shape.route, toByteOffset: Slot.route, as: UInt16.self)
        slot.storeBytes(
            of: UInt8(truncatingIfNeeded: token.pointee.data.kind.rawValue),
            toByteOffset: Slot.valueKind, as: UInt8.self)
        slot.storeBytes(
            of: UInt8(truncatingIfNeeded: token.pointee.source_node.kind.rawValue),
            toByteOffset: Slot.nodeKind, as: UInt8.self)

        var blob: UnsafeMutableRawPointer
        if let spill {
            flags |= Slot.flagSpilled
            slot.storeBytes(of: spill, toByteOffset: Slot.blob, as: UnsafeMutableRawPointer.self)
            spill.storeBytes(of: UInt64(depth), toByteOffset: SpillHeader.depth, as: UInt64.self)
            spill.storeBytes(
                of: UInt64(shape.siteLength), toByteOffset: SpillHeader.siteLength,
                as: UInt64.self)
            spill.storeBytes(
                of: UInt64(shape.placeLength), toByteOffset: SpillHeader.placeLength,
                as: UInt64.self)
            blob = spill + SpillHeader.size
        } else {
            slot.storeBytes(
                of: UInt8(truncatingIfNeeded: depth), toByteOffset: Slot.depth, as: UInt8.self)
            slot.storeBytes(
                of: UInt8(truncatingIfNeeded: shape.siteLength), toByteOffset: Slot.siteLength,
                as: UInt8.self)
            slot.storeBytes(
                of: UInt8(truncatingIfNeeded: shape.placeLength),
                toByteOffset: Slot.placeLength, as: UInt8.self)
            blob = slot + Slot.blob
        }
        slot.storeBytes(of: flags, toByteOffset: Slot.flags, as: UInt8.self)

        if depth > 0 {
            copy(blob, token.pointee.frame.levels, depth &* 8)
            blob += depth &* 8
        }
        copy(blob, token.pointee.source_site, shape.siteLength &+ 1)
        blob += shape.siteLength &+ 1
        if !shape.placeInterned {
            copy(blob, token.pointee.target_place, shape.placeLength &+ 1)
            blob += shape.placeLength &+ 1
        }

        let node = token.pointee.source_node
        switch node.kind {
        case DFM_NODE_INT:
            slot.storeBytes(of: node.id, toByteOffset: Slot.node, as: Int64.self)
        case DFM_NODE_NAME:
            slot.storeBytes(
                of: Int64(shape.nameLength &- 1), toByteOffset: Slot.node, as: Int64.self)
            memcpy(blob, node.name, shape.nameLength)
            blob += shape.nameLength
        default:
            slot.storeBytes(of: 0, toByteOffset: Slot.node, as: Int64.self)
        }

        let value = token.pointee.data
        switch value.kind {
        case DFM_VALUE_BOOL:
            slot.storeBytes(
                of: value.as.boolean ? 1 : 0, toByteOffset: Slot.value0, as: UInt64.self)
        case DFM_VALUE_INT:
            slot.storeBytes(of: value.as.integer, toByteOffset: Slot.value0, as: Int64.self)
        case DFM_VALUE_DOUBLE:
            slot.storeBytes(of: value.as.real, toByteOffset: Slot.value0, as: Double.self)
        case DFM_VALUE_STRING, DFM_VALUE_JSON, DFM_VALUE_ERROR:
            let length = value.as.text.length
            slot.storeBytes(of: UInt64(length), toByteOffset: Slot.value0, as: UInt64.self)
            if length > 0 { memcpy(blob, value.as.text.data, length) }
            blob.storeBytes(of: 0, toByteOffset: length, as: UInt8.self)
        case DFM_VALUE_BYTES:
            let length = value.as.bytes.length
            slot.storeBytes(of: UInt64(length), toByteOffset: Slot.value0, as: UInt64.self)
            if length > 0 { memcpy(blob, value.as.bytes.data, length) }
        case DFM_VALUE_OBJECT:
            slot.storeBytes(
                of: value.as.object.pointer, toByteOffset: Slot.value0,
                as: UnsafeMutableRawPointer?.self)
            slot.storeBytes(
                of: value.as.object.release, toByteOffset: Slot.value1,
                as: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?.self)
        default:
            slot.storeBytes(of: 0, toByteOffset: Slot.value0, as: UInt64.self)
        }
    }

    /// Copies `count` bytes; short runs inline, long ones through memcpy
    /// (a call costs more than copying a site name or two frame levels).
    /// Short runs use two overlapping loads and stores that stay inside
    /// `[0, count)`, so they never read past the source.
    @inline(__always)
    static func copy(_ target: UnsafeMutableRawPointer, _ source: UnsafeRawPointer?, _ count: Int) {
        let source = source.unsafelyUnwrapped
        if count >= 8 && count <= 16 {
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            target.storeBytes(of: head, as: UInt64.self)
            target.storeBytes(of: tail, toByteOffset: count &- 8, as: UInt64.self)
        } else if count >= 4 && count < 8 {
            let head = source.loadUnaligned(as: UInt32.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            target.storeBytes(of: head, as: UInt32.self)
            target.storeBytes(of: tail, toByteOffset: count &- 4, as: UInt32.self)
        } else if count > 0 && count < 4 {
            let first = source.load(as: UInt8.self)
            let middle = source.load(fromByteOffset: count >> 1, as: UInt8.self)
            let last = source.load(fromByteOffset: count &- 1, as: UInt8.self)
            target.storeBytes(of: first, as: UInt8.self)
            target.storeBytes(of: middle, toByteOffset: count >> 1, as: UInt8.self)
            target.storeBytes(of: last, toByteOffset: count &- 1, as: UInt8.self)
        } else if count > 16 {
            memcpy(target, source, count)
        }
    }

    // MARK: Reading

    /// Builds the C view of a stored token.  Pointers point into the slot or
    /// its spill buffer, so the view lives as long as the slot does.
    @inline(__always)
    static func read(
        _ slot: UnsafeRawPointer, routes: RouteIndex, into token: inout dfm_token
    ) {
        let flags = slot.load(fromByteOffset: Slot.flags, as: UInt8.self)
        let depth: Int
        let siteLength: Int
        let placeLength: Int
        var blob: UnsafeRawPointer
        if flags & Slot.flagSpilled != 0 {
            let spill = slot.load(fromByteOffset: Slot.blob, as: UnsafeRawPointer.self)
            depth = Int(spill.load(fromByteOffset: SpillHeader.depth, as: UInt64.self))
            siteLength = Int(spill.load(fromByteOffset: SpillHeader.siteLength, as: UInt64.self))
            placeLength = Int(
                spill.load(fromByteOffset: SpillHeader.placeLength, as: UInt64.self))
            blob = spill + SpillHeader.size
        } else {
            depth = Int(slot.load(fromByteOffset: Slot.depth, as: UInt8.self))
            siteLength = Int(slot.load(fromByteOffset: Slot.siteLength, as: UInt8.self))
            placeLength = Int(slot.load(fromByteOffset: Slot.placeLength, as: UInt8.self))
            blob = slot + Slot.blob
        }

        token.frame.is_stop = flags & Slot.flagStop != 0
        token.frame.depth = depth
        if depth > 0 {
            token.frame.levels = blob.assumingMemoryBound(to: Int64.self)
            blob += depth &* 8
        } else {
            token.frame.levels = nil
        }
        token.source_site = blob.assumingMemoryBound(to: CChar.self)
        blob += siteLength &+ 1
        if flags & Slot.flagPlaceInterned != 0 {
            let route = Int(slot.load(fromByteOffset: Slot.route, as: UInt16.self))
            token.target_place = routes.entries[route].place
        } else {
            token.target_place = blob.assumingMemoryBound(to: CChar.self)
            blob += placeLength &+ 1
        }

        let nodeKind = dfm_node_kind(
            UInt32(slot.load(fromByteOffset: Slot.nodeKind, as: UInt8.self)))
        token.source_node.kind = nodeKind
        let nodeWord = slot.load(fromByteOffset: Slot.node, as: Int64.self)
        if nodeKind == DFM_NODE_NAME {
            token.source_node.id = 0
            token.source_node.name = blob.assumingMemoryBound(to: CChar.self)
            blob += Int(nodeWord) &+ 1
        } else {
            token.source_node.id = nodeWord
            token.source_node.name = nil
        }

        let kind = dfm_value_kind(UInt32(slot.load(fromByteOffset: Slot.valueKind, as: UInt8.self)))
        token.data.kind = kind
        switch kind {
        case DFM_VALUE_BOOL:
            token.data.as.boolean = slot.load(fromByteOffset: Slot.value0, as: UInt64.self) != 0
        case DFM_VALUE_INT:
            token.data.as.integer = slot.load(fromByteOffset: Slot.value0, as: Int64.self)
        case DFM_VALUE_DOUBLE:
            token.data.as.real = slot.load(fromByteOffset: Slot.value0, as: Double.self)
        case DFM_VALUE_STRING, DFM_VALUE_JSON, DFM_VALUE_ERROR:
            token.data.as.text.data = blob.assumingMemoryBound(to: CChar.self)
            token.data.as.text.length = Int(slot.load(fromByteOffset: Slot.value0, as: UInt64.self))
        case DFM_VALUE_BYTES:
            token.data.as.bytes.data = blob
            token.data.as.bytes.length = Int(
                slot.load(fromByteOffset: Slot.value0, as: UInt64.self))
        case DFM_VALUE_OBJECT:
            token.data.as.object.pointer = slot.load(
                fromByteOffset: Slot.value0, as: UnsafeMutableRawPointer?.self)
            token.data.as.object.release = slot.load(
                fromByteOffset: Slot.value1,
                as: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?.self)
        default:
            token.data.as.integer = 0
        }
    }
}
