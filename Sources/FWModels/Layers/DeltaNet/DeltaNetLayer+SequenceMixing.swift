import FWCore

/// A DeltaNet layer mixes the time steps of `[B, T, D]` inputs causally, so
/// it can be the mixer of a `TransformerBlock` / `TransformerModel` (from the
/// zero state; the stateful forward is `forward(_:store:initialState:)`).
extension DeltaNetLayer: SequenceMixingLayer {}
