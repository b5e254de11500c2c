//! Fluvio record batches: building them from records, checking the ones producers send, reading
//! their headers without a full decode, and decoding them back into records.
//!
//! The log stores each batch exactly as Fluvio puts it on the wire (fluvio-protocol's `Batch`
//! encoding), so a later Fluvio fetch can serve the stored bytes without re-encoding them.

use std::io::Cursor;

use fluvio_protocol::record::{
    BATCH_FILE_HEADER_SIZE, BATCH_PREAMBLE_SIZE, Batch, MemoryRecords, RawRecords, Record,
    RecordData,
};
use fluvio_protocol::{Decoder, Encoder};

use super::{LogError, NewRecord};

/// Byte positions of the header fields we read directly (see fluvio-protocol `record/batch.rs`).
const BATCH_LEN_AT: usize = 8;
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const FIRST_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
/// Attribute bits: compression codec and "schema id present".
const COMPRESSION_MASK: i16 = 0x07;
const SCHEMA_PRESENT: i16 = 0x10;
/// Highest compression codec Fluvio defines (zstd).
const MAX_COMPRESSION: i16 = 4;
/// The only batch format version Fluvio writes.
const MAGIC: i8 = 2;

/// What the log needs to know about a stored batch, read from its header without decoding records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchInfo {
    pub base_offset: u64,
    /// Number of records (`last_offset_delta + 1`).
    pub records: u64,
    /// Largest record timestamp, or negative when the producer set none.
    pub max_timestamp: i64,
    pub compressed: bool,
}

impl BatchInfo {
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.records.saturating_sub(1)
    }
}

fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    let field: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(i64::from_be_bytes(field))
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let field: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(field))
}

fn read_i16(bytes: &[u8], at: usize) -> Option<i16> {
    let field: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
    Some(i16::from_be_bytes(field))
}

/// Reads the header of a stored (already checked) batch.
pub(crate) fn info(bytes: &[u8]) -> Result<BatchInfo, LogError> {
    let corrupt = || LogError::Storage("a stored batch has a truncated header".to_owned());
    let base = read_i64(bytes, 0).ok_or_else(corrupt)?;
    let delta = read_i32(bytes, LAST_OFFSET_DELTA_AT).ok_or_else(corrupt)?;
    let attributes = read_i16(bytes, ATTRIBUTES_AT).ok_or_else(corrupt)?;
    let max_timestamp = read_i64(bytes, MAX_TIMESTAMP_AT).ok_or_else(corrupt)?;
    Ok(BatchInfo {
        base_offset: u64::try_from(base).map_err(|_| corrupt())?,
        records: u64::try_from(i64::from(delta) + 1).map_err(|_| corrupt())?,
        max_timestamp,
        compressed: attributes & COMPRESSION_MASK != 0,
    })
}

/// Writes the log-assigned base offset into bytes 0..8. The CRC covers only `attributes..end`,
/// so the rest of the batch stays valid and byte-for-byte what the producer sent.
pub(crate) fn set_base_offset(bytes: &mut [u8], base_offset: u64) -> Result<(), LogError> {
    let base = i64::try_from(base_offset)
        .map_err(|_| LogError::Storage("offset space exhausted".to_owned()))?;
    match bytes.get_mut(0..8) {
        Some(field) => {
            field.copy_from_slice(&base.to_be_bytes());
            Ok(())
        }
        None => Err(LogError::Malformed(
            "shorter than a batch header".to_owned(),
        )),
    }
}

/// Encodes one batch (base offset 0) of records with fluvio-protocol's own encoder, exactly as
/// the Fluvio producer would: timestamps relative to the first record, offsets relative to 0.
pub(crate) fn encode(records: &[&NewRecord]) -> Result<(Vec<u8>, u64), LogError> {
    let Some(first) = records.first() else {
        return Err(LogError::Empty);
    };
    let first_timestamp = first.timestamp_ms;
    let max_timestamp = records
        .iter()
        .map(|record| record.timestamp_ms)
        .max()
        .unwrap_or(first_timestamp);
    let mut memory: Vec<Record> = records
        .iter()
        .map(|record| {
            let mut encoded = Record {
                key: record.key.clone().map(RecordData::from),
                value: RecordData::from(record.value.clone()),
                ..Record::default()
            };
            encoded
                .preamble
                .set_timestamp_delta(record.timestamp_ms.saturating_sub(first_timestamp));
            encoded
        })
        .collect();
    let mut batch = Batch::<MemoryRecords>::new();
    batch.add_records(&mut memory);
    batch.header.first_timestamp = first_timestamp;
    batch.header.max_time_stamp = max_timestamp;
    let mut out = Vec::with_capacity(batch.write_size(0));
    batch
        .encode(&mut out, 0)
        .map_err(|error| LogError::Malformed(format!("cannot encode batch: {error}")))?;
    Ok((out, records.len() as u64))
}

