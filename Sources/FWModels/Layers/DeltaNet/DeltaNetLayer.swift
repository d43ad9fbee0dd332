import FWCore
import FWOps

/// A DeltaNet / Gated DeltaNet layer as flash-linear-attention defines it,
/// x `[B, T, D]` -> y `[B, T, D]` (the math: `DeltaNet.md`; the options:
/// `DeltaNetLayerConfig`):
///
/// ```
/// p       = x Wproj^T                                  [B*T, P]  (q | k | v | b | a | g blocks)
/// q, k, v = silu(causal depthwise conv_K(p block))     [B, H, T, dk], [B, H, T, dv]
/// beta    = m sigmoid(p[b])                            [B, H, T], m in {1, 2}
/// g       = -exp(A_log) softplus(p[a] + dt_bias)       [B, H, T]  (gated)
/// o       = dk^(-1/2) FWP(q, k, v; beta, g)            [B, H, T, dv]; FWP = identity map, l2 normalisation,
///                                                      rule delta or gated-delta (docs/contract.md 4, 4b)
/// o'      = o / sqrt(mean(o^2) + eps) * w * silu(p[g]) (output gate; without it: * w only)
/// y       = merge(o') Wout^T                           Wout [D, H dv]
/// ```
///
/// FWP's l2 normalisation `u / sqrt(sum u^2 + 1e-6)` is FLA's
/// `use_qk_l2norm_in_kernel` (fla/modules/l2norm.py, eps 1e-6 inside the
/// root), and y_t = S_t q'_t is linear in q', so scaling the op's output by
/// dk^(-1/2) is scaling q' (FLA's default `scale`).
///
/// Parameters, in registration order: `<name>.proj.weight [P, D]`,
/// `<name>.q_conv.weight [H dk, K]`, `<name>.k_conv.weight [H dk, K]`,
/// `<name>.v_conv.weight [H dv, K]`, (gated) `<name>.A_log [H]`,
/// `<name>.dt_bias [H]`, `<name>.o_norm.weight [dv]`, `<name>.out.weight [D, H dv]`.
///
/// The stateful forward carries `DeltaNetLayer.State` (fast weights and the
/// three conv states) across segments. The forward is in
/// `DeltaNetLayer+Forward.swift`, the backward in `DeltaNetLayer+Backward.swift`.
public struct DeltaNetLayer: Sendable {
    /// The configuration (validated).
    public let config: DeltaNetLayerConfig
    /// The fast weight op: rule delta or gated-delta, identity map, l2 normalisation.
    public let op: FastWeightProgrammer
    /// The fused input projection D -> P, no bias.
    public let proj: Linear
    /// The short convolutions of q (H dk channels), k (H dk) and v (H dv).
    public let qConv: ShortConvolution, kConv: ShortConvolution, vConv: ShortConvolution
    /// The decay gate's A_log and dt_bias (gated only).
    public let decay: DecayGate?
    /// The output RMS norm over dv (with the silu gate when `config.outputGate`).
    public let norm: GatedRMSNorm
    /// The output projection H dv -> D, no bias.
    public let out: Linear

    /// D, the width of x and y.
    public var modelSize: Int { config.modelSize }

    /// Validates `config` and registers the parameters (see the type's doc)
    /// in `store`, drawing from `rng`: the projections
    /// U(-1/sqrt(fan in), 1/sqrt(fan in)), the conv kernels U(-1/sqrt(K), 1/sqrt(K)),
    /// A_log and dt_bias as FLA (`DecayGate.initialValues`), the norm's weight 1.
    ///
    /// - Throws: `FWError.invalidArgument` from `config.validate()`.
    public init(_ config: DeltaNetLayerConfig, name: String, store: inout ParameterStore,
                rng: inout SeededRNG) throws {
        self.op = try config.validate()
        self.config = config
        let (D, H, dk, dv, K) = (config.modelSize, config.heads, config.headSize, config.valueSize, config.convolutionSize)
        proj = Linear(D, config.projectionSize, bias: false, name: "\(name).proj", store: &store, rng: &rng)
        qConv = ShortConvolution(channels: H * dk, kernelSize: K, name: "\(name).q_conv", store: &store, rng: &rng)
        kConv = ShortConvolution(channels: H * dk, kernelSize: K, name: "\(name).k_conv", store: &store, rng: &rng)
        vConv = ShortConvolution(channels: H * dv, kernelSize: K, name: "\(name).v_conv", store: &store, rng: &rng)
        decay = config.gated ? DecayGate(heads: H, name: name, store: &store, rng: &rng) : nil
        norm = GatedRMSNorm(dv, epsilon: config.normEpsilon, name: "\(name).o_norm", store: &store)
        out = Linear(H * dv, D, bias: false, name: "\(name).out", store: &store, rng: &rng)
    }

