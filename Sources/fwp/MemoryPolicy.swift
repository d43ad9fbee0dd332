/// glibc's `mallopt` (declared in malloc.h, which Swift's Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// The tool's malloc policy: keep freed blocks of up to 32 MiB in the heap
/// instead of returning them to the kernel, so that the batched ops' large
/// per-call buffers are not faulted in page by page on every call (measured:
/// the delta rule forward at the bench shape spent a quarter of its time in
/// first-touch page faults). Library users can set the same with `mallopt`
/// or glibc's `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`.
enum MemoryPolicy {
    static func apply() {
        _ = glibcMallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
    }
}
