/// The loop-iteration stack of a token, e.g. `[0]`, `[0, 2]`, or the stop
/// frame that ends the whole stream.
///
/// Two frames are equal when both are stop frames or their levels are equal.
/// Frames have no order, as in nv_dfm_core.
public struct Frame: Hashable, Sendable, CustomStringConvertible {
    /// The levels, outermost first; empty for the stop frame.
    public let levels: [Int64]
    /// True for the stop frame.
    public let isStop: Bool

    public init(_ levels: [Int64]) {
        self.levels = levels
        self.isStop = false
    }

    private init(stop: Void) {
        self.levels = []
        self.isStop = true
    }

    /// The frame of input-parameter set `index`: `[index]`.
    public static func start(_ index: Int64 = 0) -> Frame { Frame([index]) }

    /// The stop frame: the whole input stream has ended.
    public static let stop = Frame(stop: ())

    /// The index of the input-parameter set: the first level.
    public func inputParameterSetIndex() throws(DFMError) -> Int64 {
        try requireLevels("inputParameterSetIndex", atLeast: 1)
        return levels[0]
    }

    /// The same frame with its last level incremented.
    public func withLoopIncrement() throws(DFMError) -> Frame {
        try requireLevels("withLoopIncrement", atLeast: 1)
        var next = levels
        next[next.count - 1] += 1
        return Frame(next)
    }

    /// The frame with a new innermost level 0 (entering a loop).
    public func withPushedScope() throws(DFMError) -> Frame {
        try requireLevels("withPushedScope", atLeast: 0)
        return Frame(levels + [0])
    }

    /// The frame without its innermost level (leaving a loop).
    public func withPoppedScope() throws(DFMError) -> Frame {
        try requireLevels("withPoppedScope", atLeast: 1)
        return Frame(Array(levels.dropLast()))
    }

    /// The enclosing frame; needs at least two levels.
    public func parent() throws(DFMError) -> Frame {
        try requireLevels("parent", atLeast: 2)
        return Frame(Array(levels.dropLast()))
    }

    /// True when `other` lies inside this frame: this frame's levels are a
    /// prefix of the other's.
    public func isAncestor(of other: Frame) throws(DFMError) -> Bool {
        try requireLevels("isAncestor(of:)", atLeast: 0)
        guard !other.isStop else {
            throw DFMError(.invalidArgument, "isAncestor(of:) was given the stop frame")
        }
        return other.levels.starts(with: levels)
    }

    public var description: String {
        isStop ? "stop" : "[" + levels.map(String.init).joined(separator: ", ") + "]"
    }

    public static func == (lhs: Frame, rhs: Frame) -> Bool {
        lhs.isStop == rhs.isStop && lhs.levels == rhs.levels
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(isStop)
        hasher.combine(levels)
    }

    private func requireLevels(_ operation: String, atLeast count: Int) throws(DFMError) {
        if isStop {
            throw DFMError(.invalidArgument, "\(operation) is not defined for the stop frame")
        }
        if levels.count < count {
            throw DFMError(
                .invalidArgument,
                "\(operation) needs a frame with at least \(count) level(s); \(self) has "
                    + "\(levels.count)")
        }
    }
}
