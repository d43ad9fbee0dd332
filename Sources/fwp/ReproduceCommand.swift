import ArgumentParser
struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reproduce", abstract: "Reproduce a paper's table.")
}
