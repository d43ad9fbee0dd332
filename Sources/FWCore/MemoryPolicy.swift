/// glibc's `mallopt` (declared in malloc.h, which Swift's Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// The engine's malloc policy for a process that calls the ops many times:
/// every block comes from the heap (no `mmap` per block, `M_MMAP_MAX` = 0)
/// and freed memory is never handed back to the kernel (`M_TRIM_THRESHOLD`
/// at its maximum), so the batched ops' large per-call buffers are reused
/// instead of being faulted in page by page on every call. Measured on one
/// sequence of 65,536 tokens at d = 128 (32 MiB buffers, which the earlier
/// 32 MiB `M_MMAP_THRESHOLD` still mapped anew each call): the chunked delta
/// rule forward+backward 1.4-1.5x faster on 2 threads.
///
/// `fwp` applies it at start; a program linking the library calls
/// `MemoryPolicy.keepFreedMemory()` once for the same (or sets glibc's
/// `MALLOC_MMAP_MAX_=0` and `MALLOC_TRIM_THRESHOLD_`). It changes the whole
/// process's allocator: memory freed is kept for reuse, not returned.
public enum MemoryPolicy {
    /// Keeps every freed block for reuse (glibc only; a no-op elsewhere).
    public static func keepFreedMemory() {
        #if canImport(Glibc)
        _ = glibcMallopt(-4, 0)           // M_MMAP_MAX
        _ = glibcMallopt(-1, Int32.max)   // M_TRIM_THRESHOLD
        #endif
    }
}
