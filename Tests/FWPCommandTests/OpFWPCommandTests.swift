import XCTest
import Foundation
import FWTestSupport

/// `fwp op fwp` (docs/contract.md section 6): outputs match the library, and every
/// malformed input gets exit status 2, one line on stderr naming the
/// problem, and no output file.
final class OpFWPCommandTests: XCTestCase {
    var cli: CommandRunner!
    let (B, H, T, dk, dv) = (2, 2, 9, 4, 3)

    override func setUpWithError() throws {
        cli = try CommandRunner.make()
        var rng = SeededRNG(seed: 21)
        try cli.write(rng.normalTensor([B, H, T, dk]), "q.npy")
        try cli.write(rng.normalTensor([B, H, T, dk]), "k.npy")
        try cli.write(rng.normalTensor([B, H, T, dv]), "v.npy")
        try cli.write(rng.uniformTensor([B, H, T]), "beta.npy")
        try cli.write(rng.normalTensor([B, H, T, dv]), "dy.npy")
        try cli.write(rng.normalTensor([B, H, dv, dk]), "s0.npy")
        try cli.write(rng.normalTensor([B, H, dv, dk]), "dsT.npy")
        try cli.write(rng.normalTensor([5, dk]), "omega.npy")
        try cli.write(rng.normalTensor([B, H, T + 1, dk]), "q-long.npy")
        try cli.write(Tensor(shape: [3, 3]), "two-d.npy")
        var g = rng.uniformTensor([B, H, T])
        for i in 0..<g.count { g.storage[i] = -3 * g.storage[i] }
        try cli.write(g, "g.npy")
        g[1, 0, 4] = 0.25
        try cli.write(g, "g-positive.npy")
        g[1, 0, 4] = .infinity
        try cli.write(g, "g-inf.npy")
    }

    override func tearDown() { cli.remove() }

