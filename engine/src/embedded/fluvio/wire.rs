//! Record sets as raw batch bytes: the `R` of produce requests and stream-fetch responses, so
//! batches go from the socket to the log and from the log to the socket without being decoded
//! or re-encoded.
//!
//! On the wire a record set is `i32 total length` + concatenated batches, and each batch starts
//! with `base_offset: i64` and `batch_len: i32` (the bytes after that field), the layout of
//! fluvio-protocol's `RecordSet` / `Batch`.

use std::io::{Error as IoError, ErrorKind};

use fluvio_protocol::bytes::{Buf, BufMut, Bytes};
use fluvio_protocol::{Decoder, Encoder, Version};

/// `base_offset` + `batch_len`.
const BATCH_PREFIX: usize = 12;

/// Whole batches, each exactly as stored or as sent by a producer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawBatches {
    pub batches: Vec<Bytes>,
    /// Set when decoding met bytes that are not whole batches (a truncated or garbled tail);
    /// the record set's own length is still honoured, so the rest of the request decodes.
    pub malformed: Option<String>,
}

impl RawBatches {
    pub fn new(batches: Vec<Bytes>) -> Self {
        Self {
            batches,
            malformed: None,
        }
    }

    fn content_len(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

impl Encoder for RawBatches {
    fn write_size(&self, _version: Version) -> usize {
        4 + self.content_len()
    }

    fn encode<T: BufMut>(&self, dest: &mut T, version: Version) -> Result<(), IoError> {
        let len = i32::try_from(self.content_len())
            .map_err(|_| IoError::new(ErrorKind::InvalidData, "record set larger than 2 GiB"))?;
        len.encode(dest, version)?;
        if dest.remaining_mut() < self.content_len() {
            return Err(IoError::new(
                ErrorKind::UnexpectedEof,
                "not enough room for the record set",
            ));
        }
        for batch in &self.batches {
            dest.put_slice(batch);
        }
        Ok(())
    }
}

impl Decoder for RawBatches {
    fn decode<T: Buf>(&mut self, src: &mut T, version: Version) -> Result<(), IoError> {
        let mut len: i32 = 0;
        len.decode(src, version)?;
        let len = usize::try_from(len)
            .map_err(|_| IoError::new(ErrorKind::InvalidData, "negative record set length"))?;
        if src.remaining() < len {
            return Err(IoError::new(
                ErrorKind::UnexpectedEof,
                format!("record set of {len} bytes, only {} left", src.remaining()),
            ));
        }
        let mut content = src.copy_to_bytes(len);
        self.batches.clear();
        self.malformed = None;
        while !content.is_empty() {
            if content.len() < BATCH_PREFIX {
                self.malformed = Some(format!("{} trailing bytes", content.len()));
                break;
            }
            let batch_len = i32::from_be_bytes([content[8], content[9], content[10], content[11]]);
            let total = usize::try_from(batch_len)
                .ok()
                .and_then(|batch_len| batch_len.checked_add(BATCH_PREFIX))
                .filter(|total| *total <= content.len());
            let Some(total) = total else {
                self.malformed = Some(format!(
                    "batch length {batch_len} does not fit the {} bytes left",
                    content.len() - BATCH_PREFIX
                ));
                break;
            };
            self.batches.push(content.split_to(total));
        }
        Ok(())
    }
}
