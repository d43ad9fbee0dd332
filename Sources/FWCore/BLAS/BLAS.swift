import CBLAS

/// Typed Swift wrappers over the CBLAS calls the engine uses.
///
/// Every matrix is row-major. Each wrapper checks its dimensions and leading
/// dimensions before calling OpenBLAS (a wrong leading dimension is a memory
/// error inside BLAS, so it must never reach it); a failed check is a
/// programming error and stops with a message naming the call. No file
/// outside `FWCore/BLAS` calls the C API.
public enum BLAS {
    /// Whether an operand is used as stored or transposed.
    public enum Transpose: Sendable {
        case none, transpose
        @usableFromInline var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    /// Which triangle of a triangular matrix is referenced.
    public enum Triangle: Sendable {
        case lower, upper
        @usableFromInline var cblas: CBLAS_UPLO { self == .lower ? CblasLower : CblasUpper }
    }

    /// Whether a triangular matrix has an implicit unit diagonal.
    public enum Diagonal: Sendable {
        case unit, nonUnit
        @usableFromInline var cblas: CBLAS_DIAG { self == .unit ? CblasUnit : CblasNonUnit }
    }

    /// Which side a triangular matrix multiplies from.
    public enum Side: Sendable {
        case left, right
        @usableFromInline var cblas: CBLAS_SIDE { self == .left ? CblasLeft : CblasRight }
    }

    @usableFromInline
    static func require(_ condition: Bool, _ call: StaticString, _ message: @autoclosure () -> String) {
        if !condition { preconditionFailure("\(call): \(message())") }
    }
}
