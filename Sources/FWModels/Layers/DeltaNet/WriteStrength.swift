import FWCore

/// The delta rule's write strength per head and step, from a logit
/// z = w_b . x (FLA's `b_proj`, then `sigmoid`, times 2 with `allow_neg_eigval`):
///
/// ```
/// beta = m * sigmoid(z),   m = 1 (beta in (0, 1)) or 2 (beta in (0, 2): I - beta k k^T
///                          may have a negative eigenvalue, Grazzi et al. 2024)
/// dz   = dbeta * m s (1 - s) = dbeta * beta (1 - beta / m)
/// ```
public enum WriteStrength {
    /// m: 2 with negative eigenvalues allowed, else 1.
    public static func scale(negativeEigenvalues: Bool) -> Float { negativeEigenvalues ? 2 : 1 }

    /// `beta[i] = m * sigmoid(logits[i])` for `i < count` (in place allowed).
    public static func forward(beta: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, count: Int, scale m: Float) {
        VectorExp.logistic(out: beta, x: logits, count: count)
        if m != 1 { for i in 0..<count { beta[i] *= m } }
    }

    /// `dlogits[i] = dbeta[i] * beta[i] (1 - beta[i] / m)` (overwritten), from the forward's `beta`.
    public static func backward(dlogits: UnsafeMutablePointer<Float>, dbeta: UnsafePointer<Float>,
                                beta: UnsafePointer<Float>, count: Int, scale m: Float) {
        for i in 0..<count { dlogits[i] = dbeta[i] * beta[i] * (1 - beta[i] / m) }
    }
}
