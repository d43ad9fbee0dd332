import ArgumentParser
import FastWeights
import Foundation

/// `fwp op fast-rnn`: the fast-weights RNN of Ba et al. 2016 (docs/contract.md
/// section 5) on `.npy` files.
///
/// Reads `PDIR/{W,C,b,g,c}.npy`; writes `DIR/h.npy`, and with `--dh`:
/// `dx.npy dW.npy dC.npy db.npy dg.npy dc.npy`. Every input is read and
/// checked (shapes, and NaN/Inf, named by file and index), and every output
/// computed, before the first file is written; then all are written or none.
struct OpFastRNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fast-rnn",
        abstract: "Fast-weights RNN forward, and backward with --dh.")

    @Option(help: "Folder with W.npy [N, N], C.npy [N, Din], b.npy, g.npy, c.npy [N].") var params: String
    @Option(help: "Inputs [B, T, Din].") var x: String
    @Option(help: "Decay lambda of the fast weights.") var lambda: Float
    @Option(help: "Fast learning rate eta.") var eta: Float
    @Option(help: "Inner loop steps S >= 0.") var steps: Int
    @Option(help: "relu or tanh.") var activation: String
    @Option(help: "explicit or attention (default: attention).") var algo: String?
    @Option(help: "dL/dh [B, T, N]: also run the backward.") var dh: String?
    @Option(help: "Output folder (created if missing).") var out: String

    func run() throws {
        guard let act = FastWeightsRNNConfig.Activation(rawValue: activation) else {
            throw FWError.invalidArgument("unknown --activation '\(activation)' (expected relu or tanh)")
        }
        let algorithm: FastWeightsRNNAlgorithm
        if let algo {
            guard let a = FastWeightsRNNAlgorithm(rawValue: algo) else {
                throw FWError.invalidArgument("unknown --algo '\(algo)' (expected explicit or attention)")
            }
            algorithm = a
        } else {
            algorithm = .attention
        }
        if steps < 0 { throw FWError.invalidArgument("--steps must be >= 0, got \(steps)") }
        if !lambda.isFinite || !eta.isFinite { throw FWError.invalidArgument("--lambda and --eta must be finite") }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: params, isDirectory: &isDir), isDir.boolValue else {
            throw FWError.file(path: params, reason: "--params must be a folder holding W.npy C.npy b.npy g.npy c.npy")
        }
        try OutputFolder.check(out)
        func param(_ name: String) throws -> Tensor { try OutputFolder.readFinite((params as NSString).appendingPathComponent(name + ".npy")) }
        let parameters = FastWeightsRNNParameters(W: try param("W"), C: try param("C"), b: try param("b"),
                                                  g: try param("g"), c: try param("c"))
        let xT = try OutputFolder.readFinite(x)
        let dhT = try dh.map(OutputFolder.readFinite)
        let config = FastWeightsRNNConfig(lambda: lambda, eta: eta, innerSteps: steps, activation: act)
        let (h, cache) = try FastWeightsRNN.forward(x: xT, parameters: parameters, config: config, algorithm: algorithm)
        var outputs: [(String, Tensor)] = [("h.npy", h)]
        if let dhT {
            let g = try FastWeightsRNN.backward(dh: dhT, cache: cache)
            outputs += [("dx.npy", g.dx), ("dW.npy", g.dW), ("dC.npy", g.dC), ("db.npy", g.db),
                        ("dg.npy", g.dg), ("dc.npy", g.dc)]
        }
        try OutputFolder.write(outputs, to: out)
    }
}
