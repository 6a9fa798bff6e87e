/// UTF-8 validation of C strings and byte ranges, without allocating.
///
/// Accepts exactly the well-formed sequences of Unicode 15 (table 3-7):
/// no overlong forms, no surrogates, nothing above U+10FFFF.
enum UTF8Check {
    /// The length of a NUL-terminated string if it is valid UTF-8, else
    /// `-(offset + 1)` of the first bad byte.
    ///
    /// ASCII strings are scanned eight bytes at a time with aligned loads.
    /// An aligned word never crosses a page, so reading the bytes of the
    /// last word that lie past the terminator cannot fault (the technique
    /// of C library strlen); those bytes never affect the result.
    @inline(__always)
    static func cStringLength(_ string: UnsafePointer<CChar>) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let start = UInt(bitPattern: string)
        var address = start & ~7
        // Bytes before the string's first byte count as ASCII non-zero.
        let skipped = (start & 7) &* 8
        let prefix = skipped == 0 ? 0 : ones & ((1 << UInt64(skipped)) &- 1)
        var word = UnsafeRawPointer(bitPattern: address).unsafelyUnwrapped.load(as: UInt64.self)
            | prefix
        while true {
            let zeros = (word &- ones) & ~word & highs
            let high = word & highs
            if zeros != 0 {
                let zeroBit = UInt64(zeros.trailingZeroBitCount)
                // Only high bits below the first zero byte belong to the
                // string (the zero test is exact for its lowest match).
                if zeroBit == 7 || high & ((1 << (zeroBit &- 7)) &- 1) == 0 {
                    return Int(address &+ UInt(zeroBit >> 3) &- start)
                }
                return slowCStringLength(string)
            }
            if high != 0 { return slowCStringLength(string) }
            address &+= 8
            word = UnsafeRawPointer(bitPattern: address).unsafelyUnwrapped.load(as: UInt64.self)
        }
    }

    /// Byte by byte, for strings that are not pure ASCII.
    @inline(never)
    static func slowCStringLength(_ string: UnsafePointer<CChar>) -> Int {
        let bytes = UnsafeRawPointer(string).assumingMemoryBound(to: UInt8.self)
        var index = 0
        while true {
            let byte = bytes[index]
            if byte == 0 { return index }
            if byte < 0x80 {
                index &+= 1
                continue
            }
            let width = sequenceWidth(bytes + index, limit: Int.max)
            if width <= 0 { return -(index &+ 1) }
            index &+= width
        }
    }

    /// -1 if `count` bytes are valid UTF-8, else the offset of the first bad
    /// byte.
    @inline(__always)
    static func firstInvalid(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int {
        var index = 0
        // Eight ASCII bytes at a time: the common case for JSON and text.
        while index + 8 <= count {
            let word = UnsafeRawPointer(bytes + index).loadUnaligned(as: UInt64.self)
            if word & 0x8080_8080_8080_8080 != 0 { break }
            index += 8
        }
        while index < count {
            let byte = bytes[index]
            if byte < 0x80 {
                index += 1
                continue
            }
            let width = sequenceWidth(bytes + index, limit: count - index)
            if width <= 0 { return index }
            index += width
        }
        return -1
    }

    /// The width of the multi-byte sequence at `bytes` (lead byte >= 0x80),
    /// or 0 when it is malformed or runs past `limit` bytes.  A NUL byte is
    /// never a continuation byte, so C strings are never read past their end.
    @inline(__always)
    private static func sequenceWidth(_ bytes: UnsafePointer<UInt8>, limit: Int) -> Int {
        let lead = bytes[0]
        var width: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: width = 2
        case 0xE0: width = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: width = 3
        case 0xED: width = 3; high = 0x9F
        case 0xF0: width = 4; low = 0x90
        case 0xF1...0xF3: width = 4
        case 0xF4: width = 4; high = 0x8F
        default: return 0
        }
        if width > limit { return 0 }
        let second = bytes[1]
        if second < low || second > high { return 0 }
        var index = 2
        while index < width {
            let next = bytes[index]
            if next < 0x80 || next > 0xBF { return 0 }
            index += 1
        }
        return width
    }
}
