import FastWeights
#if canImport(Glibc)
import Glibc
#endif

/// Re-runs `fwp` with a matching `OPENBLAS_CORETYPE` when OpenBLAS chose
/// kernels older than the CPU (Debian's 0.3.21 picks Prescott on some AVX-512
/// CPUs). OpenBLAS reads the variable only when it is loaded, so the process
/// must start again. `FWP_KEEP_BLAS_CORE=1` turns this off.
enum BLASCoreFix {
    /// `OpenBLAS SkylakeX` or, after a re-run, `OpenBLAS SkylakeX (set by fwp;
    /// Debian's OpenBLAS chose Prescott)`: what benchmark and report headers print.
    static var description: String {
        guard let chosen = getenv("FWP_BLAS_CORE_CHOSEN").map({ String(cString: $0) }) else { return "OpenBLAS \(BLASCore.name)" }
        return "OpenBLAS \(BLASCore.name) (OPENBLAS_CORETYPE set by fwp; OpenBLAS itself chose \(chosen))"
    }

    static func reexecIfNeeded() {
        guard let core = BLASCore.coreTypeForReexec() else { return }
        // Guard against a loop if OpenBLAS ignores the variable.
        if getenv("FWP_BLAS_CORE_REEXEC") != nil {
            if isatty(STDERR_FILENO) != 0 { printError("fwp: note: OpenBLAS still runs \(BLASCore.name) kernels after OPENBLAS_CORETYPE=\(core); continuing") }
            return
        }
        // Said on a terminal only: scripts and tests read stderr as one error line.
        // `fwp bench` and `fwp reproduce` name the kernels that run, and `noteForReports` says why.
        if isatty(STDERR_FILENO) != 0 {
            printError("fwp: note: OpenBLAS chose \(BLASCore.name) kernels, older than this CPU; re-running with OPENBLAS_CORETYPE=\(core) (FWP_KEEP_BLAS_CORE=1 keeps them)")
        }
        setenv("FWP_BLAS_CORE_CHOSEN", BLASCore.name, 1)
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("FWP_BLAS_CORE_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returns only on failure: go on with the kernels we have.
        printError("fwp: note: could not re-run (\(String(cString: strerror(errno)))); continuing with \(BLASCore.name)")
    }
}
