/// NumPy `.npy` files (docs/contract.md section 6).
///
/// Reads versions 1.0, 2.0 and 3.0 (no other minor version), little-endian `<f4` (and `<f8`,
/// converted to Float32), C order. Anything else — a wrong magic string, an
/// unknown version, a header that does not parse, another dtype, Fortran
/// order, a truncated file or trailing bytes — is rejected with an
/// `FWError.file` naming the file and the problem. Writes version 1.0 `<f4`
/// with the header padded to a multiple of 64 bytes, atomically.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a `.npy` file into a Float32 tensor.
    public static func read(_ path: String) throws -> Tensor {
        try decode(AtomicFile.read(path), name: path)
    }

    /// Writes `tensor` to `path` as `.npy` v1.0 `<f4`, atomically.
    public static func write(_ tensor: Tensor, to path: String) throws {
        try AtomicFile.write(encode(tensor), to: path)
    }

    /// The bytes of a `.npy` v1.0 `<f4` file holding `tensor`.
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // magic(6) + version(2) + length(2) + header + '\n' is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes = magic + [1, 0]
        let n = header.utf8.count
        bytes += [UInt8(n & 0xFF), UInt8(n >> 8)]
        bytes += Array(header.utf8)
        bytes.reserveCapacity(bytes.count + 4 * tensor.count)
        for x in tensor.storage {
            let b = x.bitPattern.littleEndian
            bytes += [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
        }
        return bytes
    }

    /// Parses `.npy` bytes; `name` appears in error messages.
    public static func decode(_ bytes: [UInt8], name: String) throws -> Tensor {
        func fail(_ reason: String) -> FWError { .file(path: name, reason: reason) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a .npy file (missing \\x93NUMPY magic)")
        }
        let (major, minor) = (bytes[6], bytes[7])
        // Only x.0 exist: a file claiming 1.1 or 2.7 is not one numpy wrote.
        guard (1...3).contains(major), minor == 0 else { throw fail("unsupported .npy version \(major).\(minor) (need 1.0, 2.0 or 3.0)") }
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy version \(major).\(minor) (need 1.0, 2.0 or 3.0)")
        }
        guard bytes.count >= headerStart + headerLength else { throw fail("truncated .npy header") }
        guard let header = String(validating: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self) else {
            throw fail("header is not text")
        }
        let fields = try parseHeader(header, fail: fail)
        let elementSize: Int
        switch fields.descr {
        case "<f4", "=f4": elementSize = 4
        case "<f8", "=f8": elementSize = 8
        default: throw fail("unsupported dtype '\(fields.descr)' (need little-endian float32 '<f4' or float64 '<f8')")
        }
        if fields.fortranOrder { throw fail("Fortran-order arrays are not supported (need C order)") }
        var count = 1
        for n in fields.shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: n)
            if overflow || p > Int(Int32.max) * 4 { throw fail("shape \(describeShape(fields.shape)) is too large") }
            count = p
        }
        let dataStart = headerStart + headerLength
        let expected = count * elementSize
        let available = bytes.count - dataStart
        if available < expected {
            throw fail("truncated data: shape \(describeShape(fields.shape)) needs \(expected) bytes, file has \(available)")
        }
        if available > expected {
            throw fail("\(available - expected) unexpected bytes after the data of shape \(describeShape(fields.shape))")
        }
        var storage = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart
            if elementSize == 4 {
                for i in 0..<count {
                    storage[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            } else {
                for i in 0..<count {
                    storage[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            }
        }
        return Tensor(shape: fields.shape, storage: storage)
    }

    struct HeaderFields { var descr: String; var fortranOrder: Bool; var shape: [Int] }

    /// Parses the Python dict literal of a `.npy` header:
    /// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    static func parseHeader(_ text: String, fail: (String) -> FWError) throws -> HeaderFields {
        let s = text.trimmingWhitespace
        guard s.hasPrefix("{"), s.hasSuffix("}") else { throw fail("malformed header: \(s.prefix(80))") }
        var descr: String?
        var fortran: Bool?
        var shape: [Int]?
        var rest = Substring(s.dropFirst().dropLast())
        func skipSpaces() { while let c = rest.first, c == " " || c == "\n" || c == "\t" || c == "," { rest.removeFirst() } }
        func quoted() throws -> String {
            guard let q = rest.first, q == "'" || q == "\"" else { throw fail("malformed header: expected a quoted string") }
            rest.removeFirst()
            guard let end = rest.firstIndex(of: q) else { throw fail("malformed header: unterminated string") }
            let value = String(rest[..<end])
            rest = rest[rest.index(after: end)...]
            return value
        }
        while true {
            skipSpaces()
            if rest.isEmpty { break }
            let key = try quoted()
            skipSpaces()
            guard rest.first == ":" else { throw fail("malformed header: expected ':' after '\(key)'") }
            rest.removeFirst()
            skipSpaces()
            switch key {
            case "descr":
                descr = try quoted()
            case "fortran_order":
                if rest.hasPrefix("True") { fortran = true; rest = rest.dropFirst(4) }
                else if rest.hasPrefix("False") { fortran = false; rest = rest.dropFirst(5) }
                else { throw fail("malformed header: fortran_order is not True or False") }
            case "shape":
                guard rest.first == "(", let close = rest.firstIndex(of: ")") else {
                    throw fail("malformed header: shape is not a tuple")
                }
                let inner = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
                var dims: [Int] = []
                for part in inner.split(separator: ",") {
                    let t = String(part).trimmingWhitespace
                    if t.isEmpty { continue }
                    let digits = t.hasSuffix("L") ? String(t.dropLast()) : t
                    guard let n = Int(digits), n >= 0 else { throw fail("malformed header: bad shape entry '\(t)'") }
                    dims.append(n)
                }
                shape = dims
            default:
                throw fail("malformed header: unknown key '\(key)'")
            }
        }
        guard let d = descr, let f = fortran, let sh = shape else {
            throw fail("malformed header: needs 'descr', 'fortran_order' and 'shape'")
        }
        return HeaderFields(descr: d, fortranOrder: f, shape: sh)
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace || c == "\0" { s.removeLast() }
        return String(s)
    }
}
