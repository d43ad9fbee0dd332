import XCTest
import FWTestSupport
import Foundation

/// `.npy` reading and writing (docs/contract.md section 6): round trips, what NumPy
/// writes, and every malformed-file case rejected with the file named.
final class NPYTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "npy-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func path(_ name: String) -> String { dir + "/" + name }

    /// A hand-built `.npy` file: version, header text, raw data bytes.
    func rawNPY(major: UInt8 = 1, header: String, data: [UInt8]) -> [UInt8] {
        var h = header
        let lengthBytes = major == 1 ? 2 : 4
        let unpadded = 8 + lengthBytes + h.utf8.count + 1
        h += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
        let n = h.utf8.count
        for i in 0..<lengthBytes { bytes.append(UInt8((n >> (8 * i)) & 0xFF)) }
        return bytes + Array(h.utf8) + data
    }

    func floatBytes(_ xs: [Float]) -> [UInt8] { xs.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
    func doubleBytes(_ xs: [Double]) -> [UInt8] { xs.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    func assertRejected(_ bytes: [UInt8], containing reason: String, file: StaticString = #filePath, line: UInt = #line) {
        let p = path("bad.npy")
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        XCTAssertThrowsError(try NPY.read(p), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(p), "message does not name the file: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(reason), "expected '\(reason)' in: \(message)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "message is not one line: \(message)", file: file, line: line)
        }
    }

    func testRoundTripKeepsShapeAndBits() throws {
        var rng = SeededRNG(seed: 3)
        for shape in [[2, 3, 4, 5], [7], [], [1, 0, 3], [3, 1]] {
            var t = rng.normalTensor(shape)
            if t.count > 0 { t.storage[0] = -0.0; t.storage[t.count - 1] = .greatestFiniteMagnitude }
            try NPY.write(t, to: path("t.npy"))
            let back = try NPY.read(path("t.npy"))
            XCTAssertEqual(back.shape, shape)
            XCTAssertEqual(back.storage.map(\.bitPattern), t.storage.map(\.bitPattern))
        }
    }

    func testHeaderIsPaddedTo64Bytes() {
        let bytes = NPY.encode(Tensor(shape: [2, 2], storage: [1, 2, 3, 4]))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        XCTAssertEqual(bytes[10 + headerLength - 1], UInt8(ascii: "\n"))
        XCTAssertEqual(bytes.count, 10 + headerLength + 16)
    }

    func testReadsFloat64AndVersion2() throws {
        let p = path("f8.npy")
        _ = FileManager.default.createFile(atPath: p, contents: Data(rawNPY(
            major: 2, header: "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", data: doubleBytes([1.5, -2, 1e-3]))))
        let t = try NPY.read(p)
        XCTAssertEqual(t.shape, [3])
        XCTAssertEqual(t.storage, [1.5, -2, Float(1e-3)])
    }

    func testReadsScalarAndOneElementTuple() throws {
        let p = path("s.npy")
        _ = FileManager.default.createFile(atPath: p, contents: Data(rawNPY(
            header: "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data: floatBytes([4]))))
        XCTAssertEqual(try NPY.read(p).shape, [])
    }

    func testMissingFile() {
        XCTAssertThrowsError(try NPY.read(path("nope.npy"))) { error in
            XCTAssertEqual("\(error)", "\(path("nope.npy")): no such file")
        }
    }

    func testNotNPY() { assertRejected(Array("hello world, not numpy".utf8), containing: "not a .npy file") }

    func testEmptyFile() { assertRejected([], containing: "not a .npy file") }

    func testUnknownVersion() {
        assertRejected(rawNPY(major: 9, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                              data: floatBytes([1])), containing: "unsupported .npy version 9")
    }

    /// Only x.0 versions exist: 1.1 and 2.7 are rejected, not read as 1.0 / 2.0.
    func testMinorVersionOtherThanZeroIsRejected() {
        for (major, minor) in [(UInt8(1), UInt8(1)), (2, 7), (3, 255)] {
            var bytes = rawNPY(major: major, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                               data: floatBytes([1]))
            bytes[7] = minor
            assertRejected(bytes, containing: "unsupported .npy version \(major).\(minor) (need 1.0, 2.0 or 3.0)")
        }
    }

    func testWrongDtypes() {
        for descr in ["<i4", ">f4", "<f2", "|u1", "<c8"] {
            assertRejected(rawNPY(header: "{'descr': '\(descr)', 'fortran_order': False, 'shape': (1,), }",
                                  data: [0, 0, 0, 0]), containing: "unsupported dtype '\(descr)'")
        }
    }

    func testFortranOrder() {
        assertRejected(rawNPY(header: "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                              data: floatBytes([1, 2, 3, 4])), containing: "Fortran-order")
    }

    func testTruncatedData() {
        assertRejected(rawNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                              data: floatBytes([1, 2, 3])), containing: "truncated data")
    }

    func testTruncatedHeader() {
        let full = rawNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: [])
        assertRejected(Array(full.prefix(30)), containing: "truncated .npy header")
    }

    func testTrailingBytes() {
        assertRejected(rawNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                              data: floatBytes([1, 2])), containing: "unexpected bytes")
    }

    func testMalformedHeaders() {
        assertRejected(rawNPY(header: "descr <f4", data: []), containing: "malformed header")
        assertRejected(rawNPY(header: "{'descr': '<f4', 'shape': (1,), }", data: floatBytes([1])),
                       containing: "malformed header")
        assertRejected(rawNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1, x), }", data: floatBytes([1])),
                       containing: "bad shape entry")
        assertRejected(rawNPY(header: "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", data: floatBytes([1])),
                       containing: "fortran_order")
    }

    func testHugeShapeIsRejectedNotAllocated() {
        assertRejected(rawNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
                              data: []), containing: "too large")
    }

    func testWriteIsAtomicAndLeavesNoTemporaries() throws {
        let t = Tensor(shape: [2], storage: [1, 2])
        try NPY.write(t, to: path("a.npy"))
        try NPY.write(t, to: path("a.npy"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["a.npy"])
        XCTAssertThrowsError(try NPY.write(t, to: dir + "/missing-folder/a.npy")) { error in
            XCTAssertTrue("\(error)".contains("missing-folder/a.npy"))
        }
    }
}
