import FWCore

/// Both cores on fewer sequences than cores (one long document, B = H = 1).
/// Every rule's state rows are independent given the keys and the gates,
///
///     S_t[j, :] = a_t S_{t-1}[j, :] + beta_t (v_t[j] - a_t S_{t-1}[j, :] . k'_t) k'_t^T   (delta; sum: no read)
///     y_t[j]    = S_t[j, :] . q'_t
///
/// so the batched op cuts the value columns j into P parts and runs the
/// kernels on `BH * P` part-sequences in parallel: part p of sequence s
/// reads s's q', k' and gates and its own columns of v, y and the state.
/// The backward adds the parts' dq', dk' and gate gradients (each part's
/// are the sums over its own rows). The recurrent form runs each part as a
/// sequence of its own; the chunked form runs the parts as a team that
/// computes the chunks' key side (scores, K K^T, the WY solve) once
/// (`teamKernel`, Rules/TeamChunked.swift). Not with the denominator (its
/// ones column belongs to every part).
extension FastWeightProgrammer {
    /// Parts P > 1 to cut the value columns into, or 1: the smallest P with
    /// `sequences * P >= workers` that divides dv and leaves at least
    /// `minimumSplitWidth` columns per part.
    static func valueSplit(sequences: Int, dv: Int, denominator: Bool, workers: Int = ThreadOwnership.workers) -> Int {
        guard !denominator, sequences >= 1, sequences < workers else { return 1 }
        let wanted = (workers + sequences - 1) / sequences
        for p in wanted...max(wanted, dv) where dv % p == 0 && dv / p >= minimumSplitWidth {
            return p
        }
        return 1
    }

    /// The narrowest value part worth a thread of its own.
    static let minimumSplitWidth = 8

    /// The team form of the rule's chunked kernel and its chunk length, when
    /// the value columns are split (`parts > 1`) and the algorithm is
    /// chunked: then the chunks' key side runs once per sequence, shared by
    /// the parts (Rules/TeamChunked.swift), instead of once per part.
    static func teamKernel(rule: FastWeightRule, algorithm: FWPAlgorithm,
                           parts: Int) -> (any TeamChunkedRuleKernel.Type, Int)? {
        guard parts > 1, case let .chunked(chunk) = algorithm,
              let kernel = rule.kernel as? any TeamChunkedRuleKernel.Type else { return nil }
        return (kernel, chunk)
    }
}

/// Moving `[groups, rows, width]` blocks to and from `[groups * P, rows, width / P]` parts.
enum ValueParts {
    /// Part p of group g holds columns p*w ..< (p+1)*w of every row (P = 1: `x` itself).
    static func split(_ x: [Float], groups: Int, rows: Int, width: Int, parts P: Int) -> [Float] {
        move(x, groups: groups, rows: rows, width: width, parts: P, toParts: true)
    }

    /// The inverse of `split`.
    static func merge(_ x: [Float], groups: Int, rows: Int, width: Int, parts P: Int) -> [Float] {
        move(x, groups: groups, rows: rows, width: width, parts: P, toParts: false)
    }

    /// Row r of part p of group g is columns p*w ..< (p+1)*w of row r of group g:
    /// copied from the whole rows to the parts, or back.
    private static func move(_ x: [Float], groups: Int, rows: Int, width: Int, parts P: Int, toParts: Bool) -> [Float] {
        if P == 1 { return x }
        let w = width / P
        var out = [Float].uninitialized(count: x.count)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                // One part per worker (memory-bound copies: both cores' bandwidth).
                let ptrs = UncheckedSendable((xp, op))
                ThreadOwnership.forEachSequence(P) { p in
                    let (xp, op) = ptrs.value
                    for g in 0..<groups {
                        for r in 0..<rows {
                            let part = ((g * P + p) * rows + r) * w, whole = (g * rows + r) * width + p * w
                            if toParts {
                                (op.baseAddress! + part).update(from: xp.baseAddress! + whole, count: w)
                            } else {
                                (op.baseAddress! + whole).update(from: xp.baseAddress! + part, count: w)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `out[g] = sum_p x[g * P + p]` over blocks of `block` numbers (P = 1: `x` itself).
    static func sum(_ x: [Float], groups: Int, block: Int, parts P: Int) -> [Float] {
        if P == 1 { return x }
        var out = [Float](repeating: 0, count: groups * block)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                for g in 0..<groups {
                    let dst = op.baseAddress! + g * block
                    for p in 0..<P {
                        let src = xp.baseAddress! + (g * P + p) * block
                        for i in 0..<block { dst[i] += src[i] }
                    }
                }
            }
        }
        return out
    }
}
