#if canImport(Glibc)
import Glibc
#endif
import FWCore

extension FeatureMap {
    /// `out[rows, dphi] = n(phi(x[rows, d]))` for every row vector.
    ///
    /// `omega` is the `[M, d]` random matrix for `favor:M` and must be nil
    /// for the other maps; Dphi is `outputSize(inputSize: d)`. The batched op
    /// calls this once over all B*H*T rows. Sizes are programmer-checked
    /// (`precondition`); `apply(_:omega:normalization:)` checks user input.
    ///
    /// ```
    /// identity: phi = x
    /// silu:     phi_i = x_i sigmoid(x_i)
    /// elu1:     phi_i = x_i + 1 (x_i > 0), exp(x_i) otherwise
    /// dpfp:N    r = relu([x, -x]);  phi[j*2d + i] = r[i] * r[(i - (j+1)) mod 2d]
    /// favor:M   u = Omega x;  phi = [exp(u_i - |x|^2/2), exp(-u_i - |x|^2/2)] / sqrt(2M)
    /// ```
    /// For `favor` with `sum` normalisation the exponent's per-vector maximum
    /// is subtracted first (exact: the normalisation cancels it).
    public func forward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, d: Int,
                        omega: UnsafePointer<Float>?, normalization: FeatureNormalization) {
        precondition(rows >= 0 && d >= 1, "FeatureMap.forward: rows=\(rows) d=\(d)")
        precondition(needsOmega == (omega != nil), "FeatureMap.forward: omega must be given exactly for favor (\(self))")
        let dphi = outputSize(inputSize: d)
        switch self {
        case .identity:
            // phi = x: the normalisation below reads x itself (one pass, no copy).
            break

        case .silu:
            VectorExp.silu(out: out, x: x, count: rows * d)

        case .elu1:
            VectorExp.elu1(out: out, x: x, count: rows * d)

        case let .dpfp(order):
            precondition(order >= 1 && order <= 2 * d - 1, "FeatureMap.forward: \(self) with d=\(d)")
            let width = 2 * d
            let r = UnsafeMutablePointer<Float>.allocate(capacity: width)
            defer { r.deallocate() }
            for row in 0..<rows {
                dpfpRelu(r, x + row * d, d: d)
                let o = out + row * dphi
                // Block j holds r times r rolled right by j+1 places.
                for j in 0..<order {
                    let shift = j + 1
                    let oj = o + j * width
                    // k = (i - shift) mod 2d, as two branch-free runs.
                    for i in shift..<width { oj[i] = r[i] * r[i - shift] }
                    for i in 0..<shift { oj[i] = r[i] * r[i - shift + width] }
                }
            }

        case let .favor(m):
            precondition(m >= 1, "FeatureMap.forward: \(self)")
            // u[rows, M] = X Omega^T, one sgemm over all rows, written into the
            // first M columns of each output row (ldc = 2M); the exps below
            // read u_i before overwriting slots i and M+i.
            BLAS.sgemm(.none, .transpose, m: rows, n: m, k: d,
                       alpha: 1, a: x, lda: d, b: omega!, ldb: d,
                       beta: 0, c: out, ldc: dphi)
            let scale = 1 / Float(2 * m).squareRoot()
            for row in 0..<rows {
                let o = out + row * dphi
                if normalization == .sum {
                    // Each entry is exp(e_i - c) with e_i = +-u_i - |x|^2/2 and
                    // c = max_i e_i = max_i |u_i| - |x|^2/2: the |x|^2/2 terms
                    // cancel, leaving exp(+-u_i - max|u|) in (0, 1], with the
                    // largest entry exactly 1 (no overflow, no all-zero
                    // underflow). c and 1/sqrt(2M) are per-vector constants,
                    // which u / sum(u) cancels exactly. See FeatureMap+Backward
                    // for why the backward may treat c as a constant.
                    var umax: Float = 0
                    for i in 0..<m { umax = max(umax, abs(o[i])) }
                    for i in 0..<m {
                        let ui = o[i]
                        o[i] = expf(ui - umax)
                        o[m + i] = expf(-ui - umax)
                    }
                } else {
                    // none / l2: the plain formula, one exp per entry (never
                    // exp(u) * exp(-|x|^2/2), which can be Inf * 0).
                    let xr = x + row * d
                    var half: Float = 0
                    for t in 0..<d { half += xr[t] * xr[t] }
                    half *= 0.5
                    for i in 0..<m {
                        let ui = o[i]
                        o[i] = expf(ui - half) * scale
                        o[m + i] = expf(-ui - half) * scale
                    }
                }
            }
        }
        normalization.forward(out: out, u: self == .identity ? x : UnsafePointer(out), rows: rows, size: dphi)
    }

    /// `r[2d] = relu([x, -x])`.
    @inline(__always)
    func dpfpRelu(_ r: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, d: Int) {
        for t in 0..<d {
            let xt = x[t]
            r[t] = xt > 0 ? xt : 0
            r[d + t] = xt < 0 ? -xt : 0
        }
    }

    /// `phi(x)` for one vector into `phi[dphi]`, without normalisation and
    /// without favor's shift; for the backward's recomputation (not favor).
    func recompute(_ phi: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, d: Int,
                   r: UnsafeMutablePointer<Float>) {
        switch self {
        case .identity:
            phi.update(from: x, count: d)
        case .silu:
            VectorExp.silu(out: phi, x: x, count: d)
        case .elu1:
            VectorExp.elu1(out: phi, x: x, count: d)
        case let .dpfp(order):
            let width = 2 * d
            dpfpRelu(r, x, d: d)
            for j in 0..<order {
                let shift = j + 1
                let pj = phi + j * width
                for i in shift..<width { pj[i] = r[i] * r[i - shift] }
                for i in 0..<shift { pj[i] = r[i] * r[i - shift + width] }
            }
        case .favor:
            preconditionFailure("FeatureMap.recompute: favor's backward needs no recomputation")
        }
    }

    /// `n(phi(x))` for a tensor whose last axis is d: shape `[..., d]` ->
    /// `[..., Dphi]`. `omega` is `[M, d]` for `favor:M`, nil otherwise.
    /// Throws `FWError.shapeMismatch` naming `x` or `omega`, or
    /// `FWError.invalidArgument` for an invalid map, pair or missing/extra omega.
    public func apply(_ x: Tensor, omega: Tensor?, normalization: FeatureNormalization) throws -> Tensor {
        let (rows, d) = try checkArguments(x: x, omega: omega, normalization: normalization)
        var outShape = x.shape
        outShape[outShape.count - 1] = outputSize(inputSize: d)
        var out = Tensor(shape: outShape)
        if rows == 0 { return out }
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                FeatureMap.withOmegaPointer(omega) { om in
                    forward(out: ob.baseAddress!, x: xb.baseAddress!, rows: rows, d: d,
                            omega: om, normalization: normalization)
                }
            }
        }
        return out
    }

    /// Checks x `[..., d]`, omega and the map/normalisation pair; returns (rows, d).
    func checkArguments(x: Tensor, omega: Tensor?, normalization: FeatureNormalization) throws -> (rows: Int, d: Int) {
        guard x.rank >= 1, let d = x.shape.last, d >= 1 else {
            throw FWError.shapeMismatch(tensor: "x", expected: "[..., d] with d >= 1", got: x.shape)
        }
        try validate(inputSize: d)
        try FeatureNormalization.validate(map: self, normalization: normalization)
        switch (self, omega) {
        case let (.favor(m), omega?):
            try omega.checkShape("omega", [m, d])
        case (.favor, nil):
            throw FWError.invalidArgument("feature map \(self) needs omega, an [M, d] matrix")
        case (_, _?):
            throw FWError.invalidArgument("feature map \(self) takes no omega (only favor:M does)")
        case (_, nil):
            break
        }
        return (x.count / d, d)
    }
}

extension FeatureMap {
    /// Calls `body` with omega's base address, or nil.
    static func withOmegaPointer<R>(_ omega: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let omega else { return body(nil) }
        return omega.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
