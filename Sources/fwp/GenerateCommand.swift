import ArgumentParser
import FastWeights
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `fwp generate`: text from a language-model checkpoint, one byte at a time.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a language-model checkpoint, byte by byte, streamed to stdout.",
        discussion: """
            Feeds the prompt, then samples --tokens bytes, writing the prompt and each byte as it \
            is produced. Fast weight models step with their constant-size state (no history kept); \
            softmax attention keeps a key/value cache. The same --seed gives the same bytes.
            """)

    @Option(help: "A checkpoint written by fwp train lm, or its run folder.") var checkpoint: String
    @Option(help: "The text to start from (at least one byte). Default: a newline.") var prompt: String?
    @Option(help: "Bytes to generate.") var tokens: Int = 500
    @Option(help: "The sampling seed.") var seed: UInt64 = 1
    @Option(help: "Softmax temperature (> 0).") var temperature: Float = 1
    @Option(name: .customLong("top-k"), help: "Sample among the k most likely bytes (0: all).") var topK: Int = 0
    @Flag(help: "Use the current parameters instead of the best ones.") var current = false

    func run() throws {
        try SizeLimits.check(tokens, in: 0...(1 << 40), "--tokens")
        guard temperature.isFinite && temperature > 0 else { throw FWError.invalidArgument("--temperature must be positive, got \(temperature)") }
        try SizeLimits.check(topK, in: 0...256, "--top-k")
        let promptBytes = Array((prompt ?? "\n").utf8)
        guard !promptBytes.isEmpty else { throw FWError.invalidArgument("--prompt needs at least one byte") }
        let loaded = try LoadedLanguageModel(checkpoint, current: current)
        var stream = try LanguageModelStream(model: loaded.model, store: loaded.store)
        var sampler = ByteSampler(seed: seed, temperature: temperature, topK: topK)
        signal(SIGPIPE, SIG_IGN)   // a reader that goes away ends the command in write(_:), quietly
        Self.write(promptBytes)
        var logits: [Float] = []
        for b in promptBytes { logits = try stream.feed(b) }
        for _ in 0..<tokens {
            let next = sampler.sample(logits)
            Self.write([next])
            logits = try stream.feed(next)
        }
        Self.write(Array("\n".utf8))
    }

    /// Writes bytes to stdout as they come; a reader that has gone away
    /// (`fwp generate | head`) ends the command quietly, not with SIGPIPE.
    static func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                Glibc.exit(0)   // EPIPE: nobody reads any more
            }
            offset += n
        }
    }
}
