import FWCore

/// How the recurrence over time is computed; both give the same function.
public enum FWPAlgorithm: Equatable, Sendable, CustomStringConvertible {
    /// Token by token: one fused SIMD pass over each head's state per token
    /// (`FusedRecurrence`; a rank-1 write and the reads).
    case recurrent
    /// Chunks of `size` steps as `sgemm` products (the WY form for the delta rule).
    case chunked(size: Int)

    public var description: String {
        switch self {
        case .recurrent: return "recurrent"
        case let .chunked(size): return "chunked(\(size))"
        }
    }

    /// The name used on the command line and in benchmark rows.
    public var name: String {
        switch self {
        case .recurrent: return "recurrent"
        case .chunked: return "chunked"
        }
    }
}

/// A batched fast weight programmer op: feature map, normalisation and write
/// rule over `[B, H, T, D]` tensors, forward and backward (docs/contract.md sections 2-4).
///
/// ```
/// k'_t = n(phi(k_t)),  q'_t = n(phi(q_t))
/// sum:          S_t = S_{t-1} + v_t k'_t^T
/// delta:        S_t = S_{t-1} + beta_t (v_t - S_{t-1} k'_t) k'_t^T
/// gated-sum:    S_t = a_t S_{t-1} + v_t k'_t^T,  a_t = exp(g_t)
/// gated-delta:  S_t = a_t S_{t-1} + beta_t (v_t - a_t S_{t-1} k'_t) k'_t^T
/// y_t = S_t q'_t      (or S_t q'_t / (z_t . q'_t + 1e-6), z_t = z_{t-1} + k'_t, with the denominator)
/// ```
///
/// The B*H sequences are independent and run in parallel
/// (`ThreadOwnership.forEachSequence`); inside a sequence the chosen algorithm
/// runs on OpenBLAS.
public struct FastWeightProgrammer: Sendable {
    /// The write rule.
    public var rule: FastWeightRule
    /// phi, applied to every key and query.
    public var featureMap: FeatureMap
    /// n, applied to phi(k_t) and phi(q_t).
    public var normalization: FeatureNormalization
    /// Divide by `z_t . q'_t + 1e-6` (sum rule with a non-negative phi, no initial state).
    public var denominator: Bool
    /// The algorithm; nil lets the engine choose (`FastWeightProgrammer.automaticAlgorithm`).
    public var algorithm: FWPAlgorithm?

    /// Checks the combination (docs/contract.md sections 3, 4) and builds the op.
    ///
    /// - Throws: `FWError.invalidArgument` for `identity` + `sum`, the
    ///   denominator with a rule other than sum or with a phi that can be negative,
    ///   or a chunk size below 1.
    public init(rule: FastWeightRule, featureMap: FeatureMap = .identity,
                normalization: FeatureNormalization = .none, denominator: Bool = false,
                algorithm: FWPAlgorithm? = nil) throws {
        try FeatureNormalization.validate(map: featureMap, normalization: normalization)
        if denominator {
            if !rule.allowsDenominator {
                throw FWError.invalidArgument("the attention denominator is defined for the sum rule only, not the \(rule) rule")
            }
            if !featureMap.isNonNegative {
                throw FWError.invalidArgument("the attention denominator needs a non-negative feature map (elu1, dpfp, favor), not \(featureMap)")
            }
        }
        if case let .chunked(size)? = algorithm, size < 1 {
            throw FWError.invalidArgument("chunk size must be at least 1, got \(size)")
        }
        self.rule = rule
        self.featureMap = featureMap
        self.normalization = normalization
        self.denominator = denominator
        self.algorithm = algorithm
    }
}

/// What `FastWeightProgrammer.forward` returns: outputs, final states, and
/// what the backward needs.
public struct FWPResult: Sendable {
    /// `[B, H, T, Dv]`.
    public var y: Tensor
    /// Final states S_T, `[B, H, Dv, Dphi]` (contract layout).
    public var state: Tensor
    /// Saved for the backward (nil when the forward was run without it).
    public var cache: FWPCache?
}

/// Gradients of a fast weight programmer op.
public struct FWPGradients: Sendable {
    /// dL/dq, `[B, H, T, Dk]`.
    public var dq: Tensor
    /// dL/dk, `[B, H, T, Dk]`.
    public var dk: Tensor
    /// dL/dv, `[B, H, T, Dv]`.
    public var dv: Tensor
    /// dL/d(gate) for every gate of the rule, `[B, H, T]` each.
    public var dgates: FWPGates
    /// dL/dbeta, `[B, H, T]` (the delta rules).
    public var dbeta: Tensor? { dgates.beta }
    /// dL/dg, `[B, H, T]` (the gated rules).
    public var dg: Tensor? { dgates.g }
    /// dL/dS_0, `[B, H, Dv, Dphi]` (at S_0 = 0 when no initial state was given).
    public var dstate: Tensor
}

/// Everything the backward reads, kept by the forward.
public struct FWPCache: Sendable {
    let op: FastWeightProgrammer
    let algorithm: FWPAlgorithm
    let dims: FWPDims
    /// Raw q, k: `[BH, T, Dk]` (phi's backward recomputes from them).
    let q: Tensor, k: Tensor
    /// q', k': `[BH, T, Dphi]` after phi and n.
    let qf: [Float], kf: [Float]
    /// v, or [v, 1] with the denominator: `[BH, T, Dv']`, cut into
    /// `valueParts` parts `[BH * P, T, Dv'/P]` (FastWeightProgrammer+ValueSplit.swift).
    let v: [Float]
    /// The rule's gates, `[gates, BH, T]` in `rule.gates` order.
    let gates: [Float]
    let omega: Tensor?
    /// The kernels' saved buffers, `[BH * P, savedCount]`.
    let saved: [Float]
    let savedCount: Int
    /// With the denominator: the un-normalised outputs [S q', z.q' + 1e-6], `[BH, T, Dv+1]`.
    let numerators: [Float]
    /// P, the parts the value columns were cut into (1: none).
    let valueParts: Int
}

/// The sizes of one call.
struct FWPDims: Sendable {
    var B: Int, H: Int, T: Int, dk: Int, dv: Int, dphi: Int
    /// Value width inside the kernels: dv, or dv + 1 with the denominator's ones column.
    var dvInner: Int
    var sequences: Int { B * H }
    var kernelShape: SequenceShape { SequenceShape(T: T, dphi: dphi, dv: dvInner) }

    /// Bytes a forward and backward with `algorithm` allocate beyond their
    /// inputs, in Double so that forming it cannot overflow: q', k', y, the
    /// states, what the kernels save (a state per chunk, or per segment of
    /// sqrt(T) steps, plus a few rows per step), and the gradients.
    func memoryEstimate(algorithm: FWPAlgorithm) -> Double {
        let (bh, t, dphi, dv, dk) = (Double(B) * Double(H), Double(T), Double(self.dphi), Double(dvInner), Double(self.dk))
        let savedStates: Double
        switch algorithm {
        case .recurrent: savedStates = 2 * (t.squareRoot() + 1)
        case let .chunked(c): savedStates = (t / Double(max(1, c))).rounded(.up)
        }
        let rows = bh * t * (2 * dphi + 2 * dv)
        let states = 2 * bh * dphi * dv
        let saved = bh * (savedStates * dphi * dv + t * (dphi + 2 * dv + 2))
        let grads = bh * t * (2 * dk + 2 * dphi + 2 * dv + 1) + states
        return MemoryBudget.floats(rows + states + saved + grads)
    }
}
