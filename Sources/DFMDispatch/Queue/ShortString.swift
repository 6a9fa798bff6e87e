import CDFMShim

/// A short ASCII C string read as one word: the hot paths' view of site and
/// place names, which are nearly always a few ASCII letters ("site-a",
/// "yield", "_dfm_status_" is the exception that takes the general path).
///
/// A string of at most 7 bytes followed by its terminator becomes the
/// little-endian word of its bytes, zero from the terminator on.  That word
/// measures the string (its length), validates it (ASCII is valid UTF-8),
/// compares it with a registered place (one integer comparison) and copies
/// it (one 8-byte store), all without a loop.
///
/// The string is read in aligned 8-byte words, so a read never crosses into
/// a page the string does not touch (the technique of C library strlen);
/// bytes past the terminator are read but never affect the result.
struct ShortString {
    /// The string's bytes, zero from the terminator on.
    let word: UInt64
    /// Bytes before the terminator: 0 to 7.
    let length: Int

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// The key of a registered name that is not short ASCII: its top byte is
    /// not zero, so it never equals the word of a short string.
    static let noKey = UInt64.max

    /// Reads `string`; nil when it is 8 bytes or longer or not ASCII (the
    /// general path then measures and validates it).
    @inline(__always)
    init?(_ string: UnsafePointer<CChar>) {
        let address = UInt(bitPattern: string)
        let shift = UInt64(address & 7) &* 8
        let base = UnsafeRawPointer(bitPattern: address & ~7).unsafelyUnwrapped
        var word = base.load(as: UInt64.self) &>> shift
        if shift != 0 {
            // The first aligned word held 8 - shift/8 of the string's bytes.
            // Without a terminator among them the string goes on into the
            // next aligned word, which is therefore readable.
            let fromNextWord = ~(UInt64.max &>> shift)
            if !ShortString.hasZeroByte(word | fromNextWord) {
                word |= base.load(fromByteOffset: 8, as: UInt64.self) &<< (64 &- shift)
            }
        }
        // The lowest zero byte is found exactly (borrows only disturb the
        // bytes above it).
        let zeros = (word &- ShortString.ones) & ~word & ShortString.highs
        guard zeros != 0 else { return nil }
        let length = zeros.trailingZeroBitCount &>> 3
        word &= (1 &<< UInt64(length &* 8)) &- 1
        guard word & ShortString.highs == 0 else { return nil }
        self.word = word
        self.length = length
    }

    @inline(__always)
    private static func hasZeroByte(_ word: UInt64) -> Bool {
        (word &- ones) & ~word & highs != 0
    }

    /// The key a registered place name is matched by: its short word, or
    /// `noKey` for a name that is longer or not ASCII.
    static func key(_ name: UnsafePointer<CChar>, length: Int) -> UInt64 {
        guard length < 8 else { return noKey }
        var word: UInt64 = 0
        for index in 0..<length {
            let byte = UInt8(bitPattern: name[index])
            if byte >= 0x80 { return noKey }
            word |= UInt64(byte) << UInt64(index * 8)
        }
        return word
    }
}

/// A token of the common kind, measured in one pass: short ASCII site and
/// place, a place routed by the short-key scan, a node that is none or an
/// integer, a value carried whole in the union's two words (none, int,
/// double, object, stop) and a well-formed frame of at most 8 levels.  The
/// hot paths handle such a token without a loop or a call; anything else
/// goes through `TokenCodec.measure` and the general write.
struct CommonToken {
    let site: ShortString
    let place: ShortString
    let route: UInt16
    /// The place is a registered one: the slot keeps its route, not its bytes.
    let placeInterned: Bool

    static let maximumDepth = 8
    /// Value kinds whose union words are copied as they are: NONE, INT,
    /// DOUBLE, OBJECT and STOP.  (BOOL is one byte of its word.)
    private static let wordKinds: UInt32 =
        1 << DFM_VALUE_NONE.rawValue | 1 << DFM_VALUE_INT.rawValue
        | 1 << DFM_VALUE_DOUBLE.rawValue | 1 << DFM_VALUE_OBJECT.rawValue
        | 1 << DFM_VALUE_STOP.rawValue

    @inline(__always)
    init?(_ token: UnsafePointer<dfm_token>, routes: RouteIndex) {
        let valueKind = token.pointee.data.kind.rawValue
        let depth = token.pointee.frame.depth
        guard routes.routesShortPlaces, valueKind < 32,
            CommonToken.wordKinds & (1 &<< valueKind) != 0,
            token.pointee.source_node.kind.rawValue <= DFM_NODE_INT.rawValue,
            depth <= CommonToken.maximumDepth,
            depth == 0 || (token.pointee.frame.levels != nil && !token.pointee.frame.is_stop),
            let sitePointer = token.pointee.source_site,
            let placePointer = token.pointee.target_place,
            let site = ShortString(sitePointer), let place = ShortString(placePointer)
        else { return nil }
        self.site = site
        self.place = place
        route = routes.route(short: place)
        placeInterned = route != routes.defaultIndex
    }
}
