//! Which master keys a backup or restore uses: the current provider (which protects database keys
//! and receives the key of a restored database) and any extra recovery providers, and the
//! wrapped-keys header extension built from them.

use std::fmt;
use std::sync::Arc;

use super::BackupError;
use super::input::Place;
use crate::key::{DataKey, KeyId};
use crate::keys::envelope::{EnvelopeError, ProtectedKey};
use crate::keys::provider::MasterKeyProvider;

/// At most this many wrapped copies of the key in one backup.
pub const MAX_KEY_COPIES: usize = 16;

/// The master-key providers a backup or restore works with.
///
/// - The **current** provider protects the database keys (`secret.key.encrypted`): a backup
///   loads the database key with it, a restore stores the restored database's key under it.
/// - Every encrypted backup carries its key wrapped under the current provider *and* under each
///   **recovery** provider (like age recipients), so that a restore on the same machine, or
///   anywhere with a recovery master key, needs no pasted key.
/// - A restore without an explicit key tries every provider on every wrapped copy; when none
///   opens it is [`BackupError::KeyUnavailable`], listing the fingerprints the backup was
///   wrapped for and those tried.
///
/// # After a master-key rotation
///
/// The copies in a backup are made when it is taken and never change:
/// [`DatabaseKeyStore::rotate`](crate::keys::DatabaseKeyStore::rotate) re-protects database key
/// files, not backups. A backup taken before the rotation opens only with the old master key
/// (or a recovery key of its time), so keep the old master key for as long as such backups
/// are kept and add it as a recovery provider to the `MasterKeys` of restores: they then find
/// the backup's key, and store the restored database's key under the new current provider.
/// Every recovery provider also receives a copy of the key of each new backup, so leave the old
/// master key out of the `MasterKeys` used to take backups (above all when it was rotated out
/// because it leaked). A backup's wrapped copies are never changed in place: to stop depending
/// on the old master key, take new backups after the rotation and drop the old ones.
///
/// ```no_run
/// use std::sync::Arc;
/// use strongbox::backup::MasterKeys;
/// use strongbox::keys::{FileProvider, default_provider};
///
/// let recovery = Arc::new(FileProvider::new("/secure/recovery-master.key"));
/// let keys = MasterKeys::new(default_provider()?).with_recovery(recovery);
/// // For restores only: also the master key before the last rotation, for older backups.
/// let restore_keys = keys
///     .clone()
///     .with_recovery(Arc::new(FileProvider::new("/secure/previous-master.key")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MasterKeys {
    current: Arc<dyn MasterKeyProvider>,
    recovery: Vec<Arc<dyn MasterKeyProvider>>,
}

impl MasterKeys {
    /// Only the current provider.
    pub fn new(current: Arc<dyn MasterKeyProvider>) -> Self {
        Self {
            current,
            recovery: Vec::new(),
        }
    }

    /// Adds a recovery provider: backups also wrap their key under it, restores also try it. A
    /// backup carries at most [`MAX_KEY_COPIES`] copies (the current provider and 15 recovery
    /// providers); more is [`BackupError::TooManyKeyCopies`].
    pub fn with_recovery(mut self, provider: Arc<dyn MasterKeyProvider>) -> Self {
        self.recovery.push(provider);
        self
    }

    /// The current provider.
    pub fn current(&self) -> &Arc<dyn MasterKeyProvider> {
        &self.current
    }

    /// The current provider, then the recovery providers, in order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &dyn MasterKeyProvider> + '_ {
        std::iter::once(&*self.current).chain(self.recovery.iter().map(|p| &**p))
    }
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current", &self.current)
            .field("recovery", &self.recovery)
            .finish()
    }
}

/// Encodes the wrapped-keys extension: a count byte, then per copy a 4-byte big-endian length
/// and a protected key blob (`docs/BACKUP.md`).
pub(crate) fn wrap_all(key: &DataKey, keys: &MasterKeys) -> Result<Vec<u8>, BackupError> {
    wrap_under(key, keys.all())
}

/// The wrapped-keys extension of a write-only backup: the key under the recovery providers
/// only (`None` when there is none).
pub(crate) fn wrap_recovery(
    key: &DataKey,
    keys: &MasterKeys,
) -> Result<Option<Vec<u8>>, BackupError> {
    if keys.recovery.is_empty() {
        return Ok(None);
    }
    wrap_under(key, keys.recovery.iter().map(|p| &**p)).map(Some)
}

fn wrap_under<'a>(
    key: &DataKey,
    providers: impl Iterator<Item = &'a dyn MasterKeyProvider>,
) -> Result<Vec<u8>, BackupError> {
    let providers: Vec<_> = providers.collect();
    if providers.len() > MAX_KEY_COPIES {
        return Err(BackupError::TooManyKeyCopies);
    }
    let blobs = providers
        .into_iter()
        .map(|p| ProtectedKey::protect(key, p).map(ProtectedKey::into_bytes))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BackupError::KeyWrap)?;
    Ok(join_list(&blobs))
}

