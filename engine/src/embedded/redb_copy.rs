//! Copies redb tables from a read transaction (a consistent snapshot, taken while others keep
//! writing) into another database: how the event log and the state store are backed up.

use redb::{ReadTransaction, TableDefinition, TableError, WriteTransaction};

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
