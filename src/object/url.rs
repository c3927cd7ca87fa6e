//! [`ObjectUrl`]: where an object (or a prefix of objects) lives, parsed and validated.

use std::fmt;
use std::str::FromStr;

use super::ObjectError;

/// Longest bucket (or container) name accepted: Google Cloud Storage's limit for names with
/// dots; S3 and Azure refuse longer than 63 themselves.
const MAX_BUCKET_LEN: usize = 222;

/// The stores an [`ObjectUrl`] can name, by URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    /// `s3://`: Amazon S3 and S3-compatible stores.
    S3,
    /// `gs://`: Google Cloud Storage.
    Gcs,
    /// `az://`: Azure Blob Storage.
    Azure,
    /// `file://`: the local file system.
    File,
}

impl Scheme {
    const ALL: [Scheme; 4] = [Scheme::S3, Scheme::Gcs, Scheme::Azure, Scheme::File];

    fn name(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
            Scheme::Azure => "az",
            Scheme::File => "file",
        }
    }

    /// The scheme `text` starts with (followed by `://`), and the rest.
    fn split(text: &str) -> Option<(Scheme, &str)> {
        Scheme::ALL.into_iter().find_map(|scheme| {
            let rest = text.strip_prefix(scheme.name())?.strip_prefix("://")?;
            Some((scheme, rest))
        })
    }
}

/// An object, or a prefix of objects, in an object store: `s3://bucket/key`,
/// `gs://bucket/key`, `az://container/key` or `file:///absolute/path` (grammar:
/// `docs/OBJECT_STORE.md`).
///
/// The key is taken literally (no percent-decoding). A URL with a query (`?`), a fragment
/// (`#`) or user information (`user@`) is refused, so that no credential or signature can
/// travel in one; its [`Display`](fmt::Display) and [`Debug`] forms are the URL itself, safe
/// to show, and [`parse`](Self::parse) of the displayed text gives the same URL back.
///
/// ```
/// use strongbox::object::ObjectUrl;
///
/// let url = ObjectUrl::parse("s3://backups/orders/2026-12-07.full")?;
/// assert_eq!((url.bucket(), url.key()), ("backups", "orders/2026-12-07.full"));
/// assert_eq!(url.file_name(), Some("2026-12-07.full"));
/// let prefix = ObjectUrl::parse("s3://backups/orders/")?;
/// assert_eq!(prefix.join("2026-12-07.full")?, url);
/// assert!(ObjectUrl::parse("s3://backups/orders?X-Amz-Signature=abc").is_err());
/// # Ok::<(), strongbox::object::ObjectError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ObjectUrl {
    scheme: Scheme,
    bucket: String,
    key: String,
}

impl ObjectUrl {
    /// Parses and validates `text`.
    pub fn parse(text: &str) -> Result<Self, ObjectError> {
        let invalid = |reason| ObjectError::InvalidUrl {
            url: redact(text),
            reason,
        };
        let (scheme, rest) = Scheme::split(text).ok_or_else(|| {
            invalid("expected s3://bucket/key, gs://bucket/key, az://container/key or file:///path")
        })?;
        if text.contains(['?', '#']) {
            return Err(invalid("a query or a fragment is not accepted"));
        }
        let (bucket, key) = match scheme {
            Scheme::File => match rest.strip_prefix('/') {
                Some(path) => ("", path),
                None => return Err(invalid("a file URL names an absolute path: file:///path")),
            },
            _ => rest.split_once('/').unwrap_or((rest, "")),
        };
        if bucket.contains('@') {
            return Err(invalid("user information is not accepted"));
        }
        if scheme != Scheme::File {
            check_bucket(bucket).map_err(invalid)?;
        }
        let key = key.strip_suffix('/').unwrap_or(key);
        if !key.is_empty() {
            for segment in key.split('/') {
                check_segment(segment).map_err(invalid)?;
            }
        }
        Ok(Self {
            scheme,
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The bucket (S3, Google Cloud Storage) or container (Azure); empty for a `file://` URL.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object's key within its bucket, without a leading or trailing `/` (for a `file://`
    /// URL, the path without its leading `/`); empty for a whole bucket.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key's last `/`-separated segment, or `None` for a whole bucket.
    pub fn file_name(&self) -> Option<&str> {
        self.key.rsplit('/').next().filter(|name| !name.is_empty())
    }

    /// This URL, taken as a prefix, followed by one more name: `s3://b/dir` joined with
    /// `x.full` is `s3://b/dir/x.full`. `name` is one segment: not empty, no `/`, `?`, `#` or
    /// control character, not `.` or `..`.
    pub fn join(&self, name: &str) -> Result<Self, ObjectError> {
        let joined = match self.key.is_empty() {
            true => name.to_string(),
            false => format!("{}/{name}", self.key),
        };
        let invalid = |reason| ObjectError::InvalidUrl {
            url: redact(&format!("{}/{name}", self.store_root_display())),
            reason,
        };
        if name.contains(['/', '?', '#']) {
            return Err(invalid(
                "a name joined to a URL is one segment, without / ? or #",
            ));
        }
        check_segment(name).map_err(invalid)?;
        Ok(Self {
            key: joined,
            ..self.clone()
        })
    }

    /// The local path a `file://` URL names, as the store maps it (`file:///var/b/x` is
    /// `/var/b/x`); `None` for the other schemes.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        if self.scheme != Scheme::File {
            return None;
        }
        let path = object_store::path::Path::parse(&self.key).ok()?;
        let store = object_store::local::LocalFileSystem::new();
        store.path_to_filesystem(&path).ok()
    }

    /// This URL's scheme.
    pub(crate) fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The URL of the same store with another key.
    pub(crate) fn with_key(&self, key: String) -> Self {
        Self {
            key,
            ..self.clone()
        }
    }

    /// The store's URL without the key: `s3://bucket`, `file://`.
    pub(crate) fn store_root(&self) -> String {
        format!("{}://{}", self.scheme.name(), self.bucket)
    }

    fn store_root_display(&self) -> String {
        match self.key.is_empty() {
            true => self.store_root(),
            false => format!("{}/{}", self.store_root(), self.key),
        }
    }
}

/// Whether a command-line argument names an object rather than a local path: it starts with
/// `s3://`, `gs://`, `az://` or `file://`. Such an argument is then parsed with
/// [`ObjectUrl::parse`], which may still refuse it.
pub fn is_object_url(text: &str) -> bool {
    Scheme::split(text).is_some()
}

/// A bucket or container name: 3 to 222 of `a-z 0-9 . _ -`, starting and ending with a
/// letter or digit.
fn check_bucket(bucket: &str) -> Result<(), &'static str> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let chars_ok = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if (3..=MAX_BUCKET_LEN).contains(&bucket.len())
        && chars_ok
        && edge_ok(bucket.chars().next())
        && edge_ok(bucket.chars().last())
    {
        Ok(())
    } else {
        Err(
            "a bucket or container is 3 to 222 of a-z 0-9 . _ -, starting and ending with a letter or digit",
        )
    }
}

