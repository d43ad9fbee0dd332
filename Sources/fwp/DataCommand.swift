import ArgumentParser
import FastWeights
import Foundation

/// `fwp data ...`: build a character-level language-modelling corpus
/// folder (train.txt, valid.txt, test.txt, manifest.json; see
/// Sources/FWModels/Data/TextCorpus.md).
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Build a byte-level text corpus folder: train.txt, valid.txt, test.txt, manifest.json.",
        subcommands: [DataShakespeareCommand.self, DataTextCommand.self])
}
