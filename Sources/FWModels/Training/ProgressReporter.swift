import Foundation
import FWCore

/// Progress of a long run on standard error.
///
/// On a terminal (`isatty(2)`) it rewrites one line in place, at most ten
/// times a second and at the last step; off a terminal (a log file, CI) it
/// prints one line every `every` steps and at the last. A line reads
///
///     step 1200/5000 | loss 1.2345 | acc 56.2% | 41.3 steps/s | 10.6k tok/s | ETA 1m32s
///
/// (accuracy and tokens/s only when given). Rates are averages since the
/// reporter was made (make it just before the loop); a resumed run passes
/// the step it resumes from as `startStep`, so it measures only itself.
public struct ProgressReporter {
    /// The last step of the run.
    public let total: Int
    /// Off a terminal: print every `every` steps.
    public let every: Int
    /// Whether lines are rewritten in place.
    public let isTerminal: Bool
    private let write: (String) -> Void
    private let clock: () -> Double
    private let startTime: Double
    private let startStep: Int
    private var lastDraw = -Double.infinity
    private var tokensSeen = 0
    private var drewInPlace = false

    /// A reporter for a run ending at step `total`, starting its clock now.
    /// - Parameters:
    ///   - startStep: the steps already done before this run (resumed runs).
    ///   - every: off a terminal, the interval between printed lines.
    ///   - isTerminal: defaults to `isatty(STDERR_FILENO)`.
    ///   - write: where text goes (default: standard error); for tests.
    ///   - clock: seconds from any fixed origin (default: a monotonic clock); for tests.
    public init(total: Int, startStep: Int = 0, every: Int = 100, isTerminal: Bool? = nil,
                write: ((String) -> Void)? = nil, clock: (() -> Double)? = nil) {
        self.total = total
        self.startStep = startStep
        self.every = max(1, every)
        self.isTerminal = isTerminal ?? (isatty(STDERR_FILENO) != 0)
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
        let clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
        self.clock = clock
        self.startTime = clock()
    }

    /// Reports that `step` (1-based) has finished with `loss`; `tokens` is the
    /// number of tokens this step processed, if the task has tokens.
    public mutating func update(step: Int, loss: Float, accuracy: Float? = nil, tokens: Int? = nil) {
        let now = clock()
        tokensSeen += tokens ?? 0
        let last = step >= total
        if isTerminal {
            guard last || now - lastDraw >= 0.1 else { return }
            lastDraw = now
            write("\r\u{1B}[2K" + line(step: step, loss: loss, accuracy: accuracy, tokens: tokens != nil, now: now))
            drewInPlace = true
            if last { finish() }
        } else if last || step % every == 0 {
            write(line(step: step, loss: loss, accuracy: accuracy, tokens: tokens != nil, now: now) + "\n")
        }
    }

    /// Ends the in-place line (on a terminal) so that later output starts on a fresh line.
    public mutating func finish() {
        if drewInPlace { write("\n") }
        drewInPlace = false
    }

    private func line(step: Int, loss: Float, accuracy: Float?, tokens: Bool, now: Double) -> String {
        let elapsed = now - startTime
        let done = step - startStep
        let stepsPerSecond = elapsed > 0 ? Double(done) / elapsed : nil
        // Tokens given but no time elapsed yet: NaN prints as "-".
        let tokensPerSecond: Double? = tokens ? (elapsed > 0 ? Double(tokensSeen) / elapsed : .nan) : nil
        let eta = stepsPerSecond.map { Double(max(0, total - step)) / $0 }
        return ProgressReporter.format(step: step, total: total, loss: loss, accuracy: accuracy,
                                       stepsPerSecond: stepsPerSecond, tokensPerSecond: tokensPerSecond, eta: eta)
    }

    /// One progress line (no newline). A nil `stepsPerSecond` or `eta`
    /// prints as `-`; a nil `tokensPerSecond` leaves tokens out (NaN: `-`).
    public static func format(step: Int, total: Int, loss: Float, accuracy: Float?,
                              stepsPerSecond: Double?, tokensPerSecond: Double?, eta: Double?) -> String {
        var parts = ["step \(step)/\(total)", "loss " + String(format: "%.4f", Double(loss))]
        if let accuracy { parts.append("acc " + String(format: "%.1f%%", Double(accuracy) * 100)) }
        parts.append((stepsPerSecond.map { String(format: "%.1f", $0) } ?? "-") + " steps/s")
        if let t = tokensPerSecond { parts.append((t.isFinite ? compact(t) : "-") + " tok/s") }
        parts.append("ETA " + (eta.map(duration) ?? "-"))
        return parts.joined(separator: " | ")
    }

    /// `950`, `10.6k`, `2.31M`.
    static func compact(_ x: Double) -> String {
        if x >= 1e6 { return String(format: "%.2fM", x / 1e6) }
        if x >= 1e3 { return String(format: "%.1fk", x / 1e3) }
        return String(format: "%.0f", x)
    }

    /// `12s`, `3m05s`, `1h02m`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "-" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + String(format: "%02ds", s % 60) }
        return "\(s / 3600)h" + String(format: "%02dm", (s % 3600) / 60)
    }
}
