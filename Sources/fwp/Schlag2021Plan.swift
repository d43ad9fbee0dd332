import FastWeights
import Foundation

/// One model of Schlag et al. 2021's synthetic figures.
struct Schlag2021Model: Equatable {
    /// The legend's name, e.g. "DPFP nu=1".
    var name: String
    /// The reader as `SyntheticReader(parsing:)` spells it, e.g. "sum:dpfp:1".
    var model: String
}

/// The experiments of Schlag et al. 2021, section 6.1 (Figures 2 and 3):
/// which models, which S, at which scale.
enum Schlag2021 {
    /// `paper`: d_key = 64 and the paper's S; `small`: d_key = 16 and every S
    /// (and FAVOR+'s m) divided by 4, so every capacity threshold d_dot moves with them.
    enum Scale: String, CaseIterable {
        case small, paper

        var keySize: Int { self == .paper ? 64 : 16 }
        /// Divides the paper's S and FAVOR+'s m.
        var divisor: Int { self == .paper ? 1 : 4 }
    }

    /// The models of the setting's figure at `scale`.
    static func models(setting: Int, scale: Scale) -> [Schlag2021Model] {
        let m = { (paperM: Int) in paperM / scale.divisor }
        if setting == 1 {
            return [
                Schlag2021Model(name: "Linear", model: "sum:elu1"),
                Schlag2021Model(name: "DPFP nu=1", model: "sum:dpfp:1"),
                Schlag2021Model(name: "DPFP nu=2", model: "sum:dpfp:2"),
                Schlag2021Model(name: "DPFP nu=3", model: "sum:dpfp:3"),
                Schlag2021Model(name: "FAVOR+ m=\(m(64))", model: "sum:favor:\(m(64))"),
                Schlag2021Model(name: "FAVOR+ m=\(m(128))", model: "sum:favor:\(m(128))"),
                Schlag2021Model(name: "FAVOR+ m=\(m(512))", model: "sum:favor:\(m(512))"),
                Schlag2021Model(name: "Softmax", model: "softmax"),
            ]
        }
        return [
            Schlag2021Model(name: "Delta, Linear", model: "delta:elu1"),
            Schlag2021Model(name: "Delta, DPFP nu=1", model: "delta:dpfp:1"),
            Schlag2021Model(name: "Delta, DPFP nu=2", model: "delta:dpfp:2"),
            Schlag2021Model(name: "Delta, FAVOR+ m=\(m(64))", model: "delta:favor:\(m(64))"),
            Schlag2021Model(name: "Sum, DPFP nu=1", model: "sum:dpfp:1"),
        ]
    }

    /// The paper's sweep of S (setting 1: 20...600, setting 2: 20...200, by 20), divided by the scale's divisor.
    static func sizes(setting: Int, scale: Scale) -> [Int] {
        let end = setting == 1 ? 600 : 200
        return stride(from: 20, through: end, by: 20).map { $0 / scale.divisor }
    }

    /// --quick (small scale): the models and S that still show the findings.
    /// Setting 1: the sum rule with elu1 (d_dot 16), DPFP nu = 1, 2 (d_dot 32,
    /// 64) and FAVOR+ m = 16 against softmax, S from below to above the
    /// d_dot values. Setting 2: the delta rule against the sum rule, both
    /// DPFP nu = 1 (d_dot 32), S up to just below d_dot.
    static func quickModels(setting: Int) -> [Schlag2021Model] {
        let all = models(setting: setting, scale: .small)
        let keep = setting == 1 ? ["sum:elu1", "sum:dpfp:1", "sum:dpfp:2", "sum:favor:16", "softmax"]
                                : ["delta:dpfp:1", "sum:dpfp:1"]
        return all.filter { keep.contains($0.model) }
    }

    static func quickSizes(setting: Int) -> [Int] {
        setting == 1 ? [5, 10, 20, 30, 40, 60, 80] : [5, 10, 20, 30]
    }

    /// --quick's step limit per run.
    static let quickSteps = 5_000

    /// A display name for a model given on the command line (catalogue name if known).
    static func displayName(_ model: String, setting: Int, scale: Scale) -> String {
        models(setting: setting, scale: scale).first { $0.model == model }?.name ?? model
    }
}
