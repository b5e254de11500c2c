//! How much memory the embedded engines may keep as cache.
//!
//! SQLite and redb both cache pages of their files in the process. Left at their defaults
//! (redb: 1 GiB per database; SQLite here: 64 MiB for the writer, 16 MiB per reader and a
//! 256 MiB memory map per connection) the resident set grew with the data written: 350 MiB at
//! 100,000 tasks in `taskstream bench`. Every size is set here, deliberately and in one place,
//! and the binary makes each one configurable.

/// Cache sizes of the embedded store, event log and state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    /// Page cache of the SQLite writer connection, in bytes.
    pub sqlite_writer_bytes: u64,
    /// Page cache of each SQLite read connection, in bytes.
    pub sqlite_reader_bytes: u64,
    /// Read connections the SQLite store keeps open (each with its own page cache).
    pub sqlite_readers: usize,
    /// Bytes of the database file each SQLite connection maps into memory (0: none, every
    /// page is read through the page cache). Mapped pages count in the resident set of the
    /// process once per connection that touched them.
    pub sqlite_mmap_bytes: u64,
    /// Page cache of the event log's redb file, in bytes.
    pub log_bytes: u64,
    /// Page cache of the consumer state's redb file, in bytes.
    pub state_bytes: u64,
}

const MIB: u64 = 1024 * 1024;

impl CacheSizes {
    /// Defaults that fit a small host: the working set of a write (the task, its indexes, the
    /// outbox tail) stays cached, older pages come from the operating system's page cache,
    /// which the kernel can take back under memory pressure, unlike the process's own.
    pub const DEFAULT: Self = Self {
        sqlite_writer_bytes: 8 * MIB,
        sqlite_reader_bytes: 4 * MIB,
        sqlite_readers: 4,
        sqlite_mmap_bytes: 0,
        log_bytes: 8 * MIB,
        state_bytes: 4 * MIB,
    };

    /// Cache of a file being written as a copy (a backup): its pages are written once and
    /// never read back, so a large cache would only hold memory.
    pub const COPY_BYTES: u64 = 4 * MIB;

    /// The most read connections one store may keep.
    pub const MAX_SQLITE_READERS: usize = 64;

    /// Converts a size in bytes to `PRAGMA cache_size`'s negative kibibyte form.
    pub(crate) fn sqlite_cache_pragma(bytes: u64) -> i64 {
        -i64::try_from(bytes / 1024).unwrap_or(i64::MAX)
    }

    /// A redb cache size in bytes, saturating on 32-bit hosts.
    pub(crate) fn redb_bytes(bytes: u64) -> usize {
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }
}

impl Default for CacheSizes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_cache_sizes_are_negative_kibibytes() {
        assert_eq!(CacheSizes::sqlite_cache_pragma(8 * MIB), -8_192);
        assert_eq!(CacheSizes::sqlite_cache_pragma(0), 0);
        assert_eq!(
            CacheSizes::sqlite_cache_pragma(u64::MAX),
            -18_014_398_509_481_983
        );
    }
}
