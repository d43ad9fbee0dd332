import Foundation
import FWTestSupport

// Family 6 of the hostile invocations: the language-model commands
// (`fwp data text`, `fwp train lm`, `fwp eval lm`, `fwp generate`) on text
// folders, options and checkpoints that are wrong in one way each.

extension HostileCases {
    /// A model that trains in well under a second on `GeneratedCorpus`.
    static let tinyLM = ["--layers", "1", "--model-size", "8", "--heads", "2", "--feed-forward", "16", "--context", "8",
                         "--batch", "2", "--eval-every", "2", "--eval-bytes", "64", "--warmup", "1"]

    /// `fwp train lm` of the tiny model on `data`, with `override` replacing or adding options.
    static func trainLM(mixer: String = "delta", steps: String = "2", override: [String: String] = [:],
                        flags: [String] = [], out: String) -> [String] {
        var a = ["train", "lm", "--data", "data", "--mixer", mixer, "--steps", steps]
        var i = 0
        while i < tinyLM.count {
            a += Tiny.option(tinyLM[i], override[tinyLM[i]] ?? tinyLM[i + 1])
            i += 2
        }
        for (k, v) in override.sorted(by: { $0.key < $1.key }) where !tinyLM.contains(k) { a += Tiny.option(k, v) }
        return a + flags + ["--out", out, "--quiet"]
    }

    static let lmOutputs = ["checkpoint.safetensors", "log.csv", "summary.json"]

    /// Writes the generated corpus as `data/`.
    static let writeCorpus: @Sendable (CaseSetup) throws -> Void = { setup in
        try GeneratedCorpus.write(to: setup.path("data"))
    }

    /// Writes the corpus and trains the tiny delta model into `lm/`.
    static let trainedLM: @Sendable (CaseSetup) throws -> Void = { setup in
        try GeneratedCorpus.write(to: setup.path("data"))
        try setup.mustRun(trainLM(out: "lm"))
    }

    static func languageModels(fixed: (FuzzCase) -> Void) {
        // Controls: the valid invocations the cases below start from.
        fixed(FuzzCase(family: "control", kind: "valid data text", detail: "six generated works",
                       args: ["data", "text", "--text", "works", "--out", "d", "--quiet"],
                       expect: .succeed(Completion(files: ["d/train.txt", "d/valid.txt", "d/test.txt", "d/manifest.json"]))) { setup in
            for w in 0..<6 { try setup.write("works/w\(w).txt", GeneratedCorpus.text(30, seed: UInt64(w))) }
        })
        fixed(FuzzCase(family: "control", kind: "valid train lm", detail: "tiny delta model",
                       args: trainLM(out: "lm"), expect: .succeed(Completion(files: lmOutputs.map { "lm/" + $0 })),
                       prepare: writeCorpus))
        fixed(FuzzCase(family: "control", kind: "valid eval lm", detail: "tiny delta model",
                       args: ["eval", "lm", "--checkpoint", "lm", "--json"],
                       expect: .succeed(Completion(files: [], stdout: .jsonObject)), prepare: trainedLM))
        fixed(FuzzCase(family: "control", kind: "valid generate", detail: "tiny delta model, 20 bytes",
                       args: ["generate", "--checkpoint", "lm", "--tokens", "20"],
                       expect: .succeed(Completion(files: [], stdout: .nonEmpty)), prepare: trainedLM))

        dataText(fixed: fixed)
        trainOptions(fixed: fixed)
        evalAndGenerate(fixed: fixed)
        deltaNetMixers(fixed: fixed)
    }

