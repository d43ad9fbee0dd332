/// What `fwp` does to its command line before parsing it, and to the text it
/// echoes back.
enum CommandLineWords {
    /// `--chunk -1` becomes `--chunk=-1`, so that a negative number is read
    /// as the option's value (and rejected by the option's own check with
    /// its value named) instead of as an unknown flag.
    static func joiningNegativeValues(_ words: [String]) -> [String] {
        var result: [String] = []
        var i = 0
        while i < words.count {
            let w = words[i]
            if w.hasPrefix("--"), !w.contains("="), i + 1 < words.count, isNegativeNumber(words[i + 1]) {
                result.append(w + "=" + words[i + 1])
                i += 2
            } else {
                result.append(w)
                i += 1
            }
        }
        return result
    }

    /// `-1`, `-0.5`, `-1e3`, `-inf`, `-nan`: a minus sign and then a number.
    static func isNegativeNumber(_ word: String) -> Bool {
        guard word.hasPrefix("-"), word.count > 1 else { return false }
        let rest = word.dropFirst()
        return Double(rest) != nil && !rest.hasPrefix("-") && !rest.hasPrefix("+")
    }

    /// `text` with newlines, tabs and every other control character written
    /// as escapes (`\n`, `\t`, `\u{1B}`), so that a message stays one line.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                    || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
