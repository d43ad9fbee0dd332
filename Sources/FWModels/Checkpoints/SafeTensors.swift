import Foundation
import FWCore

/// The safetensors file format (Hugging Face), read and written by hand.
///
/// ```
/// [8 bytes]  N, the header length, unsigned little-endian
/// [N bytes]  JSON: { "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
///                    ..., "__metadata__": {"<key>": "<string>", ...} }
///            (padded with spaces to a multiple of 8, as Python's writer does)
/// [rest]     the data buffer: each tensor's bytes, row-major, little-endian,
///            at [begin, end) relative to the buffer's start
/// ```
///
/// This writer stores `F32`; the reader takes `F32` and `F64` (converted to
/// Float32). The reader checks everything the format's own reader checks and
/// rejects with `FWError.file` naming the file: a truncated file, a header
/// length beyond the file, a header that is not JSON (or not an object), a
/// malformed entry, an unknown or unsupported dtype, offsets out of range,
/// overlapping, leaving holes or trailing bytes, or not matching the shape.
public enum SafeTensors {
    /// One tensor to write: a name, a shape and its row-major values.
    public struct Entry: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: ArraySlice<Float>

        /// An entry for `values` (count = product of `shape`).
        public init(name: String, shape: [Int], values: ArraySlice<Float>) {
            precondition(shape.reduce(1, *) == values.count,
                         "SafeTensors.Entry '\(name)': \(values.count) values for shape \(describeShape(shape))")
            self.name = name
            self.shape = shape
            self.values = values
        }

