//! Random access for a [`RestoreReader`] over a [`Seek`]able input: plaintext offsets mapped to
//! segments, the cursor restarted there. The plaintext length is taken only from the last
//! segment, authenticated as the last one by the cursor.

use std::io::{self, Read, Seek, SeekFrom};

use super::StreamError;
use super::cursor::{LOOKAHEAD, State};
use super::reader::RestoreReader;

impl<R: Read + Seek> RestoreReader<R> {
    /// The authenticated plaintext length. The first call authenticates the last segment (as
    /// the last one); the length is never taken from the unauthenticated size of the input.
    /// The read position is kept.
    ///
    /// ```
    /// use std::io::{Cursor, Read, Seek, SeekFrom, Write};
    /// use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};
    ///
    /// let key = DataKey::generate()?;
    /// let config = StreamConfig::default().segment_size(4096)?;
    /// let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, Vec::new())?;
    /// writer.write_all(&(0..50_000u32).map(|i| i as u8).collect::<Vec<_>>())?;
    /// let backup = writer.finish()?;
    ///
    /// let mut reader = RestoreReader::new(Cursor::new(backup), &key)?;
    /// assert_eq!(reader.seek(SeekFrom::End(0))?, 50_000);
    /// reader.seek(SeekFrom::Start(40_000))?;
    /// let mut byte = [0u8; 1];
    /// reader.read_exact(&mut byte)?;
    /// assert_eq!(byte[0], 40_000u32 as u8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plaintext_len(&mut self) -> Result<u64, StreamError> {
        if let Some(len) = self.cursor.plain_len {
            return Ok(len);
        }
        let offset = self.offset;
        let result = self.find_plaintext_len().and_then(|len| {
            self.jump(offset, len)?;
            Ok(len)
        });
        if let Err(err) = &result {
            // The position is unknown if it is not a stream failure.
            let failure = err.permanent().unwrap_or(StreamError::InvalidSeek);
            self.cursor.state = State::Failed(failure);
        }
        result
    }

    /// Moves to plaintext offset `target` of a stream of `len` bytes; segments load lazily.
    fn jump(&mut self, target: u64, len: u64) -> Result<(), StreamError> {
        self.ahead = None;
        if target >= len {
            let (index, consumed) = (self.cursor.index, self.cursor.consumed);
            self.cursor.restart(index, consumed, 0);
            self.cursor.state = State::Done;
        } else {
            let size = self.cursor.segment_size as u64;
            self.position_at_segment(target / size, (target % size) as usize)?;
        }
        self.offset = target;
        Ok(())
    }

    fn find_plaintext_len(&mut self) -> Result<u64, StreamError> {
        let base = self.base()?;
        let header_len = self.header.encoded_len() as u64;
        let end = self.cursor.inner.seek(SeekFrom::End(0))?;
        let body = end
            .checked_sub(base + header_len)
            .filter(|&len| len > 0)
            .ok_or(StreamError::Truncated)?;
        let full = self.cursor.full as u64;
        let last = (body - 1) / full;
        let tail = body - last * full;
        // Fewer than LOOKAHEAD bytes after a full segment cannot be a segment: then the segment
        // before them must be the last one (and they are trailing data).
        let candidate = if tail < LOOKAHEAD as u64 && last > 0 {
            last - 1
        } else {
            last
        };
        self.position_at_segment(candidate, 0)?;
        self.cursor.load(None)?;
        self.cursor.plain_len.ok_or(StreamError::Truncated)
    }

    /// Where the stream starts in the inner reader.
    fn base(&mut self) -> Result<u64, StreamError> {
        if let Some(base) = self.base {
            return Ok(base);
        }
        let position = self.cursor.inner.stream_position()?;
        let base = position
            .checked_sub(self.cursor.consumed)
            .ok_or(StreamError::InvalidSeek)?;
        self.base = Some(base);
        Ok(base)
    }

    /// Positions the inner reader at the start of segment `index`, to drop `skip` plaintext
    /// bytes.
    fn position_at_segment(&mut self, index: u64, skip: usize) -> Result<(), StreamError> {
        let base = self.base()?;
        let header_len = self.header.encoded_len() as u64;
        let start = index
            .checked_mul(self.cursor.full as u64)
            .and_then(|offset| offset.checked_add(header_len))
            .ok_or(StreamError::InvalidSeek)?;
        let target = base.checked_add(start).ok_or(StreamError::InvalidSeek)?;
        // Mark the position unknown until the seek has succeeded.
        self.cursor.state = State::Failed(StreamError::InvalidSeek);
        self.cursor.inner.seek(SeekFrom::Start(target))?;
        self.cursor.restart(index, start, skip);
        self.ahead = None;
        Ok(())
    }
}

impl<R: Read + Seek> Seek for RestoreReader<R> {
    /// Seeks to a plaintext offset. The first seek authenticates the last segment, so the
    /// length behind `SeekFrom::End` is trusted. Seeking past the end is allowed (reads then
    /// return 0). After a failed seek the position is unknown: seek again before reading.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let len = self.plaintext_len().map_err(StreamError::into_io)?;
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(delta) => len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.offset.checked_add_signed(delta),
        }
        .ok_or_else(|| StreamError::InvalidSeek.into_io())?;
        self.jump(target, len).map_err(|e| self.cursor.fail(e))?;
        Ok(target)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.offset)
    }
}
