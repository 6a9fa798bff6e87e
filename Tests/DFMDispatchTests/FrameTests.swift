import DFMDispatch
import Testing

@Suite("Frame")
struct FrameTests {
    @Test("start(n) is the one-level frame [n]")
    func startFrame() {
        #expect(Frame.start(3) == Frame([3]))
        #expect(Frame.start(3).levels == [3])
        #expect(Frame.start() == Frame([0]))
        #expect(!Frame.start(0).isStop)
    }

    @Test("the stop frame is a stop frame with no levels")
    func stopFrame() {
        #expect(Frame.stop.isStop)
        #expect(Frame.stop.levels.isEmpty)
        #expect(!Frame([]).isStop)
    }

    @Test("inputParameterSetIndex is the first level")
    func inputParameterSetIndex() throws {
        #expect(try Frame([4, 2, 7]).inputParameterSetIndex() == 4)
        #expect(try Frame.start(9).inputParameterSetIndex() == 9)
    }

    @Test("withLoopIncrement increments the last level only")
    func loopIncrement() throws {
        #expect(try Frame([0, 2]).withLoopIncrement() == Frame([0, 3]))
        #expect(try Frame([5]).withLoopIncrement() == Frame([6]))
    }

    @Test("withPushedScope appends a level 0, withPoppedScope removes the last")
    func pushAndPop() throws {
        #expect(try Frame([1]).withPushedScope() == Frame([1, 0]))
        #expect(try Frame([]).withPushedScope() == Frame([0]))
        #expect(try Frame([1, 4]).withPoppedScope() == Frame([1]))
        #expect(try Frame([1]).withPoppedScope() == Frame([]))
        #expect(try Frame([2, 3]).withPushedScope().withPoppedScope() == Frame([2, 3]))
    }

    @Test("parent drops the last level and needs two levels")
    func parent() throws {
        #expect(try Frame([0, 2]).parent() == Frame([0]))
        #expect(try Frame([0, 2, 5]).parent() == Frame([0, 2]))
        #expect(status { _ = try Frame([0]).parent() } == .invalidArgument)
        #expect(status { _ = try Frame([]).parent() } == .invalidArgument)
    }

    @Test("isAncestor(of:) is a prefix test")
    func ancestor() throws {
        #expect(try Frame([0]).isAncestor(of: Frame([0, 1])))
        #expect(try Frame([0]).isAncestor(of: Frame([0, 1, 2])))
        #expect(try Frame([0, 1]).isAncestor(of: Frame([0, 1])))
        #expect(try !Frame([1]).isAncestor(of: Frame([0, 1])))
        #expect(try !Frame([0, 1]).isAncestor(of: Frame([0])))
        #expect(try Frame([]).isAncestor(of: Frame([3])))
    }

    @Test("operations that need levels refuse an empty frame with invalidArgument")
    func emptyFrame() {
        #expect(status { _ = try Frame([]).inputParameterSetIndex() } == .invalidArgument)
        #expect(status { _ = try Frame([]).withLoopIncrement() } == .invalidArgument)
        #expect(status { _ = try Frame([]).withPoppedScope() } == .invalidArgument)
    }

    @Test("every helper refuses the stop frame with invalidArgument")
    func stopFrameHelpersThrow() {
        let stop = Frame.stop
        #expect(status { _ = try stop.inputParameterSetIndex() } == .invalidArgument)
        #expect(status { _ = try stop.withLoopIncrement() } == .invalidArgument)
        #expect(status { _ = try stop.withPushedScope() } == .invalidArgument)
        #expect(status { _ = try stop.withPoppedScope() } == .invalidArgument)
        #expect(status { _ = try stop.parent() } == .invalidArgument)
        #expect(status { _ = try stop.isAncestor(of: Frame([0])) } == .invalidArgument)
        #expect(status { _ = try Frame([0]).isAncestor(of: stop) } == .invalidArgument)
    }

    @Test("the error of a stop-frame helper is a DFMError naming the stop frame")
    func stopFrameError() {
        let error = #expect(throws: DFMError.self) { try Frame.stop.parent() }
        #expect(error?.status == .invalidArgument)
        #expect(error?.message.contains("stop") == true)
    }

    @Test("frames are equal by value: stop == stop, [0, 1] == [0, 1], [0, 1] != [0]")
    func equality() {
        #expect(Frame.stop == Frame.stop)
        #expect(Frame([0, 1]) == Frame([0, 1]))
        #expect(Frame([0, 1]) != Frame([0]))
        #expect(Frame([0]) != Frame.stop)
        #expect(Frame([]) != Frame.stop)
    }

    @Test("equal frames hash alike and act as one set element")
    func hashing() {
        #expect(Frame([0, 1]).hashValue == Frame([0, 1]).hashValue)
        #expect(Frame.stop.hashValue == Frame.stop.hashValue)
        let set: Set<Frame> = [Frame([0, 1]), Frame([0, 1]), .stop, .stop, Frame([0]), Frame([])]
        #expect(set.count == 4)
        #expect(set.contains(Frame([0, 1])))
        #expect(set.contains(.stop))
        let byFrame = [Frame([2]): "two", Frame.stop: "stop"]
        #expect(byFrame[Frame([2])] == "two")
        #expect(byFrame[.stop] == "stop")
    }

    @Test("description is [0, 2] for levels and stop for the stop frame")
    func description() {
        #expect(Frame([0, 2]).description == "[0, 2]")
        #expect(Frame([7]).description == "[7]")
        #expect(Frame([]).description == "[]")
        #expect(Frame.stop.description == "stop")
        #expect("\(Frame([0, 2]))" == "[0, 2]")
    }
}