/// Checks a batch as a producer sent it and returns its record count. Rejects anything that is
/// not exactly one well-formed, non-empty batch, so everything stored can be served and decoded.
pub(crate) fn check_raw(bytes: &[u8]) -> Result<u64, LogError> {
    let malformed = |why: &str| LogError::Malformed(why.to_owned());
    if bytes.len() < BATCH_FILE_HEADER_SIZE {
        return Err(malformed("shorter than a batch header"));
    }
    let batch_len = read_i32(bytes, BATCH_LEN_AT).ok_or_else(|| malformed("no batch length"))?;
    if usize::try_from(batch_len).ok() != Some(bytes.len() - BATCH_PREAMBLE_SIZE) {
        return Err(malformed(
            "batch length does not match the bytes received (exactly one batch expected)",
        ));
    }
    if bytes.get(MAGIC_AT).map(|magic| *magic as i8) != Some(MAGIC) {
        return Err(malformed("unsupported batch magic (expected 2)"));
    }
    let attributes = read_i16(bytes, ATTRIBUTES_AT).ok_or_else(|| malformed("no attributes"))?;
    let compression = attributes & COMPRESSION_MASK;
    if compression > MAX_COMPRESSION {
        return Err(malformed("unknown compression codec"));
    }
    let delta = read_i32(bytes, LAST_OFFSET_DELTA_AT).ok_or_else(|| malformed("no offsets"))?;
    if delta < 0 {
        return Err(LogError::Empty);
    }
    if read_i64(bytes, FIRST_TIMESTAMP_AT).is_none() {
        return Err(malformed("no timestamps"));
    }
    let schema_len = if attributes & SCHEMA_PRESENT != 0 {
        4
    } else {
        0
    };
    if bytes.len() < BATCH_FILE_HEADER_SIZE + schema_len {
        return Err(malformed("schema id missing"));
    }
    let count = u64::try_from(i64::from(delta) + 1).map_err(|_| malformed("bad offset delta"))?;
    if compression == 0 {
        // Uncompressed: decode every record now, so reads never meet an undecodable batch.
        let batch = decode_memory(bytes)?;
        if batch.len() as u64 != count {
            return Err(malformed(
                "record count does not match the batch's last offset delta",
            ));
        }
    }
    Ok(count)
}

/// Decodes an uncompressed batch into its records; checks that the records fill the batch.
fn decode_memory(bytes: &[u8]) -> Result<MemoryRecords, LogError> {
    let mut cursor = Cursor::new(bytes);
    let batch = Batch::<RawRecords>::decode_from(&mut cursor, 0)
        .map_err(|error| LogError::Malformed(format!("cannot decode batch: {error}")))?;
    let raw = batch.records().0.clone();
    let mut records = Cursor::new(raw.as_ref());
    let decoded = MemoryRecords::decode_from(&mut records, 0)
        .map_err(|error| LogError::Malformed(format!("cannot decode records: {error}")))?;
    if records.position() != raw.len() as u64 {
        return Err(LogError::Malformed(
            "trailing bytes after the batch's records".to_owned(),
        ));
    }
    Ok(decoded)
}

/// One record decoded from a stored batch, with its absolute offset and timestamp.
pub(crate) struct Decoded {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Decodes a stored uncompressed batch; compressed batches are left to the caller.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Decoded>, LogError> {
    let info = info(bytes)?;
    let first_timestamp = read_i64(bytes, FIRST_TIMESTAMP_AT).unwrap_or(-1);
    let records = decode_memory(bytes)
        .map_err(|error| LogError::Storage(format!("stored batch does not decode: {error}")))?;
    records
        .into_iter()
        .map(|record| {
            let delta = u64::try_from(record.offset_delta()).map_err(|_| {
                LogError::Storage("stored record has a negative offset delta".to_owned())
            })?;
            Ok(Decoded {
                offset: info.base_offset + delta,
                timestamp_ms: first_timestamp.saturating_add(record.timestamp_delta()),
                key: record.key.map(|key| key.as_ref().to_vec()),
                value: record.value.as_ref().to_vec(),
            })
        })
        .collect()
}