/// A count byte, then per item a 4-byte big-endian length and the item (at most 255 items).
pub(crate) fn join_list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![items.len() as u8];
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// The items of a [`join_list`] encoding of 1 to `max` items, with nothing after the last;
/// `None` otherwise.
pub(crate) fn split_list(mut bytes: &[u8], max: usize) -> Option<Vec<&[u8]>> {
    let (&count, rest) = bytes.split_first()?;
    bytes = rest;
    if count == 0 || usize::from(count) > max {
        return None;
    }
    let mut out = Vec::with_capacity(count.into());
    for _ in 0..count {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return None;
        }
        out.push(&rest[..len]);
        bytes = &rest[len..];
    }
    bytes.is_empty().then_some(out)
}

/// Decodes the wrapped-keys extension; `None` if it is malformed (a restore reports
/// [`BackupError::MalformedWrappedKeys`]).
pub(crate) fn parse_wrapped(bytes: &[u8]) -> Option<Vec<ProtectedKey>> {
    split_list(bytes, MAX_KEY_COPIES)?
        .into_iter()
        .map(|blob| ProtectedKey::from_bytes(blob).ok())
        .collect()
}

/// The backup key `key_id` from the first wrapped copy that one of `keys` opens; errors name
/// the backup at `place`.
///
/// Errors: [`BackupError::Tampered`] (header) when a copy addressed to one of `keys` fails to
/// authenticate or opens to another key than `key_id` (either means the header was altered);
/// otherwise, when no copy opens, [`BackupError::KeyUnavailable`] with the fingerprints the
/// copies were wrapped for, those of the master keys tried, and the first provider failure.
pub(crate) fn open_wrapped(
    copies: &[ProtectedKey],
    keys: &MasterKeys,
    key_id: KeyId,
    place: &Place,
) -> Result<DataKey, BackupError> {
    let mut corrupt = false;
    let mut failure = None;
    for copy in copies {
        for provider in keys.all() {
            match copy.unprotect(provider) {
                Ok(key) if key.id() == key_id => return Ok(key),
                Ok(_) | Err(EnvelopeError::Corrupt) => corrupt = true,
                Err(e) if e.is_not_mine() => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    }
    if corrupt {
        return Err(BackupError::Tampered {
            position: place.position,
            path: place.path.clone(),
            segment: None,
        });
    }
    Err(BackupError::KeyUnavailable {
        position: place.position,
        path: place.path.clone(),
        key_id,
        copies: copies.len(),
        wrapped_for: copies
            .iter()
            .filter_map(ProtectedKey::fingerprint)
            .collect(),
        tried: keys
            .all()
            .filter_map(|p| p.fingerprint().ok().flatten())
            .collect(),
        cause: failure.map(Box::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::MasterKey;
    use crate::keys::provider::{Protection, ProviderError};

    #[derive(Debug)]
    struct Fixed(MasterKey);

    impl MasterKeyProvider for Fixed {
        fn protection(&self) -> Result<Protection<'_>, ProviderError> {
            Ok(Protection::MasterKey(&self.0))
        }
    }

    fn place() -> Place {
        Place::new(3, std::path::Path::new("b.3"))
    }

    fn provider() -> Arc<dyn MasterKeyProvider> {
        Arc::new(Fixed(MasterKey::generate().unwrap()))
    }

    #[test]
    fn wrapped_keys_round_trip_and_strict_parsing() {
        let (a, b) = (provider(), provider());
        let keys = MasterKeys::new(Arc::clone(&a)).with_recovery(Arc::clone(&b));
        let key = DataKey::generate().unwrap();
        let ext = wrap_all(&key, &keys).unwrap();
        let copies = parse_wrapped(&ext).unwrap();
        assert_eq!(copies.len(), 2);
        for only in [a, b] {
            let k = open_wrapped(&copies, &MasterKeys::new(only), key.id(), &place()).unwrap();
            assert_eq!(k.id(), key.id());
        }
        let stranger = provider();
        let err =
            open_wrapped(&copies, &MasterKeys::new(stranger), key.id(), &place()).unwrap_err();
        assert!(
            matches!(&err, BackupError::KeyUnavailable {
                position: 3, copies: 2, wrapped_for, tried, cause: None, ..
            } if wrapped_for.len() == 2 && tried.len() == 1),
            "{err:?}"
        );
        // A header naming another key than the copies hold: tampering.
        assert!(matches!(
            open_wrapped(&copies, &keys, DataKey::generate().unwrap().id(), &place()),
            Err(BackupError::Tampered {
                position: 3,
                segment: None,
                ..
            })
        ));

        let mut trailing = ext.clone();
        trailing.push(0);
        let mut zero = ext.clone();
        zero[0] = 0;
        let mut more = ext.clone();
        more[0] = 3;
        let mut long = ext.clone();
        long[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        for bad in [
            trailing,
            zero,
            more,
            long,
            vec![],
            ext[..ext.len() - 1].to_vec(),
        ] {
            assert!(parse_wrapped(&bad).is_none());
        }
    }

    #[test]
    fn at_most_sixteen_copies() {
        let mut keys = MasterKeys::new(provider());
        for _ in 0..MAX_KEY_COPIES - 1 {
            keys = keys.with_recovery(provider());
        }
        let key = DataKey::generate().unwrap();
        assert_eq!(
            parse_wrapped(&wrap_all(&key, &keys).unwrap())
                .unwrap()
                .len(),
            MAX_KEY_COPIES
        );
        keys = keys.with_recovery(provider());
        assert!(matches!(
            wrap_all(&key, &keys),
            Err(BackupError::TooManyKeyCopies)
        ));
    }
}
