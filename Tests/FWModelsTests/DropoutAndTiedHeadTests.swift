// The two new layers of the language model: inverted dropout (the mask's
// values and rate, the identity outside training, forward and backward with
// a fixed mask against finite differences) and the tied output head
// (forward against the Float64 linear reference, dh, dE and db against
// finite differences; dE accumulates beside the embedding's scatter-add).
import XCTest
import FWTestSupport

final class DropoutAndTiedHeadTests: XCTestCase {
    func testDropoutMaskRateAndIdentity() throws {
        let drop = Dropout(rate: 0.3)
        var rng = SeededRNG(seed: 1)
        let mask = drop.drawMask(count: 20_000, rng: &rng)
        let keep = Float(1) / Float(0.7)
        XCTAssertTrue(mask.allSatisfy { $0 == 0 || $0 == keep })
        let dropped = Double(mask.filter { $0 == 0 }.count) / 20_000
        XCTAssertEqual(dropped, 0.3, accuracy: 0.015)
        XCTAssertEqual(Double(mask.reduce(0, +)) / 20_000, 1, accuracy: 0.03)     // E[mask] = 1

        // Evaluation, and p = 0: the identity, nothing drawn.
        let x = rng.normalTensor([3, 5])
        let before = rng
        let (y, m) = drop.forward(x, training: false, rng: &rng)
        XCTAssertEqual(y, x)
        XCTAssertNil(m)
        let (y0, m0) = Dropout(rate: 0).forward(x, training: true, rng: &rng)
        XCTAssertEqual(y0, x)
        XCTAssertNil(m0)
        XCTAssertEqual(rng, before)
        XCTAssertEqual(try drop.backward(x, mask: nil), x)

        // Training: the mask it returns is the one applied.
        let (yt, mt) = drop.forward(x, training: true, rng: &rng)
        XCTAssertEqual(yt.storage, zip(x.storage, mt!).map { $0 * $1 })
        XCTAssertThrowsError(try drop.forward(x, mask: [1, 0])) {
            XCTAssertEqual("\($0)", "Dropout: mask of 2 entries for a tensor [3, 5] of 15")
        }
    }

    func testDropoutGradientWithAFixedMask() throws {
        var rng = SeededRNG(seed: 2)
        let drop = Dropout(rate: 0.5)
        let x = rng.normalTensor([4, 6]), dy = rng.normalTensor([4, 6])
        let mask = drop.drawMask(count: x.count, rng: &rng)
        let maskD = mask.asDouble
        func f(_ v: [Double]) -> [Double] { zip(v, maskD).map { $0 * $1 } }
        assertSpecClose(try drop.forward(x, mask: mask).storage, f(x.storage.asDouble), "Dropout y")
        let dx = try drop.backward(dy, mask: mask)
        let dyd = dy.storage.asDouble
        let fd = centralDifferences(at: x.storage.asDouble) { dot(dyd, f($0)) }
        assertSpecClose(dx.storage, fd, "Dropout dx")
        // The raw backward accumulates.
        var dinp = [Float](repeating: 0.5, count: x.count)
        dy.withUnsafeBufferPointer { dp in
            mask.withUnsafeBufferPointer { mp in
                Dropout.backward(dinp: &dinp, dout: dp.baseAddress!, mask: mp.baseAddress!, count: x.count)
            }
        }
        assertSpecClose(dinp.map { $0 - 0.5 }, fd, "Dropout raw dx (+0.5)")
    }

    func testTiedHeadForwardAndGradients() throws {
        var rng = SeededRNG(seed: 3)
        var store = ParameterStore()
        let emb = Embedding(7, 4, name: "embedding", store: &store, rng: &rng)
        let head = TiedOutputHead(tiedTo: emb, name: "head", store: &store)
        XCTAssertEqual(store.names, ["embedding.weight", "head.bias"])
        try store.setTensor("head.bias", rng.normalTensor([7]))
        let h = rng.normalTensor([2, 3, 4]), dlogits = rng.normalTensor([2, 3, 7])
        let E = store.tensor(emb.table).storage.asDouble, b = store.tensor(head.bias).storage.asDouble
        let hd = h.storage.asDouble, gd = dlogits.storage.asDouble
        func ref(_ h: [Double], _ E: [Double], _ b: [Double]) -> [Double] {
            LayersReference.linear(h, weight: E, bias: b, n: 6, inputs: 4, outputs: 7)
        }
        let logits = try head(h, store)
        XCTAssertEqual(logits.shape, [2, 3, 7])
        assertSpecClose(logits.storage, ref(hd, E, b), "tied logits")

        // dE from the head and from the embedding's scatter-add land in the same gradient.
        let ids: [Int32] = [3, 0, 3]
        let de = rng.normalTensor([3, 4])
        try emb.backward(de, ids: ids, store: &store)
        let dh = try head.backward(dlogits, input: h, store: &store)
        let ded = de.storage.asDouble
        assertSpecClose(dh.storage, centralDifferences(at: hd) { dot(gd, ref($0, E, b)) }, "tied dh")
        assertSpecClose(store.gradientTensor(emb.table).storage, centralDifferences(at: E) {
            dot(gd, ref(hd, $0, b)) + dot(ded, LayersReference.embedding($0, ids: ids, dimensions: 4))
        }, "tied dE (head + embedding)")
        assertSpecClose(store.gradientTensor(head.bias).storage, centralDifferences(at: b) { dot(gd, ref(hd, E, $0)) }, "tied db")
        XCTAssertThrowsError(try head(Tensor(shape: [2, 5]), store)) {
            XCTAssertEqual($0 as? FWError, .shapeMismatch(tensor: "TiedOutputHead h", expected: "[..., 4]", got: [2, 5]))
        }
    }
}
