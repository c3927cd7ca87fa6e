//! A large `read` with several threads: segments opened straight in the caller's buffer, on
//! scoped threads started for that `read`, while the calling thread loads the next ones.

use std::io::Read;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::cursor::{Cursor, State};
use super::parallel::{self, Helpers};
use super::{StreamError, TAG_LEN};

/// The most segments one `read` opens straight into the caller's buffer (the threads start once
/// per `read`): 64 MiB with the default segment size.
const MAX_SEGMENTS: usize = 1024;

/// The opening of segment `j` of a run: its ciphertext, in place in the caller's buffer, and its
/// tag.
type Task<'a> = (usize, &'a mut [u8], [u8; TAG_LEN]);

/// How a run of segments went.
struct Run {
    /// Segments handed to the threads.
    sent: usize,
    /// Segments of the caller's buffer written to.
    touched: usize,
    /// The first segment (of the run) that failed to authenticate.
    failed: Option<usize>,
    stop: Stop,
}

/// Why a run stopped.
enum Stop {
    /// The caller's buffer is full (or a segment failed).
    Full,
    /// The input ended: what is left of it is in the cursor.
    Ended,
    /// The cursor failed: what was read is kept in it.
    Error(StreamError),
}

/// Loads whole non-final segments of `cursor` straight into `out` (each segment's ciphertext at
/// its plaintext offset, its tag aside) and opens them there on `threads` threads; returns the
/// plaintext length released. The rules of where a segment ends and which is the last stay in
/// the cursor: a segment is handed out once the cursor has seen that it is not the last, and the
/// end of the input is the cursor's [`open_end`](Cursor::open_end). Nothing of a segment that
/// failed, or of any later one, is released or left in `out`. An error after some segments were
/// released is reported by the next `read`. `out` holds at least one segment, and the cursor is
/// [`at_boundary`](Cursor::at_boundary).
pub(super) fn read_large<R: Read>(
    cursor: &mut Cursor<R>,
    threads: NonZeroUsize,
    out: &mut [u8],
) -> Result<usize, StreamError> {
    let size = cursor.segment_size;
    let count = (out.len() / size).min(MAX_SEGMENTS);
    let first = cursor.index;
    let cipher = Arc::clone(&cursor.cipher);
    let open = move |(j, segment, tag): Task<'_>| {
        let index = first + j as u64;
        cipher
            .open_detached(index, false, segment, &tag)
            .err()
            .map(|_| j)
    };
    let threads = threads.min(NonZeroUsize::new(count).expect("count >= 1"));
    let run = parallel::with_helpers(threads, open, |helpers| {
        load_run(cursor, helpers, &mut out[..count * size])
    })?;
    let index = |j: usize| first + j as u64;
    if let Some(failed) = run.failed {
        out[failed * size..run.touched * size].fill(0);
        let err = StreamError::CorruptSegment {
            index: index(failed),
        };
        return released(cursor, failed * size, err);
    }
    out[run.sent * size..run.touched * size].fill(0);
    let done = run.sent * size;
    match run.stop {
        Stop::Full => Ok(done),
        Stop::Error(err) => released(cursor, done, err),
        Stop::Ended => match cursor.open_end() {
            Ok(()) => Ok(done),
            Err(err) => released(cursor, done, err),
        },
    }
}

/// Loads the segments of `out` and hands each to `helpers` once it is known not to be the last;
/// stops at the end of `out`, of the input, at an error or at a segment that failed. Returns
/// once every segment handed out has been opened.
fn load_run<'a, R: Read>(
    cursor: &mut Cursor<R>,
    helpers: &Helpers<'_, Task<'a>, Option<usize>>,
    out: &'a mut [u8],
) -> Run {
    let size = cursor.segment_size;
    let mut run = Run {
        sent: 0,
        touched: 0,
        failed: None,
        stop: Stop::Full,
    };
    let mut finished = 0;
    for (j, segment) in out.chunks_mut(size).enumerate() {
        run.touched = j + 1;
        match cursor.load_into(segment) {
            Ok(Some(_)) => {
                let mut tag = [0; TAG_LEN];
                tag.copy_from_slice(cursor.tail(size));
                helpers.push((j, segment, tag));
                run.sent += 1;
            }
            Ok(None) => {
                run.stop = Stop::Ended;
                break;
            }
            Err(err) => {
                run.stop = Stop::Error(err);
                break;
            }
        }
        while let Some(done) = helpers.try_done() {
            finished += 1;
            run.failed = run.failed.into_iter().chain(done).min();
        }
        if run.failed.is_some() {
            break;
        }
    }
    while let Some(done) = helpers.help() {
        finished += 1;
        run.failed = run.failed.into_iter().chain(done).min();
    }
    while finished < run.sent {
        let Some(done) = helpers.done() else { break };
        finished += 1;
        run.failed = run.failed.into_iter().chain(done).min();
    }
    run
}

/// The result of a `read` that released `done` bytes before `err`: the error now if nothing was
/// released, else the bytes, and the error is the next `read`'s (an I/O error once, as a
/// one-thread reader meets it).
fn released<R: Read>(
    cursor: &mut Cursor<R>,
    done: usize,
    err: StreamError,
) -> Result<usize, StreamError> {
    if done == 0 {
        return Err(err);
    }
    match err.permanent() {
        Some(failure) => cursor.state = State::Failed(failure),
        None => cursor.interrupted = Some(err),
    }
    Ok(done)
}
