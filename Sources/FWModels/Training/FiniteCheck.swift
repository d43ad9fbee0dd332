import FWCore

/// Non-finite detection during training: each check throws
/// `FWError.nonFinite` with a message naming the step and the tensor, e.g.
///
///     step 123: gradient of 'rnn.W' contains NaN
///     step 7: loss is +Inf
///
/// so that a run stops at the first bad number with a message that says
/// where to look.
public enum FiniteCheck {
    /// Runs `body` (a training step's forward and backward); a non-finite
    /// input an op refused (`"W: non-finite value nan at index [0, 3]"`)
    /// is rethrown with the step in front: `"step 3: W: non-finite ..."`.
    public static func atStep<R>(_ step: Int, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let FWError.nonFinite(message) where !message.hasPrefix("step ") {
            throw FWError.nonFinite("step \(step): \(message)")
        }
    }

    /// Throws unless `loss` is finite: `"step <step>: loss is NaN"`.
    public static func loss(_ loss: Float, step: Int) throws {
        if !loss.isFinite { throw FWError.nonFinite("step \(step): loss is \(kind(loss))") }
    }

    /// Throws at the first non-finite number of `values`:
    /// `"step <step>: <label> contains NaN"` (`+Inf`, `-Inf`).
    public static func values(_ values: UnsafeBufferPointer<Float>, step: Int, label: String) throws {
        if let bad = firstNonFinite(values) {
            throw FWError.nonFinite("step \(step): \(label) contains \(kind(bad))")
        }
    }

    /// The same check over a tensor.
    public static func tensor(_ tensor: Tensor, step: Int, label: String) throws {
        try tensor.withUnsafeBufferPointer { try values($0, step: step, label: label) }
    }

    /// Checks every parameter's values (`"parameter 'name'"`) and gradients
    /// (`"gradient of 'name'"`) in `store`, in registration order.
    public static func store(_ store: ParameterStore, step: Int, values checkValues: Bool = true,
                             gradients checkGradients: Bool = true) throws {
        // One fast pass over the flat arrays; only on a hit look for the tensor.
        if checkValues {
            try store.values.withUnsafeBufferPointer { all in
                guard firstNonFinite(all) != nil else { return }
                for s in store {
                    try values(UnsafeBufferPointer(rebasing: all[s.range]), step: step, label: "parameter '\(s.name)'")
                }
            }
        }
        if checkGradients {
            try store.gradients.withUnsafeBufferPointer { all in
                guard firstNonFinite(all) != nil else { return }
                for s in store {
                    try values(UnsafeBufferPointer(rebasing: all[s.range]), step: step, label: "gradient of '\(s.name)'")
                }
            }
        }
    }

    /// "NaN", "+Inf" or "-Inf".
    static func kind(_ x: Float) -> String {
        x.isNaN ? "NaN" : (x > 0 ? "+Inf" : "-Inf")
    }

    /// The first non-finite number, or nil. A NaN anywhere wins over an
    /// infinity, since NaN is what an Inf turns into one step later and the
    /// message should name the worse case when both are there.
    static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Float? {
        var firstInf: Float?
        for x in values where !x.isFinite {
            if x.isNaN { return x }
            if firstInf == nil { firstInf = x }
        }
        return firstInf
    }
}
