import FWCore

/// Inverted dropout with rate p over `count` numbers:
///
/// ```
/// mask_i = u_i >= p ? 1 / (1 - p) : 0       u_i = rng.uniform(), drawn in index order
/// y_i    = x_i * mask_i                       forward
/// dx_i  += dy_i * mask_i                      backward (the same mask)
/// ```
///
/// so E[y] = x. Outside training, or with p = 0, it is the identity and
/// draws nothing from the generator (the mask is nil). The forward returns
/// the mask it drew; the caller keeps it in its cache for the backward.
public struct Dropout: Sendable, Equatable {
    /// p, in [0, 1).
    public let rate: Float

    /// Dropout with rate `rate` in [0, 1) (a programming error otherwise;
    /// `LanguageModelConfig.validate()` checks user input).
    public init(rate: Float) {
        precondition(rate >= 0 && rate < 1, "Dropout: rate must be in [0, 1), got \(rate)")
        self.rate = rate
    }

    /// True when the forward is the identity whatever `training` says (p = 0).
    public var isIdentity: Bool { rate == 0 }

    /// `count` mask entries, 0 or 1/(1-p), one `rng.uniform()` each in index order.
    public func drawMask(count: Int, rng: inout SeededRNG) -> [Float] {
        let keep = 1 / (1 - rate)
        var mask = [Float].uninitialized(count: count)
        for i in 0..<count { mask[i] = rng.uniform() >= rate ? keep : 0 }
        return mask
    }

    /// `out[i] = inp[i] * mask[i]` for `i < count` (`out` may be `inp`).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               mask: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = inp[i] * mask[i] }
    }

    /// `dinp[i] += dout[i] * mask[i]` for `i < count`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                mask: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dinp[i] += dout[i] * mask[i] }
    }

    /// `y = x * mask` with a fresh mask when training and p > 0; otherwise
    /// `y = x` and no mask (nothing drawn).
    public func forward(_ x: Tensor, training: Bool, rng: inout SeededRNG) -> (y: Tensor, mask: [Float]?) {
        guard training, !isIdentity, x.count > 0 else { return (x, nil) }
        let mask = drawMask(count: x.count, rng: &rng)
        return (Dropout.apply(x, mask), mask)
    }

    /// `y = x * mask` with a given mask (`x.count` entries), or `y = x` for nil.
    ///
    /// - Throws: `FWError.invalidArgument` for a mask of another size.
    public func forward(_ x: Tensor, mask: [Float]?) throws -> Tensor {
        guard let mask else { return x }
        try Dropout.checkMask(mask, x)
        return Dropout.apply(x, mask)
    }

    /// `dx = dy * mask` (the forward's mask), or `dx = dy` for nil.
    ///
    /// - Throws: `FWError.invalidArgument` for a mask of another size.
    public func backward(_ dy: Tensor, mask: [Float]?) throws -> Tensor {
        guard let mask else { return dy }
        try Dropout.checkMask(mask, dy)
        return Dropout.apply(dy, mask)
    }

    private static func apply(_ x: Tensor, _ mask: [Float]) -> Tensor {
        if x.count == 0 { return x }
        var y = x
        y.withUnsafeMutableBufferPointer { yp in
            mask.withUnsafeBufferPointer { mp in
                forward(out: yp.baseAddress!, inp: yp.baseAddress!, mask: mp.baseAddress!, count: yp.count)
            }
        }
        return y
    }

    private static func checkMask(_ mask: [Float], _ x: Tensor) throws {
        guard mask.count == x.count else {
            throw FWError.invalidArgument("Dropout: mask of \(mask.count) entries for a tensor \(describeShape(x.shape)) of \(x.count)")
        }
    }
}
