import FWCore

/// The registry of write rules (docs/contract.md sections 4, 4b): every rule
/// the batched op, `fwp op`, the layers and the benchmarks know, with the
/// kernel that implements it. Adding a rule adds a case here and a folder
/// with its `FastWeightRuleKernel` (README, "Adding a rule"); nothing else
/// switches over rules.
public enum FastWeightRule: String, Sendable, CaseIterable, CustomStringConvertible {
    /// `S_t = S_{t-1} + v_t k'_t^T` (linear attention).
    case sum
    /// `S_t = S_{t-1} + beta_t (v_t - S_{t-1} k'_t) k'_t^T`.
    case delta
    /// `S_t = a_t S_{t-1} + v_t k'_t^T`, `a_t = exp(g_t)`.
    case gatedSum = "gated-sum"
    /// `S_t = a_t S_{t-1} + beta_t (v_t - a_t S_{t-1} k'_t) k'_t^T`.
    case gatedDelta = "gated-delta"

    /// The rule's kernels.
    public var kernel: any FastWeightRuleKernel.Type {
        switch self {
        case .sum: return SumRule.self
        case .delta: return DeltaRule.self
        case .gatedSum: return GatedSumRule.self
        case .gatedDelta: return GatedDeltaRule.self
        }
    }

    /// The per-step gates the rule reads (`[B, H, T]` each).
    public var gates: [FWPGate] { kernel.gates }

    /// True when the rule reads `gate`.
    public func needs(_ gate: FWPGate) -> Bool { gates.contains(gate) }

    /// Whether the attention denominator is defined for the rule (the sum rule only).
    public var allowsDenominator: Bool { kernel.allowsDenominator }

    /// The command-line spelling (`sum`, `delta`, `gated-sum`, `gated-delta`).
    public var description: String { rawValue }

    /// Parses a command-line spelling.
    public init(parsing text: String) throws {
        guard let rule = FastWeightRule(rawValue: text) else {
            let names = FastWeightRule.allCases.map(\.rawValue).joined(separator: ", ")
            throw FWError.invalidArgument("unknown rule '\(text)' (expected one of \(names))")
        }
        self = rule
    }

    /// Checks which gates a caller gives against the ones the rule reads:
    /// the message names the gate and the rule (`fwp op` prefixes `--`).
    public func checkGates(given: [FWPGate], optionPrefix: String = "") throws {
        for gate in FWPGate.allCases {
            let needed = needs(gate), present = given.contains(gate)
            if needed && !present {
                throw FWError.invalidArgument("the \(self) rule needs \(optionPrefix)\(gate) [B, H, T]")
            }
            if !needed && present {
                let users = FastWeightRule.allCases.filter { $0.needs(gate) }.map(\.rawValue).joined(separator: ", ")
                throw FWError.invalidArgument("\(optionPrefix)\(gate) is for the \(users) rules only; the \(self) rule takes none")
            }
        }
    }
}
