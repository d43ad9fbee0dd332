import ArgumentParser

/// `fwp op ...`: every op on NumPy `.npy` files (SPEC.md section 6).
struct OpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "op",
        abstract: "Run one op on .npy files (the conformance command of SPEC.md section 6).",
        subcommands: [OpFWPCommand.self, OpFastRNNCommand.self])
}
