#if canImport(Glibc)
import Glibc
#endif
import FWCore

/// The softmax of one row of scores, in place, and its backward: shared by
/// the attention layers (a causal row is its first i + 1 entries).
///
/// ```
/// forward:  p_j = exp(s_j - max s) / sum_k exp(s_k - max s)
/// backward: ds_j = p_j (dp_j - sum_k p_k dp_k)
/// ```
enum RowSoftmax {
    /// `row[0..<n]` = softmax(`row[0..<n]`), `n >= 1`.
    static func forward(_ row: UnsafeMutablePointer<Float>, count n: Int) {
        precondition(n >= 1, "RowSoftmax.forward: empty row")
        let m = VectorExp.max(row, count: n)
        let sum = VectorExp.expSum(row, minus: m, into: row, count: n)
        let inv = 1 / sum
        for j in 0..<n { row[j] *= inv }
    }

    /// `d[0..<n]`, holding dL/dp on entry, becomes dL/ds for the softmax `p` of the forward.
    static func backward(_ d: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, count n: Int) {
        var c: Float = 0
        for j in 0..<n { c += d[j] * p[j] }
        for j in 0..<n { d[j] = p[j] * (d[j] - c) }
    }
}
