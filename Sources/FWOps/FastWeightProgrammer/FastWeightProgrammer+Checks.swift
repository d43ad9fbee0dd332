import FWCore

extension FastWeightProgrammer {
    /// The one validator of the op's inputs (the layers, the synthetic model
    /// and `fwp op` reach it through `forward` or call it directly): checks
    /// every input against the configuration and the others, naming the
    /// tensor and both shapes on a mismatch; the gates against the rule
    /// (`FastWeightRule.checkGates`), omega against the feature map
    /// (`FeatureMap.checkOmega`), an initial state against the denominator;
    /// extents beyond `SizeLimits.maxExtent`, NaN/Inf entries
    /// (`FWError.nonFinite` naming the tensor and the index) and a log-decay
    /// g above 0.
    public func validateInputs(q: Tensor, k: Tensor, v: Tensor, gates: FWPGates = FWPGates(), omega: Tensor?,
                               initialState: Tensor?) throws {
        _ = try checkInputs(q: q, k: k, v: v, gates: gates, omega: omega, initialState: initialState)
    }

    /// `validateInputs`, returning the sizes.
    func checkInputs(q: Tensor, k: Tensor, v: Tensor, gates: FWPGates, omega: Tensor?,
                     initialState: Tensor?) throws -> FWPDims {
        try q.checkRank("q", 4, pattern: "[B, H, T, Dk]")
        let named: [(String, Tensor?)] = [("q", q), ("k", k), ("v", v)]
            + FWPGate.allCases.map { ($0.rawValue, gates[$0]) }
            + [("omega", omega), ("initial state", initialState)]
        for (name, t) in named {
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
        try rule.checkGates(given: gates.present)
        for gate in rule.gates { try gates[gate]!.checkShape(gate.rawValue, [B, H, T]) }
        try featureMap.validate(inputSize: dk)
        try featureMap.checkOmega(omega, inputSize: dk)
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
        for (name, t) in named { try t?.checkFinite(name) }
        if let g = gates.g { try Self.checkLogDecay(g) }
        return dims
    }

    /// A log-decay is <= 0 (a_t = exp(g_t) <= 1): names the first entry above 0.
    public static func checkLogDecay(_ g: Tensor, name: String = "g") throws {
        if let i = g.storage.firstIndex(where: { $0 > 0 }) {
            throw FWError.invalidArgument("\(name)[\(i)] = \(g.storage[i]) is above 0 (a log-decay g_t must be <= 0)")
        }
    }
}

extension FeatureMap {
    /// Throws unless `omega` is `[M, inputSize]` for `favor:M`, and nil for
    /// every other map; `context` prefixes the message (e.g. a layer's name).
    public func checkOmega(_ omega: Tensor?, inputSize dk: Int, context: String = "") throws {
        let prefix = context.isEmpty ? "" : context + ": "
        switch (self, omega) {
        case let (.favor(m), nil):
            throw FWError.invalidArgument("\(prefix)favor:\(m) needs omega [M, Dk] = \(describeShape([m, dk]))")
        case let (.favor(m), o?):
            try o.checkShape("omega", [m, dk])
        case (.identity, .some), (.silu, .some), (.elu1, .some), (.dpfp, .some):
            throw FWError.invalidArgument("\(prefix)omega is for the favor feature map only, not \(self)")
        case (.identity, nil), (.silu, nil), (.elu1, nil), (.dpfp, nil):
            break
        }
    }
}
