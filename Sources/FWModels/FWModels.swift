// FWModels: the model layer of fastweights: everything a model needs to be
// trained, shared by every model.
//
//   Parameters/   ParameterStore (one flat [Float] of values, a twin of
//                 gradients, named slices), ParameterInitializer
//   Layers/       Linear, Embedding, LayerNorm, ActivationFunction: llm.c-style
//                 forward/backward pairs on raw row-major pointers, gradients
//                 accumulating (`+=`), plus Tensor-level conveniences
//   Layers/Attention/    FastWeightLayer (multi-head fast weight programmer on
//                 the batched op), SoftmaxAttentionLayer (causal, sgemm)
//   Layers/Transformer/  SequenceMixingLayer (what a block's mixer is),
//                 FeedForward, PositionalEncoding, ValueEmbedding,
//                 TransformerBlock, TransformerModel
//   Losses/       SoftmaxCrossEntropy, SquaredErrorLoss
//   Optimizers/   Adam (m and v flat, laid out like the store), gradient
//                 clipping by global norm, LearningRateSchedule
//   Checkpoints/  SafeTensors (the file format), Checkpoint (parameters, Adam's
//                 moments, step, RNG and sampler state, config)
//   Training/     MinibatchSampler, FiniteCheck, ProgressReporter, RunLog,
//                 RetrievalTrainer (resumable bit-exactly from a checkpoint),
//                 SyntheticTrainer (Schlag et al. 2021's synthetic runs)
//   Encoders/     RecurrentEncoder ([B, T, Din] -> [B, T, N], parameters in a
//                 store): FastWeightsEncoder, IRNNEncoder, LSTMEncoder,
//                 AssociativeLSTMEncoder
//   LanguageModel/ CharLanguageModel (bytes -> next-byte logits, any mixer,
//                 carried fast weights, dropout, tied head), LanguageModelStream
//                 (byte-by-byte generation), LanguageModel.md (what follows lmtool-fwp)
//   Models/       RetrievalModel (embedding -> encoder -> last state -> softmax),
//                 SyntheticRetrievalModel (one layer: softmax / sum / delta read)
//   Experiments/  RetrievalRunConfig (one run of Ba et al. 2016, section 4.1),
//                 SyntheticRunConfig (one run of Schlag et al. 2021, section 6.1)
//   Tasks/        AssociativeRetrieval, SyntheticRetrieval (+ .md: our choices)
//
// Conventions (STYLE.md, after llm.c): forward(out..., inp..., weights...,
// sizes...) and backward(dinp..., dweights..., dout, inp..., weights...,
// saved statistics..., sizes...) side by side in one file per layer; every
// `d`-prefixed output *accumulates*; `ParameterStore.zeroGradients()` is the
// one reset. Matrices are row-major, `n` rows of a fixed width.
import FWCore
