import FWCore

/// A value stored in configuration files by its spelling, the one
/// `init(parsing:)` reads and `description` writes (`elu1`, `dpfp:2`,
/// `favor:16`; `sum`, `l2`); a bad spelling is a decoding error carrying
/// the parser's message.
public protocol SpelledCodable: Codable, CustomStringConvertible {
    /// Parses a spelling; throws `FWError.invalidArgument` naming the valid ones.
    init(parsing text: String) throws
}

extension SpelledCodable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        do {
            try self.init(parsing: try c.decode(String.self))
        } catch let FWError.invalidArgument(message) {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: message)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension FeatureMap: SpelledCodable {}
extension FeatureNormalization: SpelledCodable {}
