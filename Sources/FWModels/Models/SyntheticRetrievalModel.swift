import FWCore
import FWOps

/// How the synthetic-retrieval model reads its memory (Schlag et al. 2021,
/// section 6.1 and the official code's `PrefixSumLinearAttentionModel` /
/// `SoftmaxAttentionModel`).
public enum SyntheticReader: Equatable, Sendable, CustomStringConvertible {
    /// Causal softmax attention over the L stored pairs (the Transformer row).
    case softmax
    /// The sum rule with phi, read with the attention denominator:
    /// `y = S_L q' / (z_L . q' + 1e-6)`, `S_L = sum_t v_t k'_t^T`, `z_L = sum_t k'_t`,
    /// no normalisation of phi (the paper's "sum" update rule).
    case sumRule(FeatureMap)
    /// The delta rule with phi and sum normalisation of phi(k) and phi(q),
    /// beta_t = sigmoid(w_beta . x_t + b_beta): `y = S_L q'` (the paper's "ours").
    case deltaRule(FeatureMap)

    /// The feature map (nil for softmax).
    public var featureMap: FeatureMap? {
        switch self {
        case .softmax: return nil
        case let .sumRule(phi), let .deltaRule(phi): return phi
        }
    }

    /// "sum", "delta" or "softmax".
    public var ruleName: String {
        switch self {
        case .softmax: return "softmax"
        case .sumRule: return "sum"
        case .deltaRule: return "delta"
        }
    }

    /// e.g. `sum:dpfp:1`, `delta:elu1`, `softmax`.
    public var description: String {
        switch self {
        case .softmax: return "softmax"
        case let .sumRule(phi): return "sum:\(phi)"
        case let .deltaRule(phi): return "delta:\(phi)"
        }
    }

    /// Parses `softmax`, `sum:<phi>` or `delta:<phi>` (phi as in `FeatureMap(parsing:)`).
    public init(parsing text: String) throws {
        if text == "softmax" { self = .softmax; return }
        if text.hasPrefix("sum:") {
            self = .sumRule(try FeatureMap(parsing: String(text.dropFirst(4))))
        } else if text.hasPrefix("delta:") {
            self = .deltaRule(try FeatureMap(parsing: String(text.dropFirst(6))))
        } else {
            throw FWError.invalidArgument("model must be softmax, sum:<phi> or delta:<phi> (phi: \(FeatureMap.validForms)), got '\(text)'")
        }
        if case .identity? = featureMap {
            throw FWError.invalidArgument(ruleName == "sum"
                ? "sum:identity is not allowed: the attention denominator needs a non-negative phi"
                : "delta:identity is not allowed: the delta reader sum-normalises phi, which needs a non-negative phi (use delta:elu1, delta:dpfp:N or delta:favor:M)")
        }
    }

    /// Dimension of the dot product, d_dot: the key size for softmax, else Dphi.
    public func dotSize(keySize d: Int) -> Int {
        featureMap?.outputSize(inputSize: d) ?? d
    }
}

/// The one-layer model of the synthetic retrieval experiments (Schlag et al.
/// 2021, official code), for S keys and S values:
///
/// ```
/// x_t = [onehot(v_t); E[k_t]]                    in R^{S + e}, E [S, e] learned, N(0, 1)
/// K_t = W_k x_t + b_k                            in R^d  (d = d_key)
/// Q   = W_q E[query] + b_q                       in R^d
/// beta_t = sigmoid(w_b . x_t + b_b)              (delta rule)
/// V_t = onehot(v_t)                              in R^S  (fixed, not learned)
/// y   = read(K_1..L, V_1..L, beta, Q)            in R^S  (SyntheticReader)
/// loss = mean over queries of 0.5 * ||onehot(target) - y||^2
/// ```
///
/// W_k's two column blocks are stored as `key.value_table [S, d]` (W_k's
/// one-hot columns, transposed, so a pair's value picks a row) and
/// `key.embedding_weight [d, e]`; with the table P = E W_k,e^T `[S, d]`
/// computed once per batch, K_t = P[k_t] + value_table[v_t] + b_k is a
/// gather, never an `(S + e)`-wide product per token. The query and beta
/// projections work the same way.
///
/// For `favor:M`, K and Q are scaled by d^(-1/4) before phi (as Performer's
/// layers do, docs/contract.md section 2); Omega `[M, d]` is an input of every forward.
public struct SyntheticRetrievalModel: Sendable {
    /// S: number of keys and of values (the width of y).
    public let size: Int
    /// e: width of the key embedding (the paper's code: int(2.2 S)).
    public let embedding: Int
    /// d: d_key, the width of K and Q before phi.
    public let keySize: Int
    /// The memory read.
    public let reader: SyntheticReader
    /// The delta rule's or sum rule's op (nil for softmax).
    public let op: FastWeightProgrammer?

