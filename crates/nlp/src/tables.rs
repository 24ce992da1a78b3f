//! Memory for the models' big lookup tables.
//!
//! The recogniser and the fast stance model score a token or a mention by adding up rows picked by feature hash
//! from tables of megabytes (the recogniser's two passes: 2 × 2^19 rows × 17 labels of f32, 71 MB; the stance
//! model's hashed weights, 6 MB, and its word table, 8 MB). Nearly every lookup lands on a 4 KiB page of its own,
//! so with ordinary pages it misses the TLB as well as the cache and pays a page-table walk on top of the memory
//! access. With 2 MiB pages the whole table needs a few dozen TLB entries instead of eighteen thousand. Linux
//! backs memory with such transparent huge pages when it is asked to (its default policy is usually `madvise`),
//! so [`table`] asks for the range before writing it: the pages are then allocated huge as they are first
//! touched. Elsewhere, or if the kernel declines, the table is an ordinary `Vec` and only slower.

/// A zeroed table of `len` numbers, backed by huge pages where the kernel allows.
pub(crate) fn table<T: Copy + Default>(len: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise_huge_pages(v.as_ptr() as usize, len * std::mem::size_of::<T>());
    v.resize(len, T::default());
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(addr: usize, bytes: usize) {
    const PAGE: usize = 4096;
    let start = addr.next_multiple_of(PAGE);
    let end = (addr + bytes) / PAGE * PAGE;
    if end > start {
        // SAFETY: [start, end) lies inside the allocation `addr` points to; the advice changes no contents.
        // A refusal (old kernel, THP disabled) leaves ordinary pages, which is only slower.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_addr: usize, _bytes: usize) {}