    /// The FLA mixers (`deltanet`, `gated-deltanet`), which carry conv windows
    /// beside their fast weights: a carried run, its carried evaluation and
    /// generation as controls; sizes they cannot take; a carried checkpoint
    /// whose conv window is missing or misshapen, resumed.
    static func deltaNetMixers(fixed: (FuzzCase) -> Void) {
        let family = "lm deltanet"
        for mixer in ["deltanet", "gated-deltanet"] {
            let carried = trainLM(mixer: mixer, flags: ["--carry-state"], out: "lm")
            let trained: @Sendable (CaseSetup) throws -> Void = { setup in
                try GeneratedCorpus.write(to: setup.path("data"))
                try setup.mustRun(carried)
            }
            fixed(FuzzCase(family: "control", kind: "valid train lm --carry-state", detail: "tiny \(mixer) model",
                           args: carried, expect: .succeed(Completion(files: lmOutputs.map { "lm/" + $0 })), prepare: writeCorpus))
            fixed(FuzzCase(family: "control", kind: "valid eval lm --carry-state", detail: "tiny \(mixer) model",
                           args: ["eval", "lm", "--checkpoint", "lm", "--carry-state", "--json"],
                           expect: .succeed(Completion(files: [], stdout: .jsonObject)), prepare: trained))
            fixed(FuzzCase(family: "control", kind: "valid generate", detail: "tiny \(mixer) model, 20 bytes",
                           args: ["generate", "--checkpoint", "lm", "--tokens", "20"],
                           expect: .succeed(Completion(files: [], stdout: .nonEmpty)), prepare: trained))
            for (option, value) in [("--heads", "3"), ("--heads", "0"), ("--model-size", "7"),
                                    ("--model-size", "4611686018427387904"), ("--model-size", "500000000")] {
                fixed(FuzzCase(family: family, kind: "train lm \(option) extreme", detail: "--mixer \(mixer) \(option) \(value)",
                               args: trainLM(mixer: mixer, override: [option: value], out: "o"), prepare: writeCorpus))
            }
            for (detail, rename) in [("conv window 0 removed", false), ("conv window 0 renamed to block 5", true)] {
                fixed(FuzzCase(family: family, kind: "resume a carried checkpoint with a bad conv window",
                               detail: "--mixer \(mixer): \(detail)",
                               args: ["train", "lm", "--resume", "lm/checkpoint.safetensors", "--steps", "4", "--quiet"],
                               mention: .anyOf(["lm/checkpoint.safetensors"]), prepare: { setup in
                                   try trained(setup)
                                   let path = setup.path("lm/checkpoint.safetensors")
                                   var raw = try RawSafeTensors([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
                                   if rename {
                                       raw.edit("extra.state.conv_states.0") { $0.name = "extra.state.conv_states.5" }
                                   } else {
                                       raw.entries.removeAll { $0.name == "extra.state.conv_states.0" }
                                   }
                                   try setup.write("lm/checkpoint.safetensors", raw.encode())
                               }))
            }
        }
    }

    static func dataText(fixed: (FuzzCase) -> Void) {
        let family = "lm data"
        func text(_ detail: String, _ args: [String], mention: Mention = .none, _ prepare: @escaping @Sendable (CaseSetup) throws -> Void) {
            fixed(FuzzCase(family: family, kind: "data text: " + detail, detail: detail, args: ["data", "text"] + args + ["--quiet"],
                           mention: mention, prepare: prepare))
        }
        text("missing --text file", ["--text", "missing.txt", "--out", "d"], mention: .anyOf(["missing.txt"])) { _ in }
        text("empty text file", ["--text", "empty.txt", "--out", "d"], mention: .anyOf(["empty.txt"])) { try $0.write("empty.txt", []) }
        text("non-UTF-8 text file", ["--text", "bad.txt", "--out", "d"], mention: .anyOf(["bad.txt"])) { setup in
            try setup.write("bad.txt", Array("to be or not\n".utf8) + [0xFF, 0xFE, 0xC3] + Array(" to be\n".utf8))
        }
        text("folder without .txt files", ["--text", "none", "--out", "d"], mention: .anyOf(["none"])) { setup in
            try setup.write("none/readme.md", Array("no text here\n".utf8))
        }
        text("--out is a regular file", ["--text", "works", "--out", "afile"], mention: .anyOf(["afile"])) { setup in
            for w in 0..<6 { try setup.write("works/w\(w).txt", GeneratedCorpus.text(30, seed: UInt64(w))) }
            try setup.write("afile", Array("keep\n".utf8))
        }
        text("--out is the --text folder", ["--text", "works", "--out", "works"]) { setup in
            for w in 0..<6 { try setup.write("works/w\(w).txt", GeneratedCorpus.text(30, seed: UInt64(w))) }
        }
        text("--out holds a corpus, no --force", ["--text", "works", "--out", "data"]) { setup in
            for w in 0..<6 { try setup.write("works/w\(w).txt", GeneratedCorpus.text(30, seed: UInt64(w + 10))) }
            try GeneratedCorpus.write(to: setup.path("data"))
        }
    }

    static func trainOptions(fixed: (FuzzCase) -> Void) {
        let family = "lm train"
        let outputs = Completion(files: lmOutputs.map { "o/" + $0 })
        func train(_ kind: String, _ detail: String, _ args: [String], expect: Expect = .reject, mention: Mention = .none,
                   prepare: @escaping @Sendable (CaseSetup) throws -> Void = writeCorpus) {
            fixed(FuzzCase(family: family, kind: kind, detail: detail, args: args, expect: expect, mention: mention, prepare: prepare))
        }
        // The data folder.
        train("data folder missing", "no data/", trainLM(out: "o"), mention: .anyOf(["data"])) { _ in }
        for file in ["train.txt", "valid.txt", "test.txt"] {
            train("data folder without a split", "data/\(file) removed", trainLM(out: "o"), mention: .anyOf([file])) { setup in
                try GeneratedCorpus.write(to: setup.path("data"))
                try FileManager.default.removeItem(atPath: setup.path("data/\(file)"))
            }
            train("empty split", "data/\(file) empty", trainLM(out: "o"), mention: .anyOf([file])) { setup in
                try GeneratedCorpus.write(to: setup.path("data"))
                try setup.write("data/\(file)", [])
            }
        }
        train("data is a regular file", "data is a file", trainLM(out: "o"), mention: .anyOf(["data"])) { setup in
            try setup.write("data", Array("to be\n".utf8))
        }
        train("context longer than the training text", "--context 1000000",
              trainLM(override: ["--context": "1000000"], out: "o"), expect: .rejectOrComplete(outputs))
        // Sizes and rates at and beyond their limits.
        let sizes: [(String, [String])] = [
            ("--context", ["0", "-1", "9223372036854775807"]), ("--batch", ["0", "-1", "4611686018427387904"]),
            ("--layers", ["0", "-1", "1000000000"]), ("--model-size", ["0", "-1", "7", "500000000", "4611686018427387904"]),
            ("--heads", ["0", "-1", "3"]), ("--feed-forward", ["0", "-1", "4611686018427387904"]),
            ("--steps", ["0", "-1"]), ("--eval-every", ["0", "-1"]), ("--eval-bytes", ["0", "1", "-1"]),
            ("--warmup", ["-1"]), ("--favor-features", ["0", "-1", "4611686018427387904"]),
            ("--lr", ["0", "-1", "nan", "inf"]), ("--dropout", ["-0.1", "1", "nan"]), ("--clip", ["-1", "nan"]),
            ("--min-lr-factor", ["-1", "2", "nan"]),
        ]
        for (option, values) in sizes {
            for v in values {
                let mixer = option == "--favor-features" ? "favor-delta" : "delta"
                let args = option == "--steps" ? trainLM(mixer: mixer, steps: v, out: "o")
                                               : trainLM(mixer: mixer, override: [option: v], out: "o")
                train("train lm \(option) extreme", "\(option) \(v)", args)
            }
        }
        // Data-parallel options outside a launcher (MPI starts as a group of one).
        train("--distributed without a launcher, no data folder", "--distributed, data/ missing",
              trainLM(flags: ["--distributed"], out: "o"), mention: .anyOf(["data"])) { _ in }
        train("--distributed without a launcher, context longer than the text", "--distributed --context 1000000",
              trainLM(override: ["--context": "1000000"], flags: ["--distributed"], out: "o"), expect: .rejectOrComplete(outputs))
        train("--single-allreduce without --distributed", "--single-allreduce", trainLM(flags: ["--single-allreduce"], out: "o"),
              mention: .anyOf(["--distributed"]))
        train("unknown mixer", "--mixer attention", trainLM(mixer: "attention", out: "o"), mention: .anyOf(["attention"]))
        for mixer in ["softmax", "favor-sum"] {
            train("--carry-state with a mixer that has no state to carry", "--mixer \(mixer) --carry-state",
                  trainLM(mixer: mixer, flags: ["--carry-state"], out: "o"), mention: .anyOf([mixer]))
        }
        train("--streams with --carry-state", "both flags", trainLM(flags: ["--streams", "--carry-state"], out: "o"),
              mention: .anyOf(["--streams"]))
        // Run configurations.
        for (detail, json) in [("not JSON", "{\"kind\": \"lm\", "), ("an unknown field", "{\"kind\": \"lm\", \"config\": {\"data\": \"data\", \"lerning_rate\": 1}}"),
                               ("another kind", "{\"kind\": \"retrieval\", \"config\": {}}"), ("a number for data", "{\"kind\": \"lm\", \"config\": {\"data\": 3}}"),
                               ("an empty file", "")] {
            train("--config file malformed", "run.json: \(detail)", ["train", "lm", "--config", "run.json", "--out", "o", "--quiet"],
                  mention: .anyOf(["run.json"])) { setup in
                try GeneratedCorpus.write(to: setup.path("data"))
                try setup.write("run.json", Array(json.utf8))
            }
        }
        // A valid file (the tiny model's config, as fwp reproduce writes one), then an option beside it.
        let valid = "{\"kind\": \"lm\", \"config\": {\"data\": \"data\", \"maxSteps\": 2, \"context\": 8, \"batchSize\": 2, "
            + "\"evalEvery\": 2, \"evalBytes\": 64, \"warmupSteps\": 1, \"learningRate\": 0.001, \"minLearningRateFactor\": 0.1, "
            + "\"clipNorm\": 0.25, \"seed\": 1, \"mode\": \"truncated\", \"model\": {\"mixer\": \"delta\", \"layers\": 1, "
            + "\"modelSize\": 8, \"heads\": 2, \"feedForwardSize\": 16}}}"
        let writeValid: @Sendable (CaseSetup) throws -> Void = { setup in
            try GeneratedCorpus.write(to: setup.path("data"))
            try setup.write("run.json", Array(valid.utf8))
        }
        fixed(FuzzCase(family: "control", kind: "valid train lm --config", detail: "the tiny model's run.json",
                       args: ["train", "lm", "--config", "run.json", "--out", "o", "--quiet"], expect: .succeed(outputs),
                       prepare: writeValid))
        train("--config beside a run option", "--config run.json --mixer linear",
              ["train", "lm", "--config", "run.json", "--mixer", "linear", "--out", "o", "--quiet"], prepare: writeValid)
        // A run folder that holds a run.
        train("fresh lm run over a finished run", "second run with --lr 1e30",
              trainLM(override: ["--lr": "1e30"], out: "lm")) { setup in
            try GeneratedCorpus.write(to: setup.path("data"))
            try setup.mustRun(trainLM(out: "lm"))
        }
        train("lm resume with --steps below the saved step", "--resume lm/checkpoint.safetensors --steps 1 (saved: 2)",
              ["train", "lm", "--resume", "lm/checkpoint.safetensors", "--steps", "1", "--quiet"], prepare: trainedLM)
        train("lm resume with a run option", "--resume lm/... --mixer linear",
              ["train", "lm", "--resume", "lm/checkpoint.safetensors", "--mixer", "linear", "--steps", "4", "--quiet"], prepare: trainedLM)
    }

    static func evalAndGenerate(fixed: (FuzzCase) -> Void) {
        let family = "lm eval/generate"
        func lm(_ kind: String, _ detail: String, _ args: [String], mention: Mention = .none,
                prepare: @escaping @Sendable (CaseSetup) throws -> Void = trainedLM) {
            fixed(FuzzCase(family: family, kind: kind, detail: detail, args: args, mention: mention, prepare: prepare))
        }
        let retrievalCheckpoint: @Sendable (CaseSetup) throws -> Void = { setup in
            try setup.mustRun(Tiny.baseRun(out: "r"))
        }
        lm("eval lm of a retrieval checkpoint", "--checkpoint r", ["eval", "lm", "--checkpoint", "r"],
           mention: .anyOf(["r/checkpoint.safetensors", "checkpoint"]), prepare: retrievalCheckpoint)
        lm("generate from a retrieval checkpoint", "--checkpoint r", ["generate", "--checkpoint", "r", "--tokens", "5"],
           mention: .anyOf(["r/checkpoint.safetensors", "checkpoint"]), prepare: retrievalCheckpoint)
        lm("eval lm of a missing checkpoint", "--checkpoint nothing", ["eval", "lm", "--checkpoint", "nothing"],
           mention: .anyOf(["nothing"]), prepare: { _ in })
        let truncated: @Sendable (CaseSetup) throws -> Void = { setup in
            try trainedLM(setup)
            let p = setup.path("lm/checkpoint.safetensors")
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
            try setup.write("cut.safetensors", Array(bytes.prefix(bytes.count / 2)))
        }
        lm("eval lm of a truncated checkpoint", "first half of the file", ["eval", "lm", "--checkpoint", "cut.safetensors"],
           mention: .anyOf(["cut.safetensors"]), prepare: truncated)
        lm("generate from a truncated checkpoint", "first half of the file", ["generate", "--checkpoint", "cut.safetensors"],
           mention: .anyOf(["cut.safetensors"]), prepare: truncated)
        lm("eval lm --split unknown", "--split train2", ["eval", "lm", "--checkpoint", "lm", "--split", "train2"], mention: .anyOf(["train2"]))
        lm("eval lm --data missing", "--data elsewhere", ["eval", "lm", "--checkpoint", "lm", "--data", "elsewhere"], mention: .anyOf(["elsewhere"]))
        for v in ["0", "-1", "9223372036854775807"] {
            lm("eval lm --context extreme", "--context \(v)", ["eval", "lm", "--checkpoint", "lm"] + Tiny.option("--context", v))
        }
        // One byte per window is a legitimate (if poor) evaluation.
        fixed(FuzzCase(family: family, kind: "eval lm --context 1", detail: "--context 1", args: ["eval", "lm", "--checkpoint", "lm", "--context", "1"],
                       expect: .rejectOrComplete(Completion(files: [], stdout: .nonEmpty)), prepare: trainedLM))
        lm("eval lm --carry-state with --truncated", "both flags", ["eval", "lm", "--checkpoint", "lm", "--carry-state", "--truncated"])
        for v in ["0", "-1", "nan", "inf", "-inf"] {
            lm("generate --temperature extreme", "--temperature \(v)", ["generate", "--checkpoint", "lm"] + Tiny.option("--temperature", v))
        }
        for v in ["-1", "9223372036854775807"] {
            lm("generate --top-k extreme", "--top-k \(v)", ["generate", "--checkpoint", "lm", "--tokens", "5"] + Tiny.option("--top-k", v))
        }
        lm("generate --tokens negative", "--tokens -1", ["generate", "--checkpoint", "lm"] + Tiny.option("--tokens", "-1"))
        lm("generate with an empty prompt", "--prompt ''", ["generate", "--checkpoint", "lm", "--prompt", ""])
    }
}
