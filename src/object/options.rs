//! [`UploadOptions`]: part size, parallelism and retries of an upload.

use std::time::Duration;

/// Smallest part: S3's minimum for every part but the last.
pub(crate) const MIN_PART_SIZE: usize = 5 << 20;
/// Largest part: S3's maximum.
pub(crate) const MAX_PART_SIZE: usize = 5 << 30;
/// Default number of attempts after the first.
const DEFAULT_RETRIES: usize = 5;
/// Default bound on the time spent retrying one request.
const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(120);

/// How an [`ObjectWriter`](super::ObjectWriter) uploads: `part_size` bytes per part
/// (default 8 MiB, kept between 5 MiB and 5 GiB), up to `parts_in_flight` parts sent at once
/// (default 4, at least 1), and each request retried up to `retries` times within
/// `retry_timeout` (default 5 times within 2 minutes).
///
/// The writer holds at most `(parts_in_flight + 2) × part_size` bytes, whatever the object's
/// size: the part being filled, one handed to the upload, and those in flight. An object of
/// fewer than `part_size` bytes is sent in one request.
///
/// ```
/// use strongbox::object::UploadOptions;
///
/// let options = UploadOptions::default().part_size(16 << 20).parts_in_flight(8);
/// assert_eq!((options.get_part_size(), options.get_parts_in_flight()), (16 << 20, 8));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadOptions {
    part_size: usize,
    parts_in_flight: usize,
    retries: usize,
    retry_timeout: Duration,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            part_size: 8 << 20,
            parts_in_flight: 4,
            retries: DEFAULT_RETRIES,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
        }
    }
}

impl UploadOptions {
    /// Bytes per part, kept between 5 MiB and 5 GiB.
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
        self
    }

    /// Parts sent at once, at least 1.
    pub fn parts_in_flight(mut self, parts: usize) -> Self {
        self.parts_in_flight = parts.max(1);
        self
    }

    /// Each request is tried again up to `retries` times, and not after `timeout` from its
    /// first attempt (0 retries: never tried again).
    pub fn retries(mut self, retries: usize, timeout: Duration) -> Self {
        self.retries = retries;
        self.retry_timeout = timeout;
        self
    }

    /// Bytes per part.
    pub fn get_part_size(&self) -> usize {
        self.part_size
    }

    /// Parts sent at once.
    pub fn get_parts_in_flight(&self) -> usize {
        self.parts_in_flight
    }

    /// `object_store`'s retry configuration for these options.
    pub(crate) fn retry_config(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig::default(),
            max_retries: self.retries,
            retry_timeout: self.retry_timeout,
        }
    }
}
