//! Object URLs in place of files: which command-line arguments name an object (or a prefix of
//! objects) rather than a local path (`strongbox::object`).

use std::path::Path;

pub use strongbox::object::{ObjectReader, ObjectUrl, ObjectWriter, list};

use super::error::{CliError, CliResult, OrFail as _};

/// The object URL `arg` names, or `None` for a local path (anything that does not start with
/// `s3://`, `gs://`, `az://` or `file://`). A URL that does not parse is refused.
pub fn url_of(arg: &Path) -> CliResult<Option<ObjectUrl>> {
    match arg.to_str().filter(|text| is_object_url(text)) {
        Some(text) => ObjectUrl::parse(text).or_fail().map(Some),
        None => Ok(None),
    }
}

/// Whether `arg` names a prefix of objects rather than one object: an object URL ending with
/// `/` (`s3://bucket/db1/`).
pub fn is_prefix(arg: &Path) -> bool {
    arg.to_str()
        .is_some_and(|text| is_object_url(text) && text.ends_with('/'))
}

/// Refuses an object URL where only a local file will do, saying why and what to do instead.
pub fn refuse_url(arg: &Path, why: &str) -> CliResult {
    match url_of(arg)? {
        Some(url) => Err(CliError::fail(format!("{url}: {why}"))),
        None => Ok(()),
    }
}

fn is_object_url(text: &str) -> bool {
    strongbox::object::is_object_url(text)
}