/// One `/`-separated segment of a key: not empty, not `.` or `..`, no control character.
fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("a key has no empty segment (no //)");
    }
    if segment == "." || segment == ".." {
        return Err("a key has no . or .. segment");
    }
    if segment.chars().any(char::is_control) {
        return Err("a key has no control character");
    }
    Ok(())
}

/// `text` safe to show in an error: without a query or fragment, without user information,
/// with control characters escaped.
pub(crate) fn redact(text: &str) -> String {
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let shown = match text.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => text.to_string(),
            }
        }
        None => text.to_string(),
    };
    shown.chars().flat_map(char::escape_debug).collect()
}

impl FromStr for ObjectUrl {
    type Err = ObjectError;

    fn from_str(text: &str) -> Result<Self, ObjectError> {
        Self::parse(text)
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.store_root(), self.key)
    }
}

impl fmt::Debug for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> ObjectUrl {
        ObjectUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str) -> String {
        match ObjectUrl::parse(text) {
            Err(e @ ObjectError::InvalidUrl { .. }) => e.to_string(),
            other => panic!("{text} accepted or wrongly refused: {other:?}"),
        }
    }

    #[test]
    fn parts_and_display() {
        let url = ok("gs://my-bucket/a/b c/d.full");
        assert_eq!((url.bucket(), url.key()), ("my-bucket", "a/b c/d.full"));
        assert_eq!(url.to_string(), "gs://my-bucket/a/b c/d.full");
        assert_eq!(ok("az://cont/x/").key(), "x");
        assert_eq!(ok("s3://bucket").to_string(), "s3://bucket/");
        assert_eq!(ok("s3://bucket").file_name(), None);
        let file = ok("file:///var/backups/x.sbx");
        assert_eq!((file.bucket(), file.key()), ("", "var/backups/x.sbx"));
        assert_eq!(file.to_string(), "file:///var/backups/x.sbx");
        #[cfg(unix)]
        assert_eq!(
            file.local_path(),
            Some(std::path::PathBuf::from("/var/backups/x.sbx"))
        );
        assert_eq!(ok("s3://bucket/var/backups/x.sbx").local_path(), None);
        assert_eq!(ok("file:///").to_string(), "file:///");
    }

    #[test]
    fn refuses_credentials_without_showing_them() {
        for text in [
            "s3://bucket/key?X-Amz-Signature=SECRETSIG",
            "s3://bucket/key#SECRETSIG",
            "az://SECRETSIG@container/key",
            "s3://user:SECRETSIG@bucket/key",
        ] {
            let shown = refused(text);
            assert!(!shown.contains("SECRETSIG"), "{shown}");
            assert!(!format!("{:?}", ObjectUrl::parse(text)).contains("SECRETSIG"));
        }
    }

    #[test]
    fn refuses_bad_names() {
        for text in [
            "http://bucket/key",
            "S3://bucket/key",
            "s3:/bucket/key",
            "s3://Bucket/key",
            "s3://b/key",
            "s3://bucket:9000/key",
            "s3://-bucket/key",
            "s3://bucket//key",
            "s3://bucket/a/../key",
            "s3://bucket/a/./key",
            "s3://bucket/a\nb",
            "file://host/path",
            "file://relative",
        ] {
            refused(text);
        }
    }

    #[test]
    fn object_url_or_path() {
        assert!(is_object_url("s3://x") && is_object_url("file:///x"));
        assert!(!is_object_url("backups/s3://x") && !is_object_url("s3:/x"));
        assert!(!is_object_url("/tmp/orders.full"));
    }

    #[test]
    fn join_adds_one_segment() {
        let root = ok("s3://bucket/");
        assert_eq!(root.join("a").unwrap().to_string(), "s3://bucket/a");
        let dir = ok("s3://bucket/dir");
        assert_eq!(dir.join("x.full").unwrap().file_name(), Some("x.full"));
        for name in ["", "a/b", "..", ".", "a?b", "a#b", "a\u{7f}"] {
            assert!(dir.join(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("s3://k:s@b/x?sig=1"), "s3://***@b/x");
        assert_eq!(redact("s3://b/x\ny"), "s3://b/x\\ny");
    }
}
