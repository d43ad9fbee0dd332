import ArgumentParser
import FastWeights

/// `fwp op fwp`: the fast weight programmer op on `.npy` files.
///
/// Writes `DIR/y.npy`, `DIR/state.npy`, and with `--dy`: `dq.npy dk.npy dv.npy
/// dstate.npy` (+ `dbeta.npy` for the delta rules, `dg.npy` for the gated rules). Every input is read and
/// checked (shapes, and NaN/Inf, named by file and index), and every output
/// computed, before the first file is written; then all are written or none.
struct OpFWPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fwp",
        abstract: "Fast weight programmer (sum, delta, gated-sum, gated-delta) forward, and backward with --dy.")

    @Option(help: "Write rule: sum, delta, gated-sum or gated-delta.") var rule: String
    @Option(help: "Feature map: identity, silu, elu1, dpfp:N or favor:M.") var phi: String
    @Option(help: "Normalisation of phi(k), phi(q): none, sum or l2.") var norm: String
    @Flag(help: "Divide by z_t . q'_t + 1e-6 (sum rule, non-negative phi, no --state).") var denominator = false
    @Option(help: "recurrent or chunked (default: the engine's choice).") var algo: String?
    @Option(help: "Chunk length of --algo chunked (default 64).") var chunk: Int?
    @Option(help: "Queries [B, H, T, Dk].") var q: String
    @Option(help: "Keys [B, H, T, Dk].") var k: String
    @Option(help: "Values [B, H, T, Dv].") var v: String
    @Option(help: "Write strengths [B, H, T] (delta, gated-delta).") var beta: String?
    @Option(help: "Log-decays g <= 0 [B, H, T] (gated-sum, gated-delta).") var g: String?
    @Option(help: "FAVOR+ projection [M, Dk] (favor:M).") var omega: String?
    @Option(help: "Initial state S_0 [B, H, Dv, Dphi].") var state: String?
    @Option(help: "dL/dy [B, H, T, Dv]: also run the backward.") var dy: String?
    @Option(help: "dL/dS_T [B, H, Dv, Dphi] (with --dy).") var dstate: String?
    @Option(help: "Output folder (created if missing).") var out: String

    func run() throws {
        let rule = try FastWeightRule(parsing: rule)
        let phi = try FeatureMap(parsing: phi)
        let norm = try FeatureNormalization(parsing: norm)
        if dstate != nil && dy == nil { throw FWError.invalidArgument("--dstate needs --dy") }
        if let chunk, chunk < 1 { throw FWError.invalidArgument("--chunk must be at least 1, got \(chunk)") }
        if chunk != nil && algo != "chunked" {
            throw FWError.invalidArgument("--chunk is for --algo chunked only (got --algo \(algo ?? "unset: the engine's choice"))")
        }
        let algorithm: FWPAlgorithm?
        switch algo {
        case nil: algorithm = nil
        case "recurrent"?: algorithm = .recurrent
        case "chunked"?: algorithm = .chunked(size: chunk ?? FastWeightProgrammer.defaultChunk)
        case let other?: throw FWError.invalidArgument("unknown --algo '\(other)' (expected recurrent or chunked)")
        }
        // The gate options, checked against the registry's gates of the rule
        // before any file is read.
        let gateFiles: [FWPGate: String] = [.beta: beta, .g: g].compactMapValues { $0 }
        try rule.checkGates(given: FWPGate.allCases.filter { gateFiles[$0] != nil }, optionPrefix: "--")
        if case .favor = phi, omega == nil { throw FWError.invalidArgument("--phi \(phi) needs --omega") }
        if omega != nil && !phi.needsOmega {
            throw FWError.invalidArgument("--omega is for the favor feature map only, not \(phi)")
        }
        if denominator && state != nil { throw FWError.invalidArgument("--denominator cannot be used with --state") }
        let op = try FastWeightProgrammer(rule: rule, featureMap: phi, normalization: norm,
                                          denominator: denominator, algorithm: algorithm)

        try OutputFolder.check(out)
        let read = OutputFolder.readFinite
        let qT = try read(q), kT = try read(k), vT = try read(v)
        var gates = FWPGates()
        for gate in rule.gates { gates[gate] = try read(gateFiles[gate]!) }
        let omegaT = try omega.map(read)
        let stateT = try state.map(read)
        let dyT = try dy.map(read), dstateT = try dstate.map(read)

        let result = try op.forward(q: qT, k: kT, v: vT, gates: gates, omega: omegaT,
                                    initialState: stateT, saveForBackward: dyT != nil)
        var outputs: [(String, Tensor)] = [("y.npy", result.y), ("state.npy", result.state)]
        if let dyT, let cache = result.cache {
            let g = try FastWeightProgrammer.backward(dy: dyT, dstate: dstateT, cache: cache)
            outputs += [("dq.npy", g.dq), ("dk.npy", g.dk), ("dv.npy", g.dv), ("dstate.npy", g.dstate)]
            for gate in rule.gates { outputs.append(("d\(gate).npy", g.dgates[gate]!)) }
        }
        try OutputFolder.write(outputs, to: out)
    }
}
