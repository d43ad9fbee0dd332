// Float64 oracle of the whole associative-retrieval model (Ba et al. 2016,
// section 4.1): embedding -> encoder -> last hidden state -> linear ->
// softmax cross-entropy, composed from the per-layer and per-op references
// (LayersReference, FastWeightsRNNReference, BaselinesReference), reading the
// parameters by name from a flat vector in a ParameterStore's layout.
import Foundation
import FWModels

/// The Float64 loss of a retrieval model, for finite differences.
public struct RetrievalModelReference {
    /// The encoder, with what its reference needs beyond the parameters.
    public enum Encoder {
        case fastWeights(lambda: Double, eta: Double, innerSteps: Int, relu: Bool)
        case irnn
        case lstm
        case associativeLSTM(permutations: [[Int]])
    }

    public var encoder: Encoder
    /// The store's slices (names and offsets into the flat vector).
    public var slices: [ParameterSlice]
    public var embedding: Int, hidden: Int, classes: Int, time: Int

    public init(encoder: Encoder, slices: [ParameterSlice], embedding: Int, hidden: Int, classes: Int, time: Int) {
        self.encoder = encoder
        self.slices = slices
        self.embedding = embedding
        self.hidden = hidden
        self.classes = classes
        self.time = time
    }

    func block(_ p: [Double], _ name: String) -> [Double] {
        guard let s = slices.first(where: { $0.name == name }) else { fatalError("no parameter \(name)") }
        return Array(p[s.range])
    }

    /// Mean cross-entropy of `targets [B]` given `tokens [B, T]` and the flat parameters `p`.
    public func loss(_ p: [Double], tokens: [Int32], targets: [Int32]) -> Double {
        let (B, T, E, N) = (targets.count, time, embedding, hidden)
        let x = LayersReference.embedding(block(p, "embedding.weight"), ids: tokens, dimensions: E)
        let h: [Double]
        switch encoder {
        case let .fastWeights(lambda, eta, S, relu):
            let r = FastWeightsRNNReference(batch: B, time: T, input: E, hidden: N, lambda: lambda, eta: eta,
                                            innerSteps: S, relu: relu)
            h = r.forward(packed: r.pack(x: x, W: block(p, "encoder.W"), C: block(p, "encoder.C"),
                                         b: block(p, "encoder.b"), g: block(p, "encoder.g"),
                                         c: block(p, "encoder.c"))).h
        case .irnn:
            h = BaselinesReference.irnn(x: x, W: block(p, "encoder.W"), U: block(p, "encoder.U"), b: block(p, "encoder.b"),
                                        batch: B, time: T, hidden: N, input: E).h
        case .lstm:
            h = BaselinesReference.lstm(x: x, W: block(p, "encoder.W"), U: block(p, "encoder.U"), b: block(p, "encoder.b"),
                                        batch: B, time: T, hidden: N, input: E)
        case let .associativeLSTM(permutations):
            h = BaselinesReference.associativeLSTM(x: x, W: block(p, "encoder.W"), U: block(p, "encoder.U"),
                                                   b: block(p, "encoder.b"), permutations: permutations,
                                                   batch: B, time: T, hidden: N, input: E).h
        }
        var last: [Double] = []
        for b in 0..<B { last += h[((b * T + T - 1) * N)..<((b * T + T) * N)] }
        let logits = LayersReference.linear(last, weight: block(p, "readout.weight"), bias: block(p, "readout.bias"),
                                            n: B, inputs: N, outputs: classes)
        return LayersReference.softmaxCrossEntropy(logits, targets: targets, classes: classes)
    }
}
