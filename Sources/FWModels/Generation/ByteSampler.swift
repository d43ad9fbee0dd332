import Foundation
import FWCore

/// Draws the next byte from a language model's logits: softmax at a
/// temperature, optionally among the k most likely bytes only.
///
/// ```
/// p_i = exp((l_i - max l) / temperature) / sum_j exp((l_j - max l) / temperature)   over the kept bytes
/// ```
///
/// Deterministic: the same seed and logits give the same bytes.
public struct ByteSampler: Sendable {
    public let temperature: Float
    /// 0: every byte; else only the `topK` largest logits.
    public let topK: Int
    private var rng: SeededRNG

    /// `temperature` must be finite and positive, `topK` in 0...256.
    public init(seed: UInt64, temperature: Float = 1, topK: Int = 0) {
        precondition(temperature.isFinite && temperature > 0, "ByteSampler: temperature must be positive, got \(temperature)")
        precondition((0...256).contains(topK), "ByteSampler: topK must be 0...256, got \(topK)")
        self.temperature = temperature
        self.topK = topK
        rng = SeededRNG(seed: seed)
    }

    /// Scratch reused by every draw (no allocation per byte).
    private var order = [Int](repeating: 0, count: 256)
    private var weights = [Double](repeating: 0, count: 256)

    /// One byte drawn from `logits` (256 entries).
    public mutating func sample(_ logits: [Float]) -> UInt8 {
        precondition(logits.count == 256, "ByteSampler: \(logits.count) logits, expected 256")
        for i in 0..<256 { order[i] = i }
        var kept = 256
        if topK > 0 && topK < 256 {
            order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            kept = topK
        }
        var top = -Float.infinity
        for i in 0..<kept { top = max(top, logits[order[i]]) }
        var total = 0.0
        for i in 0..<kept {
            weights[i] = exp(Double(logits[order[i]] - top) / Double(temperature))
            total += weights[i]
        }
        // A uniform draw in [0, total) from 53 random bits.
        let u = Double(rng.next() >> 11) / Double(1 << 53) * total
        var acc = 0.0
        for i in 0..<kept {
            acc += weights[i]
            if u < acc { return UInt8(order[i]) }
        }
        return UInt8(order[kept - 1])
    }
}
