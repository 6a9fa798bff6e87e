import CDFMShim
import Glibc

/// What a route does with a token.
enum RouteKind: UInt8 {
    case drop = 0
    case c
    case cAsync
    case shaped
    case swiftSync
    case swiftAsync
}

/// One route, as plain data: the pump reads it without touching reference
/// counts, so delivering through a C callback costs no ARC traffic.
struct RouteEntry {
    var kind: RouteKind = .drop
    var syncFunction: dfm_callback? = nil
    var asyncFunction: dfm_async_callback? = nil
    var shape: OpaquePointer? = nil
    var user: UnsafeMutableRawPointer? = nil
    /// The interned place name (NUL-terminated), nil for the default route.
    var place: UnsafePointer<CChar>? = nil
    var placeLength: Int = 0
    var swiftIndex: Int = 0
}

/// The immutable routing of a runner: place → callback, else the default,
/// else drop.  Built once when the runner is created (a copy of the set), so
/// the set may change or die afterwards without affecting the runner.
final class RouteTable: @unchecked Sendable {
    /// Routes of registered places, then one default route (maybe `.drop`).
    let entries: UnsafeMutablePointer<RouteEntry>
    let placeCount: Int
    let swiftCallbacks: [Callback]
    let errorSink: ErrorSink
    let kind: CallbacksKind

    private let shapes: [ShapedFunction]
    private let names: UnsafeMutablePointer<CChar>
    let hashes: UnsafeMutablePointer<UInt64>
    let buckets: UnsafeMutablePointer<UInt16>
    let bucketMask: Int
    /// Each place's `ShortString.key`, for the hot paths' one-word match.
    let shortKeys: UnsafeMutablePointer<UInt64>

    /// Tables with more places than this use the hash index; fewer are
    /// scanned, which is faster for the handful of places a pipeline has.
    static let linearScanLimit = 8
    static let maximumPlaces = 65_000
    static let noBucket = UInt16.max

    init(_ set: CallbackSet) throws(DFMError) {
        kind = try set.kind()
        guard set.placeNames.count <= RouteTable.maximumPlaces else {
            throw DFMError(
                .invalidArgument,
                "a callback set may have at most \(RouteTable.maximumPlaces) places; this one has "
                    + "\(set.placeNames.count)")
        }
        placeCount = set.placeNames.count
        errorSink = set.errorSink

        let nameBytes = set.placeNames.reduce(0) { $0 + $1.utf8.count + 1 }
        names = .allocate(capacity: max(nameBytes, 1))
        entries = .allocate(capacity: placeCount + 1)
        hashes = .allocate(capacity: placeCount + 1)
        shortKeys = .allocate(capacity: placeCount + 1)
        var bucketCount = 16
        while bucketCount < placeCount * 2 { bucketCount <<= 1 }
        bucketMask = bucketCount - 1
        buckets = .allocate(capacity: bucketCount)
        buckets.initialize(repeating: RouteTable.noBucket, count: bucketCount)

        var swift: [Callback] = []
        var shapes: [ShapedFunction] = []
        var offset = 0
        for (index, name) in set.placeNames.enumerated() {
            let callback = set.placeCallbacks[name]!
            var entry = RouteTable.entry(for: callback, swift: &swift, shapes: &shapes)
            let length = name.utf8.count
            let copy = names + offset
            name.withCString { copy.initialize(from: $0, count: length + 1) }
            offset += length + 1
            entry.place = UnsafePointer(copy)
            entry.placeLength = length
            (entries + index).initialize(to: entry)
            shortKeys[index] = ShortString.key(copy, length: length)

            let hash = RouteIndex.hash(UnsafeRawPointer(copy), length)
            hashes[index] = hash
            var bucket = Int(truncatingIfNeeded: hash) & bucketMask
            while buckets[bucket] != RouteTable.noBucket { bucket = (bucket + 1) & bucketMask }
            buckets[bucket] = UInt16(index)
        }
        let fallback =
            set.defaultCallback.map { RouteTable.entry(for: $0, swift: &swift, shapes: &shapes) }
            ?? RouteEntry()
        (entries + placeCount).initialize(to: fallback)
        swiftCallbacks = swift
        self.shapes = shapes
    }

    deinit {
        entries.deinitialize(count: placeCount + 1)
        entries.deallocate()
        names.deallocate()
        hashes.deallocate()
        shortKeys.deallocate()
        buckets.deallocate()
    }

