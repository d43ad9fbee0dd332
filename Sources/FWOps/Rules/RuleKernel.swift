import FWCore

/// A per-step gate of a write rule: one scalar per `(b, h, t)`, `[B, H, T]`.
public enum FWPGate: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Write strength beta_t of the delta rules (in (0, 1), or (0, 2) for negative eigenvalues).
    case beta
    /// Log-decay g_t <= 0 of the gated rules (a_t = exp(g_t)).
    case g

    public var description: String { rawValue }
}

/// The gates of one call, as data: a tensor per gate the rule needs
/// (`[B, H, T]` each), nil for the others. Gradients come back in the same
/// container (`dgates.beta` is dL/dbeta).
public struct FWPGates: Sendable {
    public var beta: Tensor?
    public var g: Tensor?

    public init(beta: Tensor? = nil, g: Tensor? = nil) {
        self.beta = beta
        self.g = g
    }

    public subscript(gate: FWPGate) -> Tensor? {
        get {
            switch gate {
            case .beta: return beta
            case .g: return g
            }
        }
        set {
            switch gate {
            case .beta: beta = newValue
            case .g: g = newValue
            }
        }
    }

    /// The gates that are present.
    public var present: [FWPGate] { FWPGate.allCases.filter { self[$0] != nil } }
}

/// One sequence's gates as the rule kernels see them: `[T]` each, nil when
/// the rule does not use the gate.
public struct GatePointers {
    public var beta: UnsafePointer<Float>?
    public var g: UnsafePointer<Float>?

    public init(beta: UnsafePointer<Float>? = nil, g: UnsafePointer<Float>? = nil) {
        self.beta = beta
        self.g = g
    }

    public subscript(gate: FWPGate) -> UnsafePointer<Float>? {
        switch gate {
        case .beta: return beta
        case .g: return g
        }
    }
}

/// One sequence's gate gradients: `[T]` each, overwritten by the backward;
/// non-nil exactly for the gates of the rule.
public struct GateGradientPointers {
    public var beta: UnsafeMutablePointer<Float>?
    public var g: UnsafeMutablePointer<Float>?

    public init(beta: UnsafeMutablePointer<Float>? = nil, g: UnsafeMutablePointer<Float>? = nil) {
        self.beta = beta
        self.g = g
    }
}

/// What a write rule implements to be a rule of the batched op: its gates,
/// and its kernels on one `(b, h)` sequence in both forms, forward and
/// backward (see `SequenceShape` for the pointer layouts). The batched op,
/// `fwp op` and the benchmarks reach a rule only through this protocol and
/// the registry (`FastWeightRule.kernel`).
///
/// Kernels never start threads; outputs are overwritten; `saved` holds
/// `savedCount(algorithm, shape)` floats (nil when no backward follows).
public protocol FastWeightRuleKernel {
    /// The per-step gates the rule reads, in the order `fwp op` lists them.
    static var gates: [FWPGate] { get }
    /// Whether the attention denominator (docs/contract.md section 4) is defined for the rule.
    static var allowsDenominator: Bool { get }
    /// The engine's algorithm when the caller leaves it open.
    static func automaticAlgorithm(T: Int, dphi: Int, dv: Int) -> FWPAlgorithm

    static func savedCount(_ algorithm: FWPAlgorithm, _ shape: SequenceShape) -> Int
    /// Floating-point operations of one sequence (forward, or forward + backward).
    static func flops(_ algorithm: FWPAlgorithm, _ shape: SequenceShape, backward: Bool) -> Double

    /// y `[T, dv]`; state in S_0^T, out S_T^T `[dphi, dv]`.
    static func forward(
        _ algorithm: FWPAlgorithm,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        shape: SequenceShape)

    /// dq, dk `[T, dphi]`, dv `[T, dv]`, dgates `[T]` each, overwritten;
    /// dstate in dL/dS_T^T, out dL/dS_0^T.
    static func backward(
        _ algorithm: FWPAlgorithm,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dgates: GateGradientPointers, dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        saved: UnsafePointer<Float>?, shape: SequenceShape)
}

extension FastWeightRuleKernel {
    public static var allowsDenominator: Bool { false }
    public static func automaticAlgorithm(T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        .chunked(size: FastWeightProgrammer.automaticChunk)
    }
}
