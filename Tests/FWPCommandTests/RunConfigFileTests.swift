import XCTest
import Foundation
import FWTestSupport
@testable import fwp

/// Run configs as files: a child of `fwp reproduce` reads exactly the row's
/// configuration (every field, also those without an option of their own),
/// the options map onto the fields in one place, and a bad file is one error
/// naming it.
final class RunConfigFileTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "runconfig-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Every field set away from its default.
    func everyFieldRetrieval() -> RetrievalRunConfig {
        var c = RetrievalRunConfig(model: .fastWeights, hidden: 22)
        c.maxSteps = 1234; c.pairs = 5; c.embedding = 17; c.batchSize = 33; c.learningRate = 1e-4
        c.learningRateSchedule = "step:500:0.5"; c.clipNorm = 0.25; c.seed = 987_654_321_012; c.evalEvery = 77
        c.patience = 3; c.trainExamples = 1001; c.validationExamples = 101; c.testExamples = 201; c.evalBatchSize = 50
        c.copies = 6; c.lambda = 0.9; c.eta = 0.25; c.innerSteps = 2; c.activation = .tanh
        c.algorithm = .attention; c.recurrentInit = "normal"
        return c
    }

    func testRetrievalChildReadsEveryField() throws {
        for config in [everyFieldRetrieval(), RetrievalRunConfig(model: .lstm, hidden: 100)] {
            try config.validate()
            let path = dir + "/row.json"
            let arguments = try ReproduceBa2016Command.childArguments(config, configPath: path)
            XCTAssertEqual(arguments, ["train", "retrieval", "--config", path])
            let command = try TrainRetrievalCommand.parse(Array(arguments.dropFirst(2)))
            XCTAssertEqual(try command.newRunConfig(), config)
        }
    }

    func testSyntheticChildReadsEveryField() throws {
        var c = SyntheticRunConfig(setting: 2, size: 7, model: "delta:dpfp:2")
        c.keySize = 8; c.embedding = 11; c.seed = 42; c.batchSize = 5; c.learningRate = 3e-3; c.maxSteps = 99
        c.evalEvery = 9; c.evalSequences = 4; c.maxQueries = 6; c.targetLoss = 0.01; c.patience = 2
        c.favorEvaluation = .fixed; c.freezeEmbedding = true
        try c.validate()
        let arguments = try ReproduceSchlag2021Command.parse(["--setting", "2"]).childArguments(c, dir: dir + "/row")
        XCTAssertEqual(Array(arguments.prefix(4)), ["train", "synthetic", "--config", dir + "/row.json"])
        let command = try TrainSyntheticCommand.parse(Array(arguments.dropFirst(2)))
        XCTAssertEqual(try command.runConfig(), c)
    }

    /// Each option of `fwp train retrieval` lands in its field (the one mapping).
    func testEveryRetrievalOptionMapsToItsField() throws {
        let c = everyFieldRetrieval()
        let command = try TrainRetrievalCommand.parse([
            "--model", "fast-weights", "--hidden", "22", "--steps", "1234", "--pairs", "5", "--embedding", "17",
            "--batch", "33", "--lr", "0.0001", "--lr-schedule", "step:500:0.5", "--clip", "0.25",
            "--seed", "987654321012", "--eval-every", "77", "--patience", "3", "--train-examples", "1001",
            "--validation-examples", "101", "--test-examples", "201", "--eval-batch", "50", "--copies", "6",
            "--lambda", "0.9", "--eta", "0.25", "--inner-steps", "2", "--activation", "tanh",
            "--algorithm", "attention", "--recurrent-init", "normal"])
        XCTAssertEqual(try command.newRunConfig(), c)
    }

    func testBadConfigFilesAreOneErrorNamingTheFile() throws {
        let good = RunConfigFile.encode(everyFieldRetrieval())
        func expect(_ bytes: [UInt8], _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try RunConfigFile.decode(RetrievalRunConfig.self, from: bytes, name: "run.json"), line: line) { error in
                XCTAssertTrue("\(error)".hasPrefix("run.json: "), "\(error)", line: line)
                XCTAssertTrue("\(error)".contains(needle), "\(error)", line: line)
            }
        }
        XCTAssertEqual(try RunConfigFile.decode(RetrievalRunConfig.self, from: good, name: "run.json"), everyFieldRetrieval())
        let text = String(decoding: good, as: UTF8.self)
        expect(Array("not json".utf8), "not a run config")
        expect(Array(text.replacingOccurrences(of: "\"retrieval\"", with: "\"synthetic\"").utf8), "is a synthetic run config, not a retrieval one")
        expect(Array(text.replacingOccurrences(of: "\"hidden\"", with: "\"hiden\"").utf8), "missing 'hidden'")
        expect(Array(text.replacingOccurrences(of: "\"tanh\"", with: "\"sigmoid\"").utf8), "bad value at 'activation'")
        expect(Array(text.replacingOccurrences(of: "\"copies\"", with: "\"copies\" : 6, \"coppies\"").utf8), "unknown field 'coppies'")
        expect(Array(text.replacingOccurrences(of: "\"hidden\" : 22", with: "\"hidden\" : 4611686018427387904").utf8), "--hidden must be 1...")
    }
}