    private static func entry(
        for callback: Callback, swift: inout [Callback], shapes: inout [ShapedFunction]
    ) -> RouteEntry {
        var entry = RouteEntry()
        switch callback.body {
        case .c(let function, let user):
            entry.kind = .c
            entry.syncFunction = function
            entry.user = user
        case .cAsync(let function, let user):
            entry.kind = .cAsync
            entry.asyncFunction = function
            entry.user = user
        case .shaped(let function, let user):
            entry.kind = .shaped
            entry.shape = function.shape
            entry.user = user
            shapes.append(function)
        case .sync:
            entry.kind = .swiftSync
            entry.swiftIndex = swift.count
            swift.append(callback)
        case .async:
            entry.kind = .swiftAsync
            entry.swiftIndex = swift.count
            swift.append(callback)
        }
        return entry
    }

    /// The plain-data view the hot paths use.
    var index: RouteIndex {
        RouteIndex(
            entries: entries, placeCount: placeCount, hashes: hashes, buckets: buckets,
            bucketMask: bucketMask, shortKeys: shortKeys)
    }
}

/// The route table as plain pointers: copied into each runner so that
/// routing a token touches no reference count.  Valid while its RouteTable
/// lives (the runner keeps it).
struct RouteIndex: @unchecked Sendable {
    let entries: UnsafeMutablePointer<RouteEntry>
    let placeCount: Int
    let hashes: UnsafeMutablePointer<UInt64>
    let buckets: UnsafeMutablePointer<UInt16>
    let bucketMask: Int
    let shortKeys: UnsafeMutablePointer<UInt64>

    /// The default route's index: used when no place matches.
    @inline(__always) var defaultIndex: UInt16 { UInt16(truncatingIfNeeded: placeCount) }

    /// Whether `route(short:)` may be used: the table is scanned, not hashed.
    @inline(__always) var routesShortPlaces: Bool { placeCount <= RouteTable.linearScanLimit }

    /// The route of a short ASCII place (`routesShortPlaces` tables only):
    /// the registered place with the same key, else the default route.
    @inline(__always)
    func route(short place: ShortString) -> UInt16 {
        var index = 0
        while index < placeCount {
            if shortKeys[index] == place.word { return UInt16(truncatingIfNeeded: index) }
            index &+= 1
        }
        return defaultIndex
    }

    /// The index of the registered place equal to the C string `place`, or
    /// -1 when no registered place matches (the default route applies).
    /// Compares byte by byte and stops at the first difference, so it never
    /// reads past the string's terminator; a match needs no UTF-8 check
    /// (registered names were checked).  Hash-indexed tables answer -2 and
    /// leave the lookup to `route(_:_:)`.
    @inline(__always)
    func matchRegistered(_ place: UnsafePointer<CChar>) -> Int {
        guard placeCount <= RouteTable.linearScanLimit else { return -2 }
        let candidate = UnsafeRawPointer(place).assumingMemoryBound(to: UInt8.self)
        let first = candidate[0]
        var index = 0
        while index < placeCount {
            let entry = entries + index
            let name = UnsafeRawPointer(entry.pointee.place.unsafelyUnwrapped)
                .assumingMemoryBound(to: UInt8.self)
            if name[0] == first {
                let length = entry.pointee.placeLength
                // The first byte matched; an empty name has no second.
                var offset = min(1, length)
                while offset < length && candidate[offset] == name[offset] { offset &+= 1 }
                if offset == length && candidate[length] == 0 { return index }
            }
            index &+= 1
        }
        return -1
    }

    /// The route of a place given as bytes (not necessarily NUL-terminated).
    @inline(__always)
    func route(_ place: UnsafeRawPointer, _ length: Int) -> UInt16 {
        if placeCount == 0 { return defaultIndex }
        if placeCount <= RouteTable.linearScanLimit {
            var index = 0
            while index < placeCount {
                let entry = entries + index
                if entry.pointee.placeLength == length
                    && memcmp(entry.pointee.place!, place, length) == 0
                {
                    return UInt16(truncatingIfNeeded: index)
                }
                index += 1
            }
            return defaultIndex
        }
        let hash = RouteIndex.hash(place, length)
        var bucket = Int(truncatingIfNeeded: hash) & bucketMask
        while true {
            let index = buckets[bucket]
            if index == RouteTable.noBucket { return defaultIndex }
            let entry = entries + Int(index)
            if hashes[Int(index)] == hash && entry.pointee.placeLength == length
                && memcmp(entry.pointee.place!, place, length) == 0
            {
                return index
            }
            bucket = (bucket + 1) & bucketMask
        }
    }

    /// FNV-1a: short place names hash in a few cycles.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawPointer, _ length: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var index = 0
        while index < length {
            hash = (hash ^ UInt64(bytes.load(fromByteOffset: index, as: UInt8.self)))
                &* 0x0000_0100_0000_01b3
            index += 1
        }
        return hash
    }
}
