#if canImport(Glibc)
import Glibc
#endif

/// The sizes the engine accepts, checked before anything is allocated.
///
/// Every size a job derives from its inputs (a tensor's extents, a model's
/// width, a split's length) is checked here first, so that an absurd value
/// is one clear `FWError.invalidArgument` instead of an arithmetic-overflow
/// trap or an allocation abort:
///
/// * every extent of an op's tensor is at most `maxExtent` (OpenBLAS takes
///   32-bit sizes and leading dimensions);
/// * every count the job multiplies out is formed with checked arithmetic
///   (`product`);
/// * the job's memory estimate (`MemoryBudget`) fits the machine.
public enum SizeLimits {
    /// The largest extent of one axis: 2^31 - 1, OpenBLAS's `Int32` sizes.
    public static let maxExtent = Int(Int32.max)

    /// Throws unless every extent of `shape` is in `0...maxExtent`;
    /// `name` is the tensor in the message.
    public static func checkExtents(_ name: String, _ shape: [Int]) throws {
        if let bad = shape.first(where: { $0 < 0 || $0 > maxExtent }) {
            throw FWError.invalidArgument(
                "\(name): extent \(bad) in shape \(describeShape(shape)) is outside 0...\(maxExtent) (the largest size OpenBLAS takes)")
        }
    }

    /// `factors[0] * factors[1] * ...`, or `FWError.invalidArgument` saying
    /// that `what` is too large when the product overflows `Int`.
    public static func product(_ factors: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var p = 1
        for f in factors {
            let (r, overflow) = p.multipliedReportingOverflow(by: f)
            if overflow { throw FWError.invalidArgument("\(what()) is too large: \(factors.map(String.init).joined(separator: " x ")) overflows") }
            p = r
        }
        return p
    }

    /// Throws unless `value` is in `range`; `option` names it (e.g. `--hidden`).
    public static func check(_ value: Int, in range: ClosedRange<Int>, _ option: String) throws {
        guard range.contains(value) else {
            throw FWError.invalidArgument("\(option) must be \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }
}

/// The machine's memory, and the check that a job's estimate fits in it.
///
/// Estimates are in `Double` bytes, so that forming them never overflows;
/// once an estimate is below the machine's memory every `Int` count it was
/// built from is far from overflowing too.
public enum MemoryBudget {
    /// Physical memory in bytes (`sysconf`); `FWP_MEMORY_LIMIT_BYTES`
    /// overrides it (e.g. to test the refusal on a small limit).
    public static let physicalBytes: Double = {
        if let s = ProcessInfoLite.environment["FWP_MEMORY_LIMIT_BYTES"], let n = Double(s), n.isFinite, n > 0 { return n }
        let pages = Double(sysconf(Int32(_SC_PHYS_PAGES))), size = Double(sysconf(Int32(_SC_PAGESIZE)))
        return pages > 0 && size > 0 ? pages * size : 16 * 1024 * 1024 * 1024
    }()

    /// Bytes of `count` Float32 numbers.
    public static func floats(_ count: Double) -> Double { 4 * count }

    /// Throws `FWError.invalidArgument` when `bytes` (an estimate of what
    /// `what` would allocate) is more than the machine's memory, saying how
    /// much it would need.
    public static func check(_ bytes: Double, _ what: @autoclosure () -> String) throws {
        guard bytes.isFinite, bytes <= physicalBytes else {
            throw FWError.invalidArgument(
                "\(what()) would need \(describe(bytes)) of memory; this machine has \(describe(physicalBytes))")
        }
    }

    /// `12.3 GiB`, `512.0 MiB`, or `> 10^18 bytes` for absurd values.
    public static func describe(_ bytes: Double) -> String {
        if !bytes.isFinite || bytes >= 1e18 { return "more than 10^18 bytes" }
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = bytes, unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit == 0 { return "\(Int(value)) bytes" }
        let tenths = (value * 10).rounded() / 10
        return "\(tenths) \(units[unit])"
    }
}
