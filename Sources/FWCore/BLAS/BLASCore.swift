import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Which OpenBLAS kernels run, and whether they fit the CPU.
///
/// Debian's OpenBLAS 0.3.21 does not recognise every CPU and may fall back to
/// its Prescott (SSE3) kernels on a machine with AVX-512, several times slower.
/// OpenBLAS reads `OPENBLAS_CORETYPE` only when it is loaded, so the fix is to
/// set it before the process starts: `fwp` re-executes itself with it (see
/// `BLASCore.coreTypeForReexec()`); a library user can read `name` and
/// `isOlderThanCPU` and warn.
public enum BLASCore {
    /// `openblas_get_corename()`: the kernel family OpenBLAS chose, e.g. `Zen`, `Haswell`, `Prescott`.
    public static var name: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The CPU's SIMD level: 4 AVX-512F, 3 AVX2+FMA, 2 AVX, 1 SSE3 or older.
    public static var cpuLevel: Int { Int(fw_cpu_simd_level()) }

    /// The SIMD level a kernel family is written for (nil when unknown).
    public static func level(ofCore core: String) -> Int? {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 4
        case "haswell", "zen", "skylake": return 3
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return 2
        case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron",
             "opteron_sse3", "barcelona", "bobcat", "katmai", "coppermine", "northwood",
             "banias", "athlon", "nano": return 1
        default: return nil
        }
    }

    /// The kernel family that matches this CPU's SIMD level.
    public static var recommendedCore: String {
        switch cpuLevel {
        case 4: return "SkylakeX"
        case 3: return fw_cpu_is_amd() != 0 ? "Zen" : "Haswell"
        case 2: return "Sandybridge"
        default: return "Prescott"
        }
    }

    /// True when OpenBLAS chose kernels written for an older instruction set
    /// than the CPU has.
    public static var isOlderThanCPU: Bool {
        guard let chosen = level(ofCore: name) else { return false }
        return chosen < cpuLevel
    }

    /// The `OPENBLAS_CORETYPE` value a program should re-execute itself with,
    /// or nil when nothing is to be done: the kernels fit, the user already set
    /// `OPENBLAS_CORETYPE`, or `FWP_KEEP_BLAS_CORE=1` turns the fix off.
    public static func coreTypeForReexec() -> String? {
        let env = ProcessInfoLite.environment
        if env["OPENBLAS_CORETYPE"] != nil { return nil }
        if let keep = env["FWP_KEEP_BLAS_CORE"], keep != "0", !keep.isEmpty { return nil }
        return isOlderThanCPU ? recommendedCore : nil
    }

    /// Number of threads OpenBLAS uses inside one call.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of threads OpenBLAS uses inside one call.
    /// Prefer `ThreadOwnership`, which is the one place that decides it.
    static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}

/// Environment access without Foundation (FWCore links no Foundation).
enum ProcessInfoLite {
    static var environment: [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                result[String(s[..<eq])] = String(s[s.index(after: eq)...])
            }
            p += 1
        }
        return result
    }
}
