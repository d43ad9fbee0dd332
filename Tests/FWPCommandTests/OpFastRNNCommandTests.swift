import XCTest
import Foundation
import FWTestSupport

/// `fwp op fast-rnn` (docs/contract.md section 6): outputs match the library; bad
/// input exits with status 2, one stderr line, no output.
final class OpFastRNNCommandTests: XCTestCase {
    var cli: CommandRunner!
    let (B, T, N, Din) = (2, 6, 5, 3)

    override func setUpWithError() throws {
        cli = try CommandRunner.make()
        var rng = SeededRNG(seed: 31)
        let p = FastWeightsRNNParameters(hidden: N, input: Din, rng: &rng)
        try FileManager.default.createDirectory(atPath: cli.path("p"), withIntermediateDirectories: true)
        for (name, t) in [("W", p.W), ("C", p.C), ("b", p.b), ("g", p.g), ("c", p.c)] { try cli.write(t, "p/\(name).npy") }
        try cli.write(rng.normalTensor([B, T, Din]), "x.npy")
        try cli.write(rng.normalTensor([B, T, N]), "dh.npy")
        try cli.write(rng.normalTensor([B, T, N + 1]), "dh-bad.npy")
    }

    override func tearDown() { cli.remove() }

    let base = ["op", "fast-rnn", "--params", "p", "--x", "x.npy", "--lambda", "0.95", "--eta", "0.5", "--out", "out"]

    func testForwardBackwardMatchTheLibraryForBothForms() throws {
        let read = { (n: String) in try NPY.read(self.cli.path(n)) }
        let params = FastWeightsRNNParameters(W: try read("p/W.npy"), C: try read("p/C.npy"), b: try read("p/b.npy"),
                                              g: try read("p/g.npy"), c: try read("p/c.npy"))
        for algo in ["explicit", "attention"] {
            let r = try cli.run(base + ["--steps", "2", "--activation", "tanh", "--algo", algo, "--dh", "dh.npy"])
            XCTAssertEqual(r.status, 0, r.err)
            XCTAssertEqual(cli.files(in: "out"), ["dC.npy", "dW.npy", "db.npy", "dc.npy", "dg.npy", "dh.npy", "dx.npy", "h.npy"]
                .filter { $0 != "dh.npy" })
            let (h, cache) = try FastWeightsRNN.forward(
                x: try read("x.npy"), parameters: params,
                config: FastWeightsRNNConfig(lambda: 0.95, eta: 0.5, innerSteps: 2, activation: .tanh),
                algorithm: algo == "explicit" ? .attention : .explicit)
            let g = try FastWeightsRNN.backward(dh: try read("dh.npy"), cache: cache)
            assertSpecClose(try read("out/h.npy").storage, h.storage, "\(algo) h")
            for (name, t) in [("dx", g.dx), ("dW", g.dW), ("dC", g.dC), ("db", g.db), ("dg", g.dg), ("dc", g.dc)] {
                assertSpecClose(try read("out/\(name).npy").storage, t.storage, "\(algo) \(name)")
            }
        }
    }

    func assertFails(_ args: [String], mentioning needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 2, "status for \(args): \(r.err)", file: file, line: line)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "stderr should be one line: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.contains(needle), "expected '\(needle)' in: \(r.err)", file: file, line: line)
        XCTAssertEqual(cli.files(in: "out"), [], "output written", file: file, line: line)
    }

    func testBadInputs() throws {
        try assertFails(base + ["--steps", "1", "--activation", "gelu"], mentioning: "gelu")
        try assertFails(base + ["--steps", "1", "--activation", "relu", "--algo", "fast"], mentioning: "fast")
        try assertFails(base + ["--steps", "-1", "--activation", "relu"], mentioning: "--steps")
        try assertFails(base + ["--steps", "1", "--activation", "relu", "--dh", "dh-bad.npy"], mentioning: "dh")
        try assertFails(["op", "fast-rnn", "--params", "nowhere", "--x", "x.npy", "--lambda", "0.9", "--eta", "0.5",
                         "--steps", "1", "--activation", "relu", "--out", "out"], mentioning: "nowhere")
        try FileManager.default.removeItem(atPath: cli.path("p/g.npy"))
        try assertFails(base + ["--steps", "1", "--activation", "relu"], mentioning: "g.npy: no such file")
        try cli.write(Tensor(shape: [N, N + 1]), "p/g.npy")
        try assertFails(base + ["--steps", "1", "--activation", "relu"], mentioning: "g")
        try cli.write(Tensor(shape: [N]), "p/g.npy")
        try cli.write(Tensor(shape: [B, T, Din + 1]), "x.npy")
        try assertFails(base + ["--steps", "1", "--activation", "relu"], mentioning: "x")
    }
}