        /// An entry holding `tensor`.
        public init(name: String, tensor: Tensor) {
            self.init(name: name, shape: tensor.shape, values: tensor.storage[...])
        }
    }

    /// What a file holds.
    public struct Contents: Sendable {
        /// The tensors by name (converted to Float32).
        public var tensors: [String: Tensor]
        /// The names in the order of their data in the file.
        public var names: [String]
        /// The `__metadata__` dictionary (empty when absent).
        public var metadata: [String: String]
    }

    /// The dtypes the format defines, with their sizes in bytes.
    static let knownDTypes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
        "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
    ]

    // MARK: writing

    /// The bytes of a safetensors file with `entries` (F32, data in the
    /// given order) and `metadata`. Names must be unique and not `__metadata__`.
    public static func encode(_ entries: [Entry], metadata: [String: String]) -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        for e in entries {
            precondition(e.name != "__metadata__" && header[e.name] == nil, "SafeTensors: bad or repeated name '\(e.name)'")
            let size = 4 * e.values.count
            header[e.name] = ["dtype": "F32", "shape": e.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        // Sorted keys: the same model writes the same bytes.
        var json = [UInt8](try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count + offset)
        let n = UInt64(json.count)
        for k in 0..<8 { bytes.append(UInt8((n >> (8 * UInt64(k))) & 0xFF)) }
        bytes += json
        for e in entries { appendLittleEndian(e.values, to: &bytes) }
        return bytes
    }

    /// Writes `entries` and `metadata` to `path` atomically (`AtomicFile`).
    public static func write(_ entries: [Entry], metadata: [String: String], to path: String) throws {
        try AtomicFile.write(encode(entries, metadata: metadata), to: path)
    }

    static func appendLittleEndian(_ values: ArraySlice<Float>, to bytes: inout [UInt8]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for x in values {
            let b = x.bitPattern
            bytes += [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
        }
        #endif
    }

    // MARK: reading

    /// Reads and checks the file at `path`.
    public static func read(_ path: String) throws -> Contents {
        try decode(AtomicFile.read(path), name: path)
    }

    /// Parses and checks safetensors bytes; `name` (the file) appears in errors.
    public static func decode(_ bytes: [UInt8], name: String) throws -> Contents {
        func fail(_ reason: String) -> FWError { .file(path: name, reason: reason) }

        guard bytes.count >= 8 else {
            throw fail("truncated file: \(bytes.count) bytes, not even the 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for k in 0..<8 { headerLength |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) runs beyond the end of the file (\(bytes.count) bytes): truncated or not a safetensors file")
        }
        let headerEnd = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd]), options: [])
        } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }

        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] {
            guard let dict = m as? [String: Any] else { throw fail("__metadata__ is not an object") }
            for (k, v) in dict {
                guard let s = v as? String else { throw fail("__metadata__ '\(k)' is not a string") }
                metadata[k] = s
            }
        }

        struct Span { var name: String; var begin: Int; var end: Int; var shape: [Int]; var dtype: String }
        let dataLength = bytes.count - headerEnd
        var spans: [Span] = []
        for (key, value) in header where key != "__metadata__" {
            guard let entry = value as? [String: Any] else { throw fail("tensor '\(key)': entry is not an object") }
            guard let dtype = entry["dtype"] as? String else { throw fail("tensor '\(key)': missing dtype") }
            guard let size = knownDTypes[dtype] else { throw fail("tensor '\(key)': unknown dtype '\(dtype)'") }
            guard dtype == "F32" || dtype == "F64" else {
                throw fail("tensor '\(key)': dtype \(dtype) is not supported (F32 or F64)")
            }
            guard let shape = integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor '\(key)': shape is not a list of non-negative integers")
            }
            guard let offsets = integers(entry["data_offsets"]), offsets.count == 2 else {
                throw fail("tensor '\(key)': data_offsets is not a pair of integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw fail("tensor '\(key)': data_offsets [\(begin), \(end)] out of range of the \(dataLength) data bytes (truncated file?)")
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor '\(key)': shape \(describeShape(shape)) is too large") }
                count = p
            }
            guard count.multipliedReportingOverflow(by: size) == (end - begin, false) else {
                throw fail("tensor '\(key)': data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but shape \(describeShape(shape)) of \(dtype) needs \(count * size)")
            }
            spans.append(Span(name: key, begin: begin, end: end, shape: shape, dtype: dtype))
        }

        // The buffer must be covered exactly: no overlaps, no holes, no trailing bytes.
        spans.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        var previous: String?
        for s in spans {
            if s.begin < covered {
                throw fail("tensors '\(previous!)' and '\(s.name)' overlap in the data buffer")
            }
            if s.begin > covered {
                throw fail("hole in the data buffer: bytes [\(covered), \(s.begin)) before tensor '\(s.name)' belong to no tensor")
            }
            covered = s.end
            previous = s.name
        }
        if covered != dataLength {
            throw fail("\(dataLength - covered) trailing bytes after the last tensor")
        }

        var tensors: [String: Tensor] = [:]
        for s in spans {
            let start = headerEnd + s.begin
            let count = s.shape.reduce(1, *)
            var storage = [Float](repeating: 0, count: count)
            if s.dtype == "F32" {
                #if _endian(little)
                bytes.withUnsafeBytes { src in
                    storage.withUnsafeMutableBytes { dst in
                        dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + 4 * count)]))
                    }
                }
                #else
                for i in 0..<count {
                    let p = start + 4 * i
                    let bits = UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8 | UInt32(bytes[p + 2]) << 16 | UInt32(bytes[p + 3]) << 24
                    storage[i] = Float(bitPattern: bits)
                }
                #endif
            } else {
                for i in 0..<count {
                    let p = start + 8 * i
                    var bits: UInt64 = 0
                    for k in 0..<8 { bits |= UInt64(bytes[p + k]) << (8 * UInt64(k)) }
                    storage[i] = Float(Double(bitPattern: bits))
                }
            }
            tensors[s.name] = Tensor(shape: s.shape, storage: storage)
        }
        return Contents(tensors: tensors, names: spans.map(\.name), metadata: metadata)
    }

    /// A JSON array of integers, or nil: `2.5`, `8.0` (a number written with a
    /// fraction or exponent) and `true` are not integers, as in the format's
    /// own reader.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        for x in array {
            guard let n = x as? NSNumber, !isBoolean(n), isIntegerType(n) else { return nil }
            let d = n.doubleValue
            guard d.rounded() == d, abs(d) < 9.0e15, let i = Int(exactly: d) else { return nil }
            result.append(i)
        }
        return result
    }

    /// True when JSON gave the number as an integer (no fraction, no exponent).
    private static func isIntegerType(_ n: NSNumber) -> Bool {
        ["s", "S", "i", "I", "l", "L", "q", "Q", "C"].contains(String(cString: n.objCType))
    }

    private static func isBoolean(_ n: NSNumber) -> Bool {
        String(cString: n.objCType) == "c"
    }
}
