/// A result that a pipeline yields to a place: nv_dfm_core's token package,
/// reduced to the five values a callback receives.
public struct Token: Sendable {
    public var site: String
    public var node: NodeID
    public var frame: Frame
    public var place: String
    public var data: Value

    public init(site: String, node: NodeID = .none, frame: Frame, place: String, data: Value) {
        self.site = site
        self.node = node
        self.frame = frame
        self.place = place
        self.data = data
    }
}
