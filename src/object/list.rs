//! [`list`]: the objects under a prefix.

use std::time::SystemTime;

use futures_util::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};

use super::{ObjectError, ObjectUrl, UploadOptions, open_store, run_for};

/// One object found by [`list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    /// Its URL.
    pub url: ObjectUrl,
    /// Its length in bytes.
    pub size: u64,
    /// When it was last written, as the store reports it.
    pub last_modified: SystemTime,
}

/// Every object under the prefix `url` names, sorted by key: the objects whose key is the
/// prefix's key followed by `/` and more (`s3://b/orders` lists `s3://b/orders/x.full` and
/// `s3://b/orders/2026/y.full`, not `s3://b/orders-old/z`); a whole bucket for an empty key.
/// An empty prefix is an empty list.
pub fn list(url: &ObjectUrl) -> Result<Vec<ObjectEntry>, ObjectError> {
    let (store, prefix) = open_store(url, UploadOptions::default().retry_config())?;
    let base = url.clone();
    let mut entries = run_for(url, async move {
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        let listed = store.list(prefix.as_ref()).try_collect::<Vec<_>>().await;
        let metas = match listed {
            Ok(metas) => metas,
            Err(e) => return Err(list_error(&base, store.as_ref(), prefix.as_ref(), e).await),
        };
        Ok(metas
            .into_iter()
            .map(|meta| ObjectEntry {
                url: base.with_key(meta.location.to_string()),
                size: meta.size,
                last_modified: meta.last_modified.into(),
            })
            .collect::<Vec<_>>())
    })?;
    entries.sort_by(|a, b| a.url.key().cmp(b.url.key()));
    Ok(entries)
}

/// The error of a failed listing. `object_store` reports a listing the store refused (401,
/// 403) as a generic error, without its status: a HEAD of the prefix, whose refusal it does
/// report as such, tells whether the credentials were refused.
async fn list_error(
    url: &ObjectUrl,
    store: &dyn ObjectStore,
    prefix: Option<&Path>,
    err: object_store::Error,
) -> ObjectError {
    if let object_store::Error::Generic { .. } = err {
        let head = store.head(prefix.unwrap_or(&Path::default())).await;
        if let Err(
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. },
        ) = head
        {
            return ObjectError::Denied { url: url.clone() };
        }
    }
    ObjectError::from_store(url, err)
}
