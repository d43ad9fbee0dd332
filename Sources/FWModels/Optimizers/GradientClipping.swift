import FWCore

extension ParameterStore {
    /// The global L2 norm of all gradients, `sqrt(sum_i g_i^2)` (summed in Float64).
    public func gradientNorm() -> Float {
        gradients.withUnsafeBufferPointer { g in
            var s = 0.0
            for x in g { s += Double(x) * Double(x) }
            return Float(s.squareRoot())
        }
    }

    /// Clipping by global norm: when `norm = ||g|| > maxNorm`, scales every
    /// gradient by `maxNorm / norm` so that the new norm is `maxNorm`.
    /// Returns the norm *before* clipping. A non-finite norm is returned and
    /// nothing is scaled (let `FiniteCheck` report it).
    @discardableResult
    public mutating func clipGradients(maxNorm: Float) -> Float {
        precondition(maxNorm > 0, "clipGradients: maxNorm must be positive, got \(maxNorm)")
        let norm = gradientNorm()
        guard norm.isFinite, norm > maxNorm else { return norm }
        let scale = maxNorm / norm
        gradients.withUnsafeMutableBufferPointer { g in
            for i in g.indices { g[i] *= scale }
        }
        return norm
    }
}
