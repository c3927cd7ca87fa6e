//! Changing who can open a backup after the fact ([`rewrap`]): recipient slots and master-key
//! copies added or removed, the header resealed, the segments copied unchanged.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::input::Place;
use super::keys::{MAX_KEY_COPIES, MasterKeys, join_list, open_wrapped};
use super::recipients::{self, Identities, MAX_RECIPIENT_SLOTS, Recipients};
use super::restore::{recipient_slots, wrapped_keys};
use super::{BackupError, EXT_RECIPIENT_SLOTS, EXT_WRAPPED_KEYS};
use crate::fs::{Replace, TMP_SUFFIX, TempFile, parent_dir, remove_stale, temp_prefix};
use crate::key::{DataKey, Fingerprint, KeyId};
use crate::keys::envelope::ProtectedKey;
use crate::keys::provider::MasterKeyProvider;
use crate::stream::{Extension, Header};

/// What [`rewrap`] changes, and what opens the backup's key today.
///
/// The key is opened with the given key ([`with_key`](Self::with_key)), else a wrapped copy
/// that a master key of the `MasterKeys` opens, else a recipient slot that one of the
/// [`with_identities`](Self::with_identities) opens.
#[derive(Default)]
pub struct Rewrap {
    add_recipients: Recipients,
    remove_slots: Vec<usize>,
    add_master_keys: Vec<Arc<dyn MasterKeyProvider>>,
    remove_master_keys: Vec<Fingerprint>,
    identities: Identities,
    key: Option<DataKey>,
}

impl Rewrap {
    /// No change yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a recipient slot for each of `recipients`.
    pub fn add_recipients(mut self, recipients: Recipients) -> Self {
        self.add_recipients = recipients;
        self
    }

    /// Removes the recipient slot at `index` (0 is the first, in the order `inspect` lists
    /// them).
    pub fn remove_slot(mut self, index: usize) -> Self {
        self.remove_slots.push(index);
        self
    }

    /// Adds a copy of the key wrapped under `provider`'s master key.
    pub fn add_master_key(mut self, provider: Arc<dyn MasterKeyProvider>) -> Self {
        self.add_master_keys.push(provider);
        self
    }

    /// Removes every wrapped copy under the master key of fingerprint `fingerprint` (the
    /// database-key copy is the one under the current master key).
    pub fn remove_master_key(mut self, fingerprint: Fingerprint) -> Self {
        self.remove_master_keys.push(fingerprint);
        self
    }

    /// Opens the key with a recipient slot these identities open.
    pub fn with_identities(mut self, identities: Identities) -> Self {
        self.identities = identities;
        self
    }

    /// Opens the backup with this key (it must be the backup's).
    pub fn with_key(mut self, key: DataKey) -> Self {
        self.key = Some(key);
        self
    }
}

impl fmt::Debug for Rewrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewrap")
            .field("add_recipients", &self.add_recipients)
            .field("remove_slots", &self.remove_slots)
            .field("add_master_keys", &self.add_master_keys)
            .field("remove_master_keys", &self.remove_master_keys)
            .field("identities", &self.identities)
            .field("key", &self.key)
            .finish()
    }
}

/// What [`rewrap`] left in the backup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
    /// The backup's key (unchanged).
    pub key_id: KeyId,
    /// The number of copies wrapped under master keys.
    pub wrapped_copies: usize,
    /// The number of recipient slots.
    pub recipient_slots: usize,
}

