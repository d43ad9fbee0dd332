// swift-tools-version:6.0
// fastweights: a numerical engine for fast weight programmers on OpenBLAS.
//
// Layers (lower never imports higher):
//   CBLAS, CLAPACKE  system libraries (Debian: libopenblas-dev, liblapacke-dev)
//   FWCore           tensors, .npy, seeded RNG, threads; the only BLAS/LAPACK caller
//   FWOps            feature maps, normalisations, sum/delta rule, fast-weights RNN
//   FWModels         layers, optimisers, training, checkpoints, tasks
//   FastWeights      umbrella that re-exports the three
//   CMPI             system library (Debian: libopenmpi-dev), for FWDistributed only
//   FWDistributed    data-parallel training over MPI (fwp train lm --distributed)
//   FWBench          the benchmark suite (`fwp bench`, `make bench`)
//   fwp              the command-line tool
import PackageDescription

// FWP_TARGET_CPU=haswell (the Makefile sets it when the CPU has AVX2 and FMA)
// compiles the Swift code for that CPU: 256-bit vectors, about twice the speed
// of the SIMD Swift kernels (the fused recurrent step, the model layer's
// element-wise passes). Numerics are unchanged: Swift contracts no a*b+c into
// an FMA. Unset or empty: the portable x86-64 baseline (SSE2), and no unsafe
// flags, so the package stays usable as a versioned dependency. Set it only
// to a CPU with 256-bit vectors: it also defines FWP_WIDE_SIMD, which lets the
// fused recurrent step take larger states from OpenBLAS.
let targetCPU = Context.environment["FWP_TARGET_CPU"].flatMap { $0.isEmpty ? nil : $0 }
let cpu: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0]), .define("FWP_WIDE_SIMD")] } ?? []

let package = Package(
    name: "fastweights",
    products: [
        .library(name: "FastWeights", targets: ["FastWeights"]),
        .library(name: "FastWeightsDistributed", targets: ["FWDistributed"]),
        .executable(name: "fwp", targets: ["fwp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Modules/CBLAS",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CLAPACKE", path: "Modules/CLAPACKE",
            providers: [.apt(["liblapacke-dev"])]),
        .target(name: "FWCore", dependencies: ["CBLAS", "CLAPACKE"], swiftSettings: cpu),
        .target(name: "FWOps", dependencies: ["FWCore"], exclude: ["SumRule/SumRule.md", "DeltaRule/DeltaRule.md", "GatedDeltaRule/GatedRules.md", "FeatureMaps/FeatureMaps.md", "FastWeightsRNN/FastWeightsRNN.md"], swiftSettings: cpu),
        .target(name: "FWModels", dependencies: ["FWCore", "FWOps"], exclude: ["Tasks/AssociativeRetrieval.md", "Tasks/SyntheticRetrieval.md", "Layers/Attention/Attention.md", "Layers/Transformer/Transformer.md", "Layers/DeltaNet/DeltaNet.md", "Data/TextCorpus.md", "LanguageModel/LanguageModel.md"], swiftSettings: cpu),
        .target(name: "FastWeights", dependencies: ["FWCore", "FWOps", "FWModels"], swiftSettings: cpu),
        .systemLibrary(
            name: "CMPI", path: "Modules/CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "FWDistributed", dependencies: ["CMPI", "FWModels"], swiftSettings: cpu),
        .target(name: "FWBench", dependencies: ["FastWeights"], path: "Benchmarks/FWBench", swiftSettings: cpu),
        .executableTarget(
            name: "fwp",
            dependencies: [
                "FastWeights", "FWBench", "FWDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpu),
        .target(name: "FWTestSupport", dependencies: ["FastWeights"], path: "Tests/FWTestSupport", swiftSettings: cpu),
        .testTarget(name: "FWCoreTests", dependencies: ["FWTestSupport"], swiftSettings: cpu),
        .testTarget(name: "FWOpsTests", dependencies: ["FWTestSupport"], swiftSettings: cpu),
        .testTarget(name: "FWModelsTests", dependencies: ["FWTestSupport"], swiftSettings: cpu),
        .testTarget(name: "FWPCommandTests", dependencies: ["FWTestSupport", "fwp"], swiftSettings: cpu),
    ]
)
