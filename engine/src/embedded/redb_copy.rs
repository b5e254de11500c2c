//! Copies redb tables from a read transaction (a consistent snapshot, taken while others keep
//! writing) into another database: how the event log and the state store are backed up.

use std::path::Path;

use redb::{
    Database, ReadTransaction, ReadableDatabase, TableDefinition, TableError, WriteTransaction,
};

/// Copies every entry of `table` (none when the source has no such table); returns how many.
pub(crate) fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, redb::Error> {
    let source = match from.open_table(table) {
        Ok(source) => source,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let mut target = to.open_table(table)?;
    let mut copied = 0;
    for entry in redb::ReadableTable::iter(&source)? {
        let (key, value) = entry?;
        target.insert(key.value(), value.value())?;
        copied += 1;
    }
    Ok(copied)
}

/// Writes a snapshot of `db` as of one read transaction to a new redb file at `path` (with the
/// small copy cache): `copy` moves the tables, the copy commits once; returns what `copy`
/// counted.
pub(crate) fn snapshot(
    db: &Database,
    path: &Path,
    copy: impl FnOnce(&ReadTransaction, &WriteTransaction) -> Result<u64, redb::Error>,
) -> Result<u64, redb::Error> {
    let from = db.begin_read()?;
    let target = redb::Builder::new()
        .set_cache_size(crate::CacheSizes::redb_bytes(crate::CacheSizes::COPY_BYTES))
        .create(path)?;
    let to = target.begin_write()?;
    let copied = copy(&from, &to)?;
    to.commit()?;
    Ok(copied)
}