    /// `key_embedding [S, e]`.
    public let keyEmbedding: ParameterSlice
    /// `key.value_table [S, d]`, `key.embedding_weight [d, e]`, `key.bias [d]`.
    public let keyValueTable: ParameterSlice, keyWeight: ParameterSlice, keyBias: ParameterSlice
    /// `query.weight [d, e]`, `query.bias [d]`.
    public let queryWeight: ParameterSlice, queryBias: ParameterSlice
    /// Delta rule: `beta.value_table [S]`, `beta.embedding_weight [e]`, `beta.bias [1]`.
    public let betaValueTable: ParameterSlice?, betaWeight: ParameterSlice?, betaBias: ParameterSlice?

    /// The paper's embedding width for S: `int((S + S) * 1.1)`.
    public static func defaultEmbedding(size: Int) -> Int { Int(Double(2 * size) * 1.1) }

    /// Registers the parameters in `store`, initialised as the paper's code
    /// does: E ~ N(0, 1); linear-attention models W_k, W_q ~ U(+-1/sqrt(d));
    /// softmax W_k, W_q Xavier-uniform; every bias and w_b ~ U(+-1/sqrt(fan_in))
    /// (PyTorch's `nn.Linear` default).
    public init(size: Int, keySize: Int, embedding: Int? = nil, reader: SyntheticReader,
                store: inout ParameterStore, rng: inout SeededRNG) throws {
        guard size >= 1 else { throw FWError.invalidArgument("S must be >= 1, got \(size)") }
        guard keySize >= 1 else { throw FWError.invalidArgument("d_key must be >= 1, got \(keySize)") }
        let e = embedding ?? Self.defaultEmbedding(size: size)
        guard e >= 1 else { throw FWError.invalidArgument("the key embedding width must be >= 1, got \(e)") }
        switch reader {
        case .softmax:
            op = nil
        case let .sumRule(phi):
            op = try FastWeightProgrammer(rule: .sum, featureMap: phi, normalization: .none, denominator: true)
        case let .deltaRule(phi):
            op = try FastWeightProgrammer(rule: .delta, featureMap: phi, normalization: .sum)
        }
        if case let .dpfp(order)? = reader.featureMap, order > 2 * keySize - 1 {
            throw FWError.invalidArgument("dpfp:\(order) needs d_key >= \(order / 2 + 1), got \(keySize)")
        }
        self.size = size
        self.embedding = e
        self.keySize = keySize
        self.reader = reader

        let d = keySize, S = size
        let fanInK = S + e
        func bound(_ fanIn: Int) -> Float { 1 / Float(fanIn).squareRoot() }
        func xavier(_ fanIn: Int, _ fanOut: Int) -> ParameterInitializer {
            let b = (6 / Float(fanIn + fanOut)).squareRoot()
            return .uniform(low: -b, high: b)
        }
        let u = bound(d)
        let keyInit: ParameterInitializer = reader == .softmax ? xavier(fanInK, d) : .uniform(low: -u, high: u)
        let queryInit: ParameterInitializer = reader == .softmax ? xavier(e, d) : .uniform(low: -u, high: u)

        keyEmbedding = store.register("key_embedding", shape: [S, e], initializer: .normal(std: 1), rng: &rng)
        keyValueTable = store.register("key.value_table", shape: [S, d], initializer: keyInit, rng: &rng)
        keyWeight = store.register("key.embedding_weight", shape: [d, e], initializer: keyInit, rng: &rng)
        keyBias = store.register("key.bias", shape: [d],
                                 initializer: .uniform(low: -bound(fanInK), high: bound(fanInK)), rng: &rng)
        queryWeight = store.register("query.weight", shape: [d, e], initializer: queryInit, rng: &rng)
        queryBias = store.register("query.bias", shape: [d],
                                   initializer: .uniform(low: -bound(e), high: bound(e)), rng: &rng)
        if case .deltaRule = reader {
            let b = ParameterInitializer.uniform(low: -bound(fanInK), high: bound(fanInK))
            betaValueTable = store.register("beta.value_table", shape: [S], initializer: b, rng: &rng)
            betaWeight = store.register("beta.embedding_weight", shape: [e], initializer: b, rng: &rng)
            betaBias = store.register("beta.bias", shape: [1], initializer: b, rng: &rng)
        } else {
            betaValueTable = nil
            betaWeight = nil
            betaBias = nil
        }
    }

    /// d_dot of this model.
    public var dotSize: Int { reader.dotSize(keySize: keySize) }

    /// FAVOR+'s M, or nil when phi is not favor.
    public var favorFeatures: Int? {
        if case let .favor(m)? = reader.featureMap { return m }
        return nil
    }

    /// The factor applied to K and Q before phi: d^(-1/4) for favor, else 1.
    var inputScale: Float {
        favorFeatures == nil ? 1 : 1 / Float(keySize).squareRoot().squareRoot()
    }

    /// Draws a fresh Omega `[M, d]` when phi is favor, else nil.
    public func drawProjection(rng: inout SeededRNG) throws -> Tensor? {
        guard let m = favorFeatures else { return nil }
        return try FavorProjection.draw(features: m, inputSize: keySize, rng: &rng)
    }
}
