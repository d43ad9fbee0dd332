import FWCore

/// Both attention layers mix time steps of `[B, T, D]` inputs, so either
/// can be the mixer of a `TransformerBlock` / `TransformerModel`.
extension FastWeightLayer: SequenceMixingLayer {}
extension SoftmaxAttentionLayer: SequenceMixingLayer {}
