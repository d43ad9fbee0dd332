import ArgumentParser

/// `fwp op ...`: every op on NumPy `.npy` files (docs/contract.md section 6).
struct OpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "op",
        abstract: "Run one op on .npy files (the conformance command of docs/contract.md section 6).",
        subcommands: [OpFWPCommand.self, OpFastRNNCommand.self])
}
