import FWCore

extension FastWeightProgrammer {
    /// The chunk length `fwp op` uses for `--algo chunked` without `--chunk` (docs/contract.md section 6).
    public static let defaultChunk = 64

    /// The chunk length of the engine's own choice: fastest at the bench
    /// shape for both rules (T = 1024, d = 32..128; see README, "Benchmarks").
    public static let automaticChunk = 32

    /// The engine's choice of algorithm when the caller leaves it open: the
    /// rule's own (`FastWeightRuleKernel.automaticAlgorithm`), following the
    /// crossover measured on this machine class (2 cores shared with other
    /// work, OpenBLAS Zen kernels) with `fwp bench --rules ... --dims
    /// 16,32,64,128`, B=4 H=8 T=1024, phi identity, l2, best of 3 rounds,
    /// after the fused recurrent step (issue 12 item 3). Forward+backward
    /// tokens/s, recurrent against the best chunked (C = 32 or 64):
    ///
    ///     d      sum            delta          gated-sum      gated-delta
    ///     16     316k / 376k    302k / 203k    291k / 238k    242k / 148k
    ///     32     131k / 180k     99k / 107k    109k / 143k     83k /  71k
    ///     64      45k /  82k     34k /  51k     36k /  74k     28k /  45k
    ///     128     14k /  30k    9.4k /  19k    6.9k /  26k    8.2k /  16k
    ///
    /// (forward only, d = 16: 2.0M / 1.9M, 2.6M / 1.1M, 2.5M / 1.3M,
    /// 2.4M / 0.56M; from d = 32 on chunked is as fast or faster.) So the
    /// delta, gated sum and gated delta rules run recurrently up to 16 x 16
    /// states (`recurrentMaxStateSize`; 1.2x-1.6x faster there, 2x-4x
    /// forward), the sum rule then always chunked (0.84x at 16 x 16; see below), and every
    /// larger state chunked with C = 32. The gated delta rule's 1.17x at 32 x
    /// 32 is within this machine's run-to-run noise (about +-30%) and is left
    /// to chunked. Timings are at T = 1024; short sequences were not re-measured.
    ///
    /// The sum rule moved to `recurrentWhenSmall` too (2026-12-07, AVX2 build,
    /// Zen 4, `fwp bench --rules sum --dims 16,32`, two rounds, calm machine):
    /// recurrent / best chunked at d = 16 forward 2.3M-3.5M / 1.4M-1.5M,
    /// forward+backward 632k-798k / 470k-590k; at d = 32 forward 1.07M-1.31M /
    /// 0.82M-0.99M, forward+backward 240k-293k / 255k-278k (a tie).
    ///
    /// A forward that no backward follows (`backward: false`, inference)
    /// runs recurrently up to `recurrentForwardMaxStateSize` states, for
    /// every rule: there the fused step's forward beats the chunked one.
    public static func automaticAlgorithm(rule: FastWeightRule, T: Int, dphi: Int, dv: Int,
                                          backward: Bool = true) -> FWPAlgorithm {
        if !backward && dphi * dv <= recurrentForwardMaxStateSize { return .recurrent }
        return rule.kernel.automaticAlgorithm(T: T, dphi: dphi, dv: dv)
    }

    /// The largest state run recurrently when no backward follows. In the
    /// AVX2 build, 64 x 64 (2026-12-08, Zen 5 VM, calm, forward at d = 64,
    /// recurrent / chunked(32) tokens/s: `fwp bench --rules delta,gated-delta
    /// --dims 64` three rounds, delta 365k-519k / 259k-331k, gated delta
    /// 340k-486k / 240k-241k; the make bench-peers run: sum 602k / 598k,
    /// gated sum 627k / 470k; one sequence of 65,536 tokens: delta 3.55M /
    /// 1.97M (chunked(64)), sum 4.08M / 2.95M; forward+backward at d = 64
    /// was a tie, so training keeps `recurrentMaxStateSize`). At d = 128
    /// chunked wins (delta 74k / 130k). The portable build (0) makes the
    /// training choice for every forward (its fused step was not measured
    /// against chunked at these sizes).
    #if FWP_WIDE_SIMD
    public static let recurrentForwardMaxStateSize = 64 * 64
    #else
    public static let recurrentForwardMaxStateSize = 0
    #endif

    /// The largest state (dphi x dv entries) that the rules choosing so run
    /// recurrently (see `automaticAlgorithm`). Built with 256-bit vectors
    /// (FWP_WIDE_SIMD), the fused step moves the crossover to 32 x 32:
    /// forward+backward at d = 32, recurrent / best chunked, delta
    /// 182k-190k / 90k-98k, gated delta 125k-161k / 82k-87k, gated sum
    /// 161k-164k / 160k-168k (2026-12-02, same bench, shared machine).
    #if FWP_WIDE_SIMD
    public static let recurrentMaxStateSize = 32 * 32
    #else
    public static let recurrentMaxStateSize = 256
    #endif

    /// Recurrent up to `recurrentMaxStateSize` state entries, else chunked
    /// with `automaticChunk`: the choice of the delta and gated rules.
    public static func recurrentWhenSmall(dphi: Int, dv: Int) -> FWPAlgorithm {
        dphi * dv <= recurrentMaxStateSize ? .recurrent : .chunked(size: automaticChunk)
    }

    /// Floating-point operations of one sequence (forward, or forward + backward).
    public static func flops(rule: FastWeightRule, algorithm: FWPAlgorithm, shape: SequenceShape,
                             backward: Bool) -> Double {
        rule.kernel.flops(algorithm, shape, backward: backward)
    }
}
