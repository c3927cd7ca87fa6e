//! [`ObjectError`]: what can go wrong with an object, naming the object and nothing secret.

use std::io;

use super::ObjectUrl;

/// Longest store detail an error keeps.
const MAX_DETAIL: usize = 600;

/// Environment variables whose values are secrets: an error never shows them, even if a
/// store's message were to quote one.
const SECRET_VARIABLES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// An object-store operation that failed. Every message names the object by its
/// [`ObjectUrl`] (which holds no query, user information or credential) and never shows a
/// credential, a signature or a signed URL's query: the stores' own messages are kept only
/// with every URL query removed.
///
/// It converts into an [`io::Error`] (so that it travels through `Write` and `Read`) from
/// which it can be taken back:
///
/// ```
/// use strongbox::object::{ObjectError, ObjectUrl};
///
/// let url = ObjectUrl::parse("s3://backups/orders.full")?;
/// let io: std::io::Error = ObjectError::NotFound { url }.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// let back = io.get_ref().and_then(|e| e.downcast_ref::<ObjectError>());
/// assert!(matches!(back, Some(ObjectError::NotFound { .. })));
/// # Ok::<(), ObjectError>(())
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The text is not a valid object URL (`docs/OBJECT_STORE.md`); `url` is the text without
    /// its query, fragment or user information.
    #[error("invalid object URL {url}: {reason}")]
    InvalidUrl {
        /// The text, redacted.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The object already exists: a backup is never overwritten.
    #[error("{url} already exists (an existing object is never overwritten)")]
    AlreadyExists {
        /// The object.
        url: ObjectUrl,
    },
    /// The object does not exist.
    #[error("{url} does not exist")]
    NotFound {
        /// The object.
        url: ObjectUrl,
    },
    /// The store refused the credentials, or they do not allow the operation (HTTP 401 or
    /// 403).
    #[error("access to {url} was denied: check the store's credentials and their permissions")]
    Denied {
        /// The object.
        url: ObjectUrl,
    },
    /// Any other failure of the store, after the retries.
    #[error("{url}: {detail}")]
    Store {
        /// The object.
        url: ObjectUrl,
        /// What the store said, with every URL query removed.
        detail: String,
    },
    /// The upload was stopped by [`ObjectWriter::abort_running_uploads`](super::ObjectWriter::abort_running_uploads).
    #[error("the upload to {url} was cancelled")]
    Cancelled {
        /// The object.
        url: ObjectUrl,
    },
}

impl ObjectError {
    /// The error of `err`, met working on `url`.
    pub(crate) fn from_store(url: &ObjectUrl, err: object_store::Error) -> Self {
        let url = url.clone();
        match err {
            object_store::Error::NotFound { .. } => Self::NotFound { url },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => Self::AlreadyExists { url },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Self::Denied { url },
            other => Self::store(&url, &other.to_string()),
        }
    }

    /// A [`Store`](Self::Store) error with `detail`, made safe to show.
    pub(crate) fn store(url: &ObjectUrl, detail: &str) -> Self {
        Self::Store {
            url: url.clone(),
            detail: sanitize(detail),
        }
    }
}

impl From<ObjectError> for io::Error {
    fn from(err: ObjectError) -> Self {
        let kind = match &err {
            ObjectError::InvalidUrl { .. } => io::ErrorKind::InvalidInput,
            ObjectError::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            ObjectError::NotFound { .. } => io::ErrorKind::NotFound,
            ObjectError::Denied { .. } => io::ErrorKind::PermissionDenied,
            ObjectError::Store { .. } | ObjectError::Cancelled { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// `text` without the query of any URL in it, without the value of any secret environment
/// variable, on one line, at most [`MAX_DETAIL`] characters.
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DETAIL));
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match (word.contains("://"), word.find('?')) {
            (true, Some(query)) => {
                out.push_str(&word[..query]);
                out.push_str("?…");
            }
            _ => out.push_str(word),
        }
    }
    for name in SECRET_VARIABLES {
        if let Some(value) = std::env::var(name).ok().filter(|v| v.len() >= 4) {
            out = out.replace(&value, "***");
        }
    }
    if let Some((cut, _)) = out.char_indices().nth(MAX_DETAIL) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_removed() {
        let text = "error sending request for url (http://127.0.0.1:9/b/k?uploadId=1&X-Amz-Signature=s)\nthen";
        let clean = sanitize(text);
        assert_eq!(
            clean,
            "error sending request for url (http://127.0.0.1:9/b/k?… then"
        );
    }

    #[test]
    fn long_details_are_cut() {
        assert_eq!(sanitize(&"x ".repeat(1000)).chars().count(), MAX_DETAIL + 1);
    }
}
