// The umbrella module: `import FastWeights` gives the whole engine.
@_exported import FWCore
@_exported import FWOps
@_exported import FWModels
