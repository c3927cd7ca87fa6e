//! [`AsyncBackupWriter`] and [`AsyncRestoreReader`]: the stream over tokio's [`AsyncWrite`] and
//! [`AsyncRead`] (feature `tokio`).
//!
//! Each drives the synchronous type: the bytes, the segment rules, the threads and the errors
//! are the synchronous types', not a second implementation of them. Neither copies the stream
//! more than the synchronous type does, nor blocks the runtime on I/O: the writer polls its
//! output straight from the sealed segment buffers (`writer.rs`), the reader polls its input
//! straight into the buffer the synchronous reader reads into (`reader.rs`).
//!
//! [`AsyncWrite`]: tokio::io::AsyncWrite
//! [`AsyncRead`]: tokio::io::AsyncRead

mod reader;
mod writer;

pub use reader::AsyncRestoreReader;
pub use writer::AsyncBackupWriter;

#[cfg(test)]
mod tests;
