/// Finds where bytes stop being well-formed UTF-8 (Unicode, Table 3-7: no
/// overlong forms, no surrogates, nothing above U+10FFFF, no truncated
/// sequence).
public enum UTF8Validation {
    /// The offset of the first byte of the first ill-formed sequence in
    /// `bytes` (the lead byte whose continuation is wrong, or a byte that
    /// cannot start a sequence), or nil when all of `bytes` is UTF-8.
    public static func firstInvalidOffset(_ bytes: [UInt8]) -> Int? {
        let n = bytes.count
        var i = 0
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            // The sequence length and the allowed range of the second byte.
            let length: Int, low: UInt8, high: UInt8
            switch b0 {
            case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
            case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
            case 0xE1...0xEC, 0xEE...0xEF: (length, low, high) = (3, 0x80, 0xBF)
            case 0xED: (length, low, high) = (3, 0x80, 0x9F)
            case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
            case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
            case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
            default: return i
            }
            guard i + length <= n, (low...high).contains(bytes[i + 1]) else { return i }
            for j in 2..<max(2, length) where !(0x80...0xBF).contains(bytes[i + j]) { return i }
            i += length
        }
        return nil
    }
}
