//! Walks the batches of one segment file front to back, reading it through
//! `DmaFile::read_at` in bounded chunks and parsing only batch headers unless
//! the caller asks for a batch's bytes. Shared by recovery, disk reads and
//! timestamp lookups; lives on the partition's owning shard. Nothing read
//! from disk is trusted: every length is checked against the segment size.

use std::io;

use glommio::io::{DmaFile, ReadResult};

use crate::protocol::record_batch::{BatchError, BatchHeader, BATCH_HEADER_BYTES};

/// What sits at the cursor's position.
#[derive(Debug)]
pub(crate) enum NextBatch {
    /// A plausible batch header (crc not checked); its bytes lie within the segment.
    Batch(BatchHeader),
    /// The end of the segment's bytes.
    End,
    /// Zero bytes: preallocated space or a zero-padded block, the end of data.
    Zeroes,
    /// Not a batch, or a batch running past the end: a torn or corrupt tail.
    Corrupt(BatchError),
}

pub(crate) struct BatchCursor<'file> {
    file: &'file DmaFile,
    end: u64,
    position: u64,
    chunk_bytes: usize,
    chunk: Option<ReadResult>,
    chunk_start: u64,
}

impl<'file> BatchCursor<'file> {
    /// A cursor over `[start, end)` of `file`, reading `chunk_bytes` at a time.
    pub fn new(file: &'file DmaFile, start: u64, end: u64, chunk_bytes: usize) -> Self {
        BatchCursor {
            file,
            end,
            position: start.min(end),
            chunk_bytes: chunk_bytes.max(BATCH_HEADER_BYTES),
            chunk: None,
            chunk_start: 0,
        }
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    /// Moves past the batch of `length` bytes at the position.
    pub fn advance(&mut self, length: usize) {
        self.position = (self.position + length as u64).min(self.end);
    }

    /// Makes `[position, position + length)` available in the current chunk;
    /// false when the file holds fewer bytes than that.
    async fn fill(&mut self, length: usize) -> io::Result<bool> {
        if let Some(chunk) = &self.chunk {
            let chunk_end = self.chunk_start + chunk.len() as u64;
            if self.position >= self.chunk_start && self.position + length as u64 <= chunk_end {
                return Ok(true);
            }
        }
        let remaining = usize::try_from(self.end - self.position).unwrap_or(usize::MAX);
        let want = length.max(self.chunk_bytes).min(remaining);
        if want < length {
            return Ok(false);
        }
        self.chunk = None;
        let chunk = self
            .file
            .read_at(self.position, want)
            .await
            .map_err(io::Error::from)?;
        let enough = chunk.len() >= length;
        self.chunk_start = self.position;
        self.chunk = Some(chunk);
        Ok(enough)
    }

    fn slice(&self, length: usize) -> &[u8] {
        match &self.chunk {
            Some(chunk) => {
                let from = (self.position - self.chunk_start) as usize;
                &chunk[from..from + length]
            }
            None => &[],
        }
    }

    /// Parses the header at the position.
    pub async fn next_header(&mut self) -> io::Result<NextBatch> {
        if self.position >= self.end {
            return Ok(NextBatch::End);
        }
        let remaining = self.end - self.position;
        let probe = BATCH_HEADER_BYTES.min(remaining as usize);
        if !self.fill(probe).await? {
            return Ok(NextBatch::Corrupt(BatchError::Truncated));
        }
        let bytes = self.slice(probe);
        if bytes.iter().all(|byte| *byte == 0) {
            return Ok(NextBatch::Zeroes);
        }
        let header = match BatchHeader::parse(bytes) {
            Ok(header) => header,
            Err(error) => return Ok(NextBatch::Corrupt(error)),
        };
        match header.total_bytes() {
            Some(total) if total as u64 <= remaining => Ok(NextBatch::Batch(header)),
            _ => Ok(NextBatch::Corrupt(BatchError::Truncated)),
        }
    }

    /// The `length` bytes of the batch at the position, or `None` when the
    /// file ends first.
    pub async fn batch_bytes(&mut self, length: usize) -> io::Result<Option<&[u8]>> {
        if !self.fill(length).await? {
            return Ok(None);
        }
        Ok(Some(self.slice(length)))
    }
}
