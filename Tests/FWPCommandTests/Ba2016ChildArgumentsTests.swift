import XCTest
import FWTestSupport
@testable import fwp

/// `fwp reproduce ba2016` trains each row in a child `fwp train retrieval`:
/// the child's command line must give back exactly the row's configuration.
final class Ba2016ChildArgumentsTests: XCTestCase {
    func testChildArgumentsRoundTripEveryField() throws {
        var c = RetrievalRunConfig(model: .alstm, hidden: 22)
        c.maxSteps = 1234
        c.pairs = 5
        c.embedding = 17
        c.batchSize = 33
        c.learningRate = 1e-4
        c.learningRateSchedule = "step:500:0.5"
        c.clipNorm = 0.25
        c.seed = 987_654_321_012
        c.evalEvery = 77
        c.patience = 3
        c.trainExamples = 1001
        c.validationExamples = 101
        c.testExamples = 201
        c.evalBatchSize = 50
        c.copies = 6
        var fw = RetrievalRunConfig(model: .fastWeights, hidden: 20)
        fw.learningRate = 2e-4
        fw.algorithm = "attention"
        fw.recurrentInit = "normal"
        for config in [c, fw, RetrievalRunConfig(model: .lstm, hidden: 100)] {
            try config.validate()
            let arguments = ReproduceBa2016Command.childArguments(config)
            XCTAssertEqual(Array(arguments.prefix(2)), ["train", "retrieval"])
            let command = try TrainRetrievalCommand.parse(Array(arguments.dropFirst(2)))
            XCTAssertEqual(try command.newRunConfig(), config, arguments.joined(separator: " "))
        }
    }
}
