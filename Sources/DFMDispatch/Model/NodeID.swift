/// The pipeline node that produced a value: none, an automatically assigned
/// integer id, or a well-known string id (nv_dfm_core's `int | str | None`).
public enum NodeID: Hashable, Sendable, CustomStringConvertible {
    case none
    case int(Int64)
    case name(String)

    public var description: String {
        switch self {
        case .none: "none"
        case .int(let id): "%\(id)"
        case .name(let name): "#\(name)"
        }
    }
}
