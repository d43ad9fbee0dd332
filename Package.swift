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
        .target(name: "FWCore", dependencies: ["CBLAS", "CLAPACKE"]),
        .target(name: "FWOps", dependencies: ["FWCore"], exclude: ["SumRule/SumRule.md", "DeltaRule/DeltaRule.md", "GatedDeltaRule/GatedRules.md", "FeatureMaps/FeatureMaps.md", "FastWeightsRNN/FastWeightsRNN.md"]),
        .target(name: "FWModels", dependencies: ["FWCore", "FWOps"], exclude: ["Tasks/AssociativeRetrieval.md", "Tasks/SyntheticRetrieval.md", "Layers/Attention/Attention.md", "Layers/Transformer/Transformer.md", "Layers/DeltaNet/DeltaNet.md", "Data/TextCorpus.md", "LanguageModel/LanguageModel.md"]),
        .target(name: "FastWeights", dependencies: ["FWCore", "FWOps", "FWModels"]),
        .systemLibrary(
            name: "CMPI", path: "Modules/CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "FWDistributed", dependencies: ["CMPI", "FWModels"]),
        .target(name: "FWBench", dependencies: ["FastWeights"], path: "Benchmarks/FWBench"),
        .executableTarget(
            name: "fwp",
            dependencies: [
                "FastWeights", "FWBench", "FWDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "FWTestSupport", dependencies: ["FastWeights"], path: "Tests/FWTestSupport"),
        .testTarget(name: "FWCoreTests", dependencies: ["FWTestSupport"]),
        .testTarget(name: "FWOpsTests", dependencies: ["FWTestSupport"]),
        .testTarget(name: "FWModelsTests", dependencies: ["FWTestSupport"]),
        .testTarget(name: "FWPCommandTests", dependencies: ["FWTestSupport", "fwp"]),
    ]
)
