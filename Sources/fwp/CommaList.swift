import FastWeights
import Foundation

/// Comma-separated option values (`--models a,b`, `--hidden 20,50`): an
/// empty list is an error, not an empty table.
enum CommaList {
    /// Every non-empty item of `text` through `parse`; throws when there is none.
    static func parse<T>(_ text: String, option: String, _ parse: (String) throws -> T) throws -> [T] {
        let items = text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw FWError.invalidArgument("\(option) needs at least one value, got '\(text)'") }
        return try items.map(parse)
    }

    /// Positive integers (at most `SizeLimits.maxExtent`).
    static func positiveIntegers(_ text: String, option: String) throws -> [Int] {
        try parse(text, option: option) { s in
            guard let n = Int(s), (1...SizeLimits.maxExtent).contains(n) else {
                throw FWError.invalidArgument("\(option): '\(s)' is not a positive integer up to \(SizeLimits.maxExtent)")
            }
            return n
        }
    }
}
