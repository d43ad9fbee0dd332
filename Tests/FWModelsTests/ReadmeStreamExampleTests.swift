import XCTest
import FWTestSupport

/// The README's streaming-generation example, exactly as printed there.
final class ReadmeStreamExampleTests: XCTestCase {
    func testReadmeStreamingExampleRuns() throws {
        var rng = SeededRNG(seed: 0)
        var store = ParameterStore()
        let config = LanguageModelConfig(mixer: .delta, layers: 2, modelSize: 64, heads: 4, feedForwardSize: 256)
        let model = try CharLanguageModel(config: config, store: &store, rng: &rng)
        // (train it, or read a checkpoint's parameters: Checkpoint.readParameters(path, into: &store))
        var stream = try LanguageModelStream(model: model, store: store)   // a constant-size state
        var sampler = ByteSampler(seed: 1, temperature: 0.8)
        var logits: [Float] = []
        for byte in Array("ROMEO.".utf8) { logits = try stream.feed(byte) }   // logits [256] of the next byte
        var text: [UInt8] = []
        for _ in 0..<100 {
            let next = sampler.sample(logits)
            text.append(next)
            logits = try stream.feed(next)
        }
        let branch = stream         // a copy: generation can fork from here
        stream.reset()              // back to the empty state
        print(String(decoding: text, as: UTF8.self), branch.position)

        XCTAssertEqual(text.count, 100)
        XCTAssertEqual(branch.position, 106)
        XCTAssertEqual(stream.position, 0)
    }
}
