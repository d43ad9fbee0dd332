import FWCore
import FWOps

/// A multi-head fast weight programmer layer (Schlag et al. 2021), x `[B, T, D]`
/// -> y `[B, T, D]`:
///
/// ```
/// p      = x Wqkv^T                             Wqkv [P, D], P = H(2dk + dv) (+ H, delta)
/// q, k   = s * p[q block], s * p[k block]        [B, H, T, dk]; s = dk^(-1/4) for favor, else 1
/// v      = p[v block]                            [B, H, T, dv]
/// beta   = sigmoid(p[beta block])                [B, H, T]   (delta rule)
/// o      = FWP(q, k, v, beta; Omega)             [B, H, T, dv]  (docs/contract.md section 4)
/// y      = merge(o) Wout^T                       merge: [B, H, T, dv] -> [B, T, H*dv], Wout [D, H*dv]
/// ```
///
/// A row of p is `[q_0 .. q_{H-1} | k_0 .. k_{H-1} | v_0 .. v_{H-1} | w_0 .. w_{H-1}]`
/// (head-major blocks; `Attention.md`). Both projections have no bias, as in
/// the paper's code. Parameters: `<name>.qkv.weight [P, D]`,
/// `<name>.out.weight [D, H*dv]`.
///
/// FAVOR+ (`favor:M`): a fresh orthogonal random Omega `[M, dk]` is drawn from
/// the `rng` passed to `forward` when training; in evaluation the
/// configuration's `favorProjection` decides (fresh, or the one drawn at init).
/// The cache keeps the Omega used, so the backward is exact for it.
/// The forward is in `FastWeightLayer+Forward.swift`, the backward in
/// `FastWeightLayer+Backward.swift`.
public struct FastWeightLayer: Sendable {
    /// The configuration (validated).
    public let config: FastWeightLayerConfig
    /// The fast weight op the configuration describes.
    public let op: FastWeightProgrammer
    /// Fused projection D -> P (q, k, v and beta's logits), no bias.
    public let qkv: Linear
    /// Output projection H*dv -> D, no bias.
    public let out: Linear
    /// The Omega evaluation uses under `.fixedForEvaluation` (favor only), drawn at init.
    public let evaluationOmega: Tensor?

    /// D, the width of x and y.
    public var modelSize: Int { config.modelSize }

    /// The scale applied to q and k before phi: dk^(-1/4) for favor (docs/contract.md
    /// section 2: keeps exp(+-Omega x - |x|^2/2) away from underflow), 1 otherwise.
    public var queryKeyScale: Float {
        if case .favor = config.featureMap { return 1 / Float(config.headSize).squareRoot().squareRoot() }
        return 1
    }

    /// Validates `config`, registers `<name>.qkv.weight [P, D]` and
    /// `<name>.out.weight [D, H*dv]` (both U(-1/sqrt(fan in), 1/sqrt(fan in)))
    /// in `store`, and for `favor` with `.fixedForEvaluation` draws the
    /// evaluation Omega from `rng` (after the weights).
    ///
    /// - Throws: `FWError.invalidArgument` from `config.validate()`.
    public init(_ config: FastWeightLayerConfig, name: String, store: inout ParameterStore,
                rng: inout SeededRNG) throws {
        self.op = try config.validate()
        self.config = config
        self.qkv = Linear(config.modelSize, config.projectionSize, bias: false, name: "\(name).qkv",
                          store: &store, rng: &rng)
        self.out = Linear(config.heads * config.valueSize, config.modelSize, bias: false, name: "\(name).out",
                          store: &store, rng: &rng)
        if case let .favor(m) = config.featureMap, config.favorProjection == .fixedForEvaluation {
            self.evaluationOmega = try FavorProjection.draw(features: m, inputSize: config.headSize, rng: &rng)
        } else {
            self.evaluationOmega = nil
        }
    }

    /// The shape of the fast weights S the stateful forward takes and returns:
    /// `[B, H, dv, Dphi]`.
    public func stateShape(batch B: Int) -> [Int] {
        [B, config.heads, config.valueSize, config.featureMap.outputSize(inputSize: config.headSize)]
    }

    /// Everything the backward reads, kept by the forward.
    public struct Cache: Sendable {
        /// Batch size and sequence length of the forward.
        public let B: Int, T: Int
        /// The input x, `[B, T, D]`.
        let x: Tensor
        /// beta = sigmoid(.), `[B, H, T]` (delta rule; empty otherwise).
        let beta: [Float]
        /// The merged head outputs, `[B*T, H*dv]` (the output projection's input).
        let merged: [Float]
        /// The fast weight op's cache (nil for an empty batch or sequence).
        let fwp: FWPCache?
        /// The Omega `[M, dk]` this forward used (favor only), nil otherwise.
        public let omega: Tensor?
    }

    /// The Omega a forward uses when the caller does not give one: nil unless
    /// favor; a fresh draw from `rng` when training or under `.freshPerForward`;
    /// otherwise the one drawn at init.
    public func projection(training: Bool, rng: inout SeededRNG) throws -> Tensor? {
        guard case let .favor(m) = config.featureMap else { return nil }
        if !training, config.favorProjection == .fixedForEvaluation, let omega = evaluationOmega {
            return omega
        }
        return try FavorProjection.draw(features: m, inputSize: config.headSize, rng: &rng)
    }
}

/// Moving head blocks between the `[B*T, width]` rows of a projection and
/// `[B, H, T, d]` per-head tensors (the layout the ops take).
enum AttentionHeads {
    /// `dest[b, h, t, i] = scale * rows[(b*T + t) * width + column + h*d + i]`.
    static func gather(_ dest: UnsafeMutablePointer<Float>, from rows: UnsafePointer<Float>, width: Int,
                       column: Int, B: Int, H: Int, T: Int, d: Int, scale: Float = 1) {
        for b in 0..<B {
            for h in 0..<H {
                for t in 0..<T {
                    let src = rows + (b * T + t) * width + column + h * d
                    let dst = dest + ((b * H + h) * T + t) * d
                    for i in 0..<d { dst[i] = scale * src[i] }
                }
            }
        }
    }

    /// The transpose of `gather`: `rows[(b*T + t) * width + column + h*d + i] = scale * src[b, h, t, i]`.
    static func scatter(_ rows: UnsafeMutablePointer<Float>, width: Int, column: Int,
                        from src: UnsafePointer<Float>, B: Int, H: Int, T: Int, d: Int, scale: Float = 1) {
        for b in 0..<B {
            for h in 0..<H {
                for t in 0..<T {
                    let dst = rows + (b * T + t) * width + column + h * d
                    let s = src + ((b * H + h) * T + t) * d
                    for i in 0..<d { dst[i] = scale * s[i] }
                }
            }
        }
    }

    /// Throws `FWError.shapeMismatch` naming `name` unless `x` is `[B, T, D]`; returns (B, T).
    static func checkSequence(_ x: Tensor, _ name: String, modelSize D: Int) throws -> (B: Int, T: Int) {
        guard x.rank == 3, x.shape[2] == D else {
            throw FWError.shapeMismatch(tensor: name, expected: "[B, T, D] = [B, T, \(D)]", got: x.shape)
        }
        return (x.shape[0], x.shape[1])
    }
}