    let base = ["op", "fwp", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--out", "out"]

    func testDeltaRuleWritesEveryOutputAndMatchesTheLibrary() throws {
        let r = try cli.run(base + ["--rule", "delta", "--phi", "elu1", "--norm", "sum", "--beta", "beta.npy",
                                    "--state", "s0.npy", "--dy", "dy.npy", "--dstate", "dsT.npy", "--algo", "chunked",
                                    "--chunk", "4"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(cli.files(in: "out"), ["dbeta.npy", "dk.npy", "dq.npy", "dstate.npy", "dv.npy", "state.npy", "y.npy"])
        let op = try FastWeightProgrammer(rule: .delta, featureMap: .elu1, normalization: .sum, algorithm: .recurrent)
        let read = { (n: String) in try NPY.read(self.cli.path(n)) }
        let res = try op.forward(q: read("q.npy"), k: read("k.npy"), v: read("v.npy"), beta: read("beta.npy"),
                                 initialState: read("s0.npy"))
        let g = try FastWeightProgrammer.backward(dy: read("dy.npy"), dstate: read("dsT.npy"), cache: res.cache!)
        assertSpecClose(try read("out/y.npy").storage, res.y.storage, "y")
        assertSpecClose(try read("out/state.npy").storage, res.state.storage, "state")
        assertSpecClose(try read("out/dq.npy").storage, g.dq.storage, "dq")
        assertSpecClose(try read("out/dk.npy").storage, g.dk.storage, "dk")
        assertSpecClose(try read("out/dv.npy").storage, g.dv.storage, "dv")
        assertSpecClose(try read("out/dbeta.npy").storage, g.dbeta!.storage, "dbeta")
        assertSpecClose(try read("out/dstate.npy").storage, g.dstate.storage, "dstate")
        XCTAssertEqual(try read("out/state.npy").shape, [B, H, dv, dk])
    }

    /// The gated rules write dg.npy (and dbeta.npy for gated-delta) and match the library.
    func testGatedRulesWriteDgAndMatchTheLibrary() throws {
        for rule in [FastWeightRule.gatedSum, .gatedDelta] {
            let gates = rule == .gatedDelta ? ["--beta", "beta.npy", "--g", "g.npy"] : ["--g", "g.npy"]
            let r = try cli.run(base + ["--rule", rule.rawValue, "--phi", "elu1", "--norm", "l2", "--state", "s0.npy",
                                        "--dy", "dy.npy", "--dstate", "dsT.npy", "--algo", "chunked", "--chunk", "4"] + gates)
            XCTAssertEqual(r.status, 0, r.err)
            let expected = (rule == .gatedDelta ? ["dbeta.npy"] : []) + ["dg.npy", "dk.npy", "dq.npy", "dstate.npy", "dv.npy", "state.npy", "y.npy"]
            XCTAssertEqual(cli.files(in: "out"), expected)
            let op = try FastWeightProgrammer(rule: rule, featureMap: .elu1, normalization: .l2, algorithm: .recurrent)
            let read = { (n: String) in try NPY.read(self.cli.path(n)) }
            let res = try op.forward(q: read("q.npy"), k: read("k.npy"), v: read("v.npy"),
                                     beta: rule == .gatedDelta ? read("beta.npy") : nil, g: read("g.npy"),
                                     initialState: read("s0.npy"))
            let g = try FastWeightProgrammer.backward(dy: read("dy.npy"), dstate: read("dsT.npy"), cache: res.cache!)
            assertSpecClose(try read("out/y.npy").storage, res.y.storage, "\(rule) y")
            assertSpecClose(try read("out/dg.npy").storage, g.dg!.storage, "\(rule) dg")
            assertSpecClose(try read("out/dk.npy").storage, g.dk.storage, "\(rule) dk")
            if rule == .gatedDelta { assertSpecClose(try read("out/dbeta.npy").storage, g.dbeta!.storage, "dbeta") }
            try? FileManager.default.removeItem(atPath: cli.path("out"))
        }
    }

    func testGatedRuleOptionErrors() throws {
        let gs = base + ["--rule", "gated-sum", "--phi", "elu1", "--norm", "sum"]
        let gd = base + ["--rule", "gated-delta", "--phi", "elu1", "--norm", "sum"]
        try assertFails(gs, mentioning: "--g")
        try assertFails(gs + ["--g", "g.npy", "--beta", "beta.npy"], mentioning: "--beta")
        try assertFails(gd + ["--g", "g.npy"], mentioning: "--beta")
        try assertFails(gd + ["--beta", "beta.npy"], mentioning: "--g")
        try assertFails(base + ["--rule", "sum", "--phi", "elu1", "--norm", "sum", "--g", "g.npy"], mentioning: "--g")
        try assertFails(base + ["--rule", "delta", "--phi", "elu1", "--norm", "sum", "--beta", "beta.npy", "--g", "g.npy"],
                        mentioning: "--g")
        try assertFails(gs + ["--g", "g-positive.npy"], mentioning: "above 0")
        try assertFails(gs + ["--g", "g-inf.npy"], mentioning: "g-inf.npy")
        try assertFails(gs + ["--g", "beta-missing.npy"], mentioning: "beta-missing.npy")
        try assertFails(gs + ["--g", "v.npy"], mentioning: "g: expected shape")
        try assertFails(gs + ["--g", "g.npy", "--denominator"], mentioning: "gated-sum")
    }

    func testSumRuleWithDenominatorAndFavor() throws {
        let r = try cli.run(base + ["--rule", "sum", "--phi", "favor:5", "--norm", "none", "--denominator",
                                    "--omega", "omega.npy"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(cli.files(in: "out"), ["state.npy", "y.npy"])
        XCTAssertEqual(try NPY.read(cli.path("out/state.npy")).shape, [B, H, dv, 10])
    }

    /// Runs a failing command and checks the contract for errors.
    func assertFails(_ args: [String], mentioning needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 2, "status for \(args): \(r.err)", file: file, line: line)
        let lines = r.err.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "stderr should be one line: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.contains(needle), "expected '\(needle)' in: \(r.err)", file: file, line: line)
        XCTAssertEqual(cli.files(in: "out").filter { !$0.hasPrefix(".") }, [], "partial output", file: file, line: line)
        XCTAssertEqual(cli.files(in: "out"), [], "temporaries left", file: file, line: line)
    }

    func testBadInputsExitWithStatus2AndWriteNothing() throws {
        let sum = base + ["--rule", "sum", "--phi", "elu1", "--norm", "sum"]
        let delta = base + ["--rule", "delta", "--phi", "elu1", "--norm", "sum"]
        try assertFails(base + ["--rule", "mean", "--phi", "elu1", "--norm", "sum"], mentioning: "unknown rule 'mean'")
        try assertFails(base + ["--rule", "sum", "--phi", "relu2", "--norm", "sum"], mentioning: "relu2")
        try assertFails(base + ["--rule", "sum", "--phi", "dpfp:x", "--norm", "sum"], mentioning: "dpfp:x")
        try assertFails(base + ["--rule", "sum", "--phi", "dpfp:8", "--norm", "sum"], mentioning: "dpfp")
        try assertFails(base + ["--rule", "sum", "--phi", "elu1", "--norm", "max"], mentioning: "max")
        try assertFails(base + ["--rule", "sum", "--phi", "identity", "--norm", "sum"], mentioning: "identity")
        try assertFails(sum + ["--beta", "beta.npy"], mentioning: "--beta")
        try assertFails(delta, mentioning: "--beta")
        try assertFails(sum + ["--omega", "omega.npy"], mentioning: "--omega")
        try assertFails(base + ["--rule", "sum", "--phi", "favor:5", "--norm", "sum"], mentioning: "--omega")
        try assertFails(sum + ["--dstate", "dsT.npy"], mentioning: "--dstate")
        try assertFails(delta + ["--beta", "beta.npy", "--denominator"], mentioning: "delta")
        try assertFails(base + ["--rule", "sum", "--phi", "identity", "--norm", "l2", "--denominator"], mentioning: "identity")
        try assertFails(sum + ["--denominator", "--state", "s0.npy"], mentioning: "--state")
        try assertFails(sum + ["--algo", "fast"], mentioning: "--algo")
        try assertFails(sum + ["--chunk", "0"], mentioning: "--chunk")
        try assertFails(sum + ["--bogus"], mentioning: "bogus")
    }

    func testBadFilesExitWithStatus2AndNameTheFile() throws {
        let sum = ["op", "fwp", "--rule", "sum", "--phi", "elu1", "--norm", "sum", "--out", "out"]
        try assertFails(sum + ["--q", "missing.npy", "--k", "k.npy", "--v", "v.npy"], mentioning: "missing.npy: no such file")
        try assertFails(sum + ["--q", "q-long.npy", "--k", "k.npy", "--v", "v.npy"], mentioning: "k: expected shape")
        try assertFails(sum + ["--q", "two-d.npy", "--k", "k.npy", "--v", "v.npy"], mentioning: "q: expected shape")
        try assertFails(sum + ["--q", "q.npy", "--k", "k.npy", "--v", "q-long.npy"], mentioning: "v: expected shape")
        try assertFails(sum + ["--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--state", "v.npy"],
                        mentioning: "initial state: expected shape")
        try assertFails(sum + ["--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--dy", "q.npy"], mentioning: "dy: expected shape")
        let deltaArgs = ["op", "fwp", "--rule", "delta", "--phi", "elu1", "--norm", "sum", "--out", "out",
                         "--q", "q.npy", "--k", "k.npy", "--v", "v.npy"]
        try assertFails(deltaArgs + ["--beta", "v.npy"], mentioning: "beta: expected shape")
        // A wrong dtype and a truncated file.
        var bytes = NPY.encode(Tensor(shape: [B, H, T, dk]))
        var intBytes = bytes
        if let at = (0..<(bytes.count - 4)).first(where: { Array(bytes[$0..<($0 + 4)]) == Array("'<f4".utf8) }) {
            intBytes[at + 2] = UInt8(ascii: "i")
        }
        _ = FileManager.default.createFile(atPath: cli.path("int.npy"), contents: Data(intBytes))
        try assertFails(sum + ["--q", "int.npy", "--k", "k.npy", "--v", "v.npy"], mentioning: "int.npy: unsupported dtype")
        bytes.removeLast(5)
        _ = FileManager.default.createFile(atPath: cli.path("short.npy"), contents: Data(bytes))
        try assertFails(sum + ["--q", "short.npy", "--k", "k.npy", "--v", "v.npy"], mentioning: "short.npy: truncated")
    }

    func testExistingOutputsAreNotTouchedOnError() throws {
        let ok = try cli.run(base + ["--rule", "sum", "--phi", "elu1", "--norm", "sum"])
        XCTAssertEqual(ok.status, 0, ok.err)
        let before = try Data(contentsOf: URL(fileURLWithPath: cli.path("out/y.npy")))
        let r = try cli.run(base + ["--rule", "sum", "--phi", "elu1", "--norm", "sum", "--dy", "q.npy"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cli.path("out/y.npy"))), before)
        XCTAssertEqual(cli.files(in: "out"), ["state.npy", "y.npy"])
    }
}
