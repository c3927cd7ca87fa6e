//! The database key file, through [`DatabaseKeyStore`]: loaded to back up an encrypted
//! database, written into a restored one.

use std::path::Path;
use std::sync::Arc;

use super::BackupError;
use crate::key::DataKey;
use crate::keys::provider::MasterKeyProvider;
use crate::keys::store::DatabaseKeyStore;

/// The key of the database in `dir`, or `None` if it is not encrypted (has no key file).
pub(crate) fn load(
    dir: &Path,
    provider: &Arc<dyn MasterKeyProvider>,
) -> Result<Option<DataKey>, BackupError> {
    let store = DatabaseKeyStore::new(Arc::clone(provider));
    if !store.exists(dir).map_err(BackupError::DatabaseKey)? {
        return Ok(None);
    }
    store.load(dir).map(Some).map_err(BackupError::DatabaseKey)
}

/// Stores `key` as the key of the (new) database in `dir`, under `provider`.
pub(crate) fn save(
    dir: &Path,
    key: &DataKey,
    provider: &Arc<dyn MasterKeyProvider>,
) -> Result<(), BackupError> {
    DatabaseKeyStore::new(Arc::clone(provider))
        .put(dir, key, false)
        .map(drop)
        .map_err(BackupError::DatabaseKey)
}