/// Rewrites the key slots of the encrypted backup (or stream) at `path`: its header is
/// authenticated with the key it opens today, the changes are applied, the header is resealed
/// with the same key, salt and other extensions (`Header::reseal`), and the segments are copied
/// unchanged, through a temporary file beside it that replaces the backup atomically (a crash
/// leaves the old file or the new one).
///
/// Errors: an unencrypted stream is [`BackupError::InvalidStream`] (`StreamError::Unencrypted`); a change that would leave
/// neither a wrapped copy nor a slot is [`BackupError::NoWayIn`]; a slot index out of range is
/// [`BackupError::NoSuchSlot`]; the key errors of a restore (`KeyUnavailable`,
/// `NoMatchingIdentity`, `WrongKey`, `Tampered`).
pub fn rewrap(
    path: impl AsRef<Path>,
    changes: &Rewrap,
    keys: &MasterKeys,
) -> Result<RewrapReport, BackupError> {
    let place = Place::new(0, path.as_ref());
    let mut file = crate::fs::open_regular(&place.path).map_err(|e| place.io(e))?;
    let header = Header::read_from(&mut file).map_err(|e| place.stream(e))?;
    let Some(key_id) = header.key_id() else {
        return Err(place.stream(crate::stream::StreamError::Unencrypted));
    };
    let copies = wrapped_keys(&header, &place)?;
    let slots = recipient_slots(&header, &place)?.unwrap_or_default();
    let key = open_key(changes, &copies, &slots, keys, key_id, &place)?;
    let copies = new_copies(copies, changes, &key)?;
    let slots = new_slots(slots, changes, &key)?;
    if copies.is_empty() && slots.is_empty() {
        return Err(BackupError::NoWayIn);
    }
    let mut extensions: Vec<Extension> = header
        .extensions()
        .iter()
        .filter(|e| e.kind != EXT_WRAPPED_KEYS && e.kind != EXT_RECIPIENT_SLOTS)
        .cloned()
        .collect();
    if !copies.is_empty() {
        extensions.push(Extension::new(EXT_WRAPPED_KEYS, join_list(&copies)));
    }
    if !slots.is_empty() {
        extensions.push(Extension::new(EXT_RECIPIENT_SLOTS, join_list(&slots)));
    }
    extensions.sort_by_key(|e| e.kind);
    let resealed = header
        .reseal(Some(&key), extensions)
        .map_err(|e| place.stream(e))?;
    replace(&place, &resealed, file)?;
    Ok(RewrapReport {
        key_id,
        wrapped_copies: copies.len(),
        recipient_slots: slots.len(),
    })
}

fn open_key(
    changes: &Rewrap,
    copies: &[ProtectedKey],
    slots: &[Vec<u8>],
    keys: &MasterKeys,
    key_id: KeyId,
    place: &Place,
) -> Result<DataKey, BackupError> {
    if let Some(key) = &changes.key {
        if key.id() != key_id {
            return Err(BackupError::WrongKey {
                position: place.position,
                path: place.path.clone(),
                expected: key_id,
                provided: key.id(),
            });
        }
        return Ok(key.try_clone()?);
    }
    match open_wrapped(copies, keys, key_id, place) {
        Err(BackupError::KeyUnavailable { .. })
            if !slots.is_empty() && !changes.identities.is_empty() =>
        {
            recipients::open_slots(slots, &changes.identities, key_id, place)
        }
        other => other,
    }
}

fn new_copies(
    copies: Vec<ProtectedKey>,
    changes: &Rewrap,
    key: &DataKey,
) -> Result<Vec<Vec<u8>>, BackupError> {
    let mut out: Vec<Vec<u8>> = copies
        .into_iter()
        .filter(|c| {
            c.fingerprint()
                .is_none_or(|f| !changes.remove_master_keys.contains(&f))
        })
        .map(ProtectedKey::into_bytes)
        .collect();
    for provider in &changes.add_master_keys {
        let copy = ProtectedKey::protect(key, &**provider).map_err(BackupError::KeyWrap)?;
        out.push(copy.into_bytes());
    }
    if out.len() > MAX_KEY_COPIES {
        return Err(BackupError::TooManyKeyCopies);
    }
    Ok(out)
}

fn new_slots(
    slots: Vec<Vec<u8>>,
    changes: &Rewrap,
    key: &DataKey,
) -> Result<Vec<Vec<u8>>, BackupError> {
    if let Some(&index) = changes.remove_slots.iter().find(|&&i| i >= slots.len()) {
        return Err(BackupError::NoSuchSlot {
            index,
            slots: slots.len(),
        });
    }
    let mut out: Vec<Vec<u8>> = slots
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !changes.remove_slots.contains(i))
        .map(|(_, slot)| slot)
        .collect();
    out.extend(recipients::seal_all(key, &changes.add_recipients)?);
    if out.len() > MAX_RECIPIENT_SLOTS {
        return Err(BackupError::TooManyKeyCopies);
    }
    Ok(out)
}

/// Writes `header` then the rest of `old` (read on from its header's end) to a temporary file
/// beside the backup, closes the backup (Windows cannot rename over an open file) and renames
/// the temporary file over it.
fn replace(place: &Place, header: &Header, mut old: std::fs::File) -> Result<(), BackupError> {
    let path = &place.path;
    let io_err = |source| BackupError::Io {
        path: path.clone(),
        source,
    };
    let prefix = temp_prefix(path).ok_or_else(|| {
        io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    remove_stale(parent_dir(path), &prefix, TMP_SUFFIX);
    let mut tmp = TempFile::named(path, &prefix, TMP_SUFFIX).map_err(io_err)?;
    io::Write::write_all(&mut tmp, header.as_bytes()).map_err(io_err)?;
    io::copy(&mut old, &mut tmp).map_err(io_err)?;
    drop(old);
    tmp.commit(Replace::Always).map_err(io_err)
}
