import FWCore

/// What a checkpoint stores besides the numbers: where training stands.
public struct TrainingState: Sendable, Equatable {
    /// The training step (updates taken) at the time of the checkpoint.
    public var step: Int
    /// The run's generator (e.g. dropout, data augmentation), bit-exact.
    public var rng: SeededRNG
    /// The minibatch sampler's state, if the run uses one.
    public var sampler: MinibatchSampler.State?
    /// A free-form string from the caller, typically the run's configuration as JSON.
    public var config: String

    public init(step: Int, rng: SeededRNG, sampler: MinibatchSampler.State? = nil, config: String = "") {
        self.step = step
        self.rng = rng
        self.sampler = sampler
        self.config = config
    }
}
