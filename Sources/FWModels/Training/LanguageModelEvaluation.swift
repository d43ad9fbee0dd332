import Foundation
import FWCore

/// Bits per character of a language model over a whole text.
///
/// ```
/// bpc = (sum over scored bytes of -ln p(byte | what came before)) / (bytes scored * ln 2)
/// ```
///
/// Two ways to read a long text, as the model was trained:
///
/// * `truncated`: windows of `context` bytes, each from empty fast weights
///   (and no attention beyond the window), scoring each window's `context`
///   next bytes; consecutive windows share one byte, so every byte but the
///   first is scored once. Windows are evaluated `batch` at a time.
/// * `carry`: the text as one stream (batch 1) in segments of `context`,
///   the fast weights carried from segment to segment: every byte but the
///   first is scored with all of the text before it in the state, so the
///   model is evaluated far beyond the context it was trained on.
public enum LanguageModelEvaluation {
    /// The result over one text.
    public struct Result: Codable, Equatable, Sendable {
        /// Sum of the per-byte losses, in nats.
        public var lossSum: Double
        /// Bytes scored.
        public var count: Int
        /// Mean loss in nats per byte.
        public var loss: Double { count > 0 ? lossSum / Double(count) : .nan }
        /// Bits per character (byte).
        public var bpc: Double { loss / log(2) }
    }

    /// Scores `text` (at least 2 bytes) with `model` and the parameters in `store`.
    ///
    /// `scored`, when given, is called after every forward with the offset in
    /// `text` of its first input byte, the loss sum (nats) and the count of
    /// what it scored, in text order: the loss by position in the text. With
    /// `alignment` A (a multiple of `context`), no batch of truncated windows
    /// crosses a multiple of A bytes, so the calls can be summed into blocks of A.
    /// - Throws: `FWError.invalidArgument` for a text too short or `carry` with
    ///   a mixer that has no state; `FWError.nonFinite` for a non-finite loss.
    public static func evaluate(_ model: CharLanguageModel, store: ParameterStore, text: ArraySlice<UInt8>,
                                context: Int, mode: LanguageModelRunConfig.ContextMode, batch: Int = 16,
                                alignment: Int? = nil,
                                scored: ((_ offset: Int, _ lossSum: Double, _ count: Int) -> Void)? = nil) throws -> Result {
        guard text.count >= 2 else { throw FWError.invalidArgument("cannot score a text of \(text.count) bytes (need 2)") }
        let bytes = Array(text)
        var lossSum = 0.0, count = 0
        switch mode {
        case .truncated, .streams:
            // Window w covers inputs bytes[wT ..< wT + T], targets one byte later.
            let windows = (bytes.count - 1 + context - 1) / context
            var w = 0
            while w < windows {
                // Full windows go in batches (within one block of `alignment`); the last, shorter one alone.
                var full = min(batch, (bytes.count - 1) / context - w)
                if let a = alignment, a >= context {
                    let perBlock = a / context
                    full = min(full, perBlock - w % perBlock)
                }
                let rows = full > 0 ? full : 1
                let T = full > 0 ? context : bytes.count - 1 - w * context
                var tokens = [Int32](repeating: 0, count: rows * T), targets = tokens
                for r in 0..<rows {
                    let s = (w + r) * context
                    for t in 0..<T {
                        tokens[r * T + t] = Int32(bytes[s + t])
                        targets[r * T + t] = Int32(bytes[s + t + 1])
                    }
                }
                let out = try model.evaluate(tokens: tokens, targets: targets, batchSize: rows, state: nil, store: store)
                lossSum += out.lossSum
                count += out.count
                scored?(w * context, out.lossSum, out.count)
                w += rows
            }
        case .carry:
            guard model.carriesState else {
                throw FWError.invalidArgument("the \(model.config.mixer.rawValue) mixer has no fast weights to carry: evaluate it truncated")
            }
            var state: LanguageModelState? = nil
            var s = 0
            while s < bytes.count - 1 {
                let T = min(context, bytes.count - 1 - s)
                let tokens = bytes[s..<(s + T)].map { Int32($0) }
                let targets = bytes[(s + 1)...(s + T)].map { Int32($0) }
                let out = try model.evaluate(tokens: tokens, targets: targets, batchSize: 1, state: state, store: store)
                lossSum += out.lossSum
                count += out.count
                scored?(s, out.lossSum, out.count)
                state = out.state
                s += T
            }
        }
        guard lossSum.isFinite else { throw FWError.nonFinite("the evaluation loss is \(lossSum)") }
        return Result(lossSum: lossSum, count: count)
    }
}
