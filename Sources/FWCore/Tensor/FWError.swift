/// Every error the engine reports. Messages are one line that names the
/// tensor, file or option at fault, so that a command-line tool can print
/// them as they are.
public enum FWError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A tensor's shape does not fit: `tensor` is the argument's name.
    case shapeMismatch(tensor: String, expected: String, got: [Int])
    /// An option or argument that is invalid on its own or with the others.
    case invalidArgument(String)
    /// A file that cannot be read or written, or whose contents are malformed.
    case file(path: String, reason: String)
    /// A non-finite number found during training or evaluation.
    case nonFinite(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(tensor, expected, got):
            return "\(tensor): expected shape \(expected), got \(describeShape(got))"
        case let .invalidArgument(message):
            return message
        case let .file(path, reason):
            return "\(path): \(reason)"
        case let .nonFinite(message):
            return message
        }
    }
}

extension Tensor {
    /// Throws `FWError.shapeMismatch` naming `name` unless the shape is `expected`.
    public func checkShape(_ name: String, _ expected: [Int]) throws {
        guard shape == expected else {
            throw FWError.shapeMismatch(tensor: name, expected: describeShape(expected), got: shape)
        }
    }

    /// Throws unless the tensor has `rank` axes; `pattern` describes them, e.g. `[B, H, T, D]`.
    public func checkRank(_ name: String, _ rank: Int, pattern: String) throws {
        guard shape.count == rank else {
            throw FWError.shapeMismatch(tensor: name, expected: pattern, got: shape)
        }
    }
}
