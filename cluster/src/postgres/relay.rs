//! Claiming outbox rows for one of several relaying replicas (`FOR UPDATE SKIP LOCKED`).

use deadpool_postgres::GenericClient;
use taskstream_engine::ports::OutboxRecord;

use super::error::PgError;
use super::rows::record_from_row;

/// What one [`super::PostgresStore::relay_batch`] round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayRound {
    /// Events handed to `publish` and, as it succeeded, deleted from the outbox.
    pub published: usize,
    /// Events claimed but held back because an older event of the same key is being relayed by
    /// another replica right now (per-key order); a later round takes them up, so a caller seeing
    /// only deferred events should retry shortly instead of waiting for the next commit.
    pub deferred: usize,
}

/// Locks up to `limit` of the oldest outbox rows no other transaction holds, and returns those
/// that may go now (in `seq` order) with the count of those held back: a row waits while an
/// older row of its key is still in the outbox outside this claim (another replica is relaying
/// it), so events of one key are never published out of order.
pub(crate) async fn claim(
    client: &impl GenericClient,
    limit: usize,
) -> Result<(Vec<OutboxRecord>, usize), PgError> {
    let statement = client
        .prepare_cached(
            "WITH claimed AS MATERIALIZED (
                 SELECT seq FROM outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
             )
             SELECT o.seq, o.topic, o.partition_key, o.envelope,
                    EXISTS (
                        SELECT 1 FROM outbox older
                        WHERE older.partition_key = o.partition_key AND older.seq < o.seq
                          AND older.seq NOT IN (SELECT seq FROM claimed)
                    ) AS blocked
             FROM outbox o JOIN claimed c ON c.seq = o.seq
             ORDER BY o.seq",
        )
        .await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client.query(&statement, &[&limit]).await?;
    let mut ready = Vec::with_capacity(rows.len());
    let mut deferred = 0;
    for row in &rows {
        if row.try_get::<_, bool>(4)? {
            deferred += 1;
        } else {
            ready.push(record_from_row(row)?);
        }
    }
    Ok((ready, deferred))
}

/// Deletes exactly the published rows (not a range: other replicas hold the rows in between).
pub(crate) async fn delete(client: &impl GenericClient, seqs: &[i64]) -> Result<u64, PgError> {
    let statement = client
        .prepare_cached("DELETE FROM outbox WHERE seq = ANY($1)")
        .await?;
    Ok(client.execute(&statement, &[&seqs]).await?)
}