    /// What the stateful forward carries from one segment to the next.
    public struct State: Equatable, Sendable {
        /// The fast weights S `[B, H, dv, dk]` (the op's state layout).
        public var fastWeights: Tensor
        /// The last K-1 inputs of q's, k's and v's convolutions, `[B, K-1, H dk]`,
        /// `[B, K-1, H dk]` and `[B, K-1, H dv]` (oldest first).
        public var qConv: Tensor, kConv: Tensor, vConv: Tensor

        /// A state from its four parts.
        public init(fastWeights: Tensor, qConv: Tensor, kConv: Tensor, vConv: Tensor) {
            self.fastWeights = fastWeights
            self.qConv = qConv
            self.kConv = kConv
            self.vConv = vConv
        }
    }

    /// The all-zero state of a batch of B sequences (what a forward without
    /// an initial state starts from).
    public func zeroState(batch B: Int) -> State {
        State(fastWeights: Tensor(shape: fastWeightShape(batch: B)), qConv: Tensor(shape: qConv.stateShape(batch: B)),
              kConv: Tensor(shape: kConv.stateShape(batch: B)), vConv: Tensor(shape: vConv.stateShape(batch: B)))
    }

    /// The fast weights' shape, `[B, H, dv, dk]`.
    public func fastWeightShape(batch B: Int) -> [Int] { [B, config.heads, config.valueSize, config.headSize] }

    /// Throws `FWError.shapeMismatch` naming the part ("initial state.fastWeights",
    /// ...; `prefix` replaces "initial state") unless `state` fits a batch of B.
    func checkState(_ state: State, batch B: Int, prefix: String) throws {
        try state.fastWeights.checkShape("\(prefix).fastWeights", fastWeightShape(batch: B))
        try state.qConv.checkShape("\(prefix).qConv", qConv.stateShape(batch: B))
        try state.kConv.checkShape("\(prefix).kConv", kConv.stateShape(batch: B))
        try state.vConv.checkShape("\(prefix).vConv", vConv.stateShape(batch: B))
    }

    /// Everything the backward reads, kept by the forward.
    public struct Cache: Sendable {
        /// Batch size and sequence length of the forward.
        public let B: Int, T: Int
        /// The input x `[B, T, D]`.
        let x: Tensor
        /// The fused projection's output `[B*T, P]` (the convolutions' and gates' inputs).
        let p: [Float]
        /// The initial conv states (nil: zeros).
        let initialConv: (q: [Float], k: [Float], v: [Float])?
        /// The convolutions' pre-activations `[B*T, C]`.
        let qu: [Float], ku: [Float], vu: [Float]
        /// beta `[B, H, T]`.
        let beta: [Float]
        /// The decay's logits and g `[B, H, T]` (gated; empty otherwise).
        let decayLogits: [Float], g: [Float]
        /// The scaled op output o `[B, H, T, dv]` (the norm's input) and the norm's r `[B*H*T]`.
        let o: [Float], rstd: [Float]
        /// The output gate's logits `[B, H, T, dv]` (empty without the gate).
        let gateLogits: [Float]
        /// The merged normalised heads `[B*T, H dv]` (the output projection's input).
        let merged: [Float]
        /// The op's cache (nil for an empty batch or sequence).
        let fwp: FWPCache?
    }
}
