import FWCore

extension FastWeightProgrammer {
    /// Checks every input against the configuration and the others, naming
    /// the tensor and both shapes on a mismatch, and returns the sizes.
    /// Also refuses extents beyond `SizeLimits.maxExtent` and NaN/Inf entries
    /// (`FWError.nonFinite` naming the tensor and the index).
    func checkInputs(q: Tensor, k: Tensor, v: Tensor, beta: Tensor?, omega: Tensor?,
                     initialState: Tensor?) throws -> FWPDims {
        try q.checkRank("q", 4, pattern: "[B, H, T, Dk]")
        for (name, t) in [("q", q), ("k", k), ("v", v), ("beta", beta), ("omega", omega), ("initial state", initialState)] {
            if let t { try SizeLimits.checkExtents(name, t.shape) }
        }
        let (B, H, T, dk) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        if dk < 1 { throw FWError.shapeMismatch(tensor: "q", expected: "[B, H, T, Dk] with Dk >= 1", got: q.shape) }
        if T < 1 { throw FWError.shapeMismatch(tensor: "q", expected: "[B, H, T, Dk] with T >= 1", got: q.shape) }
        try k.checkShape("k", q.shape)
        try v.checkRank("v", 4, pattern: "[B, H, T, Dv] = [\(B), \(H), \(T), Dv]")
        let dv = v.shape[3]
        if Array(v.shape.prefix(3)) != [B, H, T] || dv < 1 {
            throw FWError.shapeMismatch(tensor: "v", expected: "[\(B), \(H), \(T), Dv] with Dv >= 1", got: v.shape)
        }
        switch (rule, beta) {
        case (.delta, nil):
            throw FWError.invalidArgument("the delta rule needs beta [B, H, T] = \(describeShape([B, H, T]))")
        case (.sum, .some):
            throw FWError.invalidArgument("beta is for the delta rule only; the sum rule takes none")
        case let (.delta, b?):
            try b.checkShape("beta", [B, H, T])
        case (.sum, nil):
            break
        }
        try featureMap.validate(inputSize: dk)
        switch (featureMap, omega) {
        case let (.favor(m), nil):
            throw FWError.invalidArgument("favor:\(m) needs omega [M, Dk] = \(describeShape([m, dk]))")
        case let (.favor(m), o?):
            try o.checkShape("omega", [m, dk])
        case (_, .some):
            throw FWError.invalidArgument("omega is for the favor feature map only, not \(featureMap)")
        default:
            break
        }
        let dphi = featureMap.outputSize(inputSize: dk)
        if let s0 = initialState {
            if denominator {
                throw FWError.invalidArgument("the attention denominator starts from S_0 = 0 and z_0 = 0: no initial state")
            }
            try s0.checkShape("initial state", [B, H, dv, dphi])
        }
        let dims = FWPDims(B: B, H: H, T: T, dk: dk, dv: dv, dphi: dphi, dvInner: denominator ? dv + 1 : dv)
        // NaN or Inf would spread through the recurrence (and differently in
        // the recurrent and chunked forms): reject them at the boundary.
        for (name, t) in [("q", q), ("k", k), ("v", v), ("beta", beta), ("omega", omega), ("initial state", initialState)] {
            try t?.checkFinite(name)
        }
        return dims
    }
}
