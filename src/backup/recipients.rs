//! Key slots: the backup key wrapped to age recipients (X25519 `age1...`, `ssh-ed25519`,
//! `ssh-rsa`), each slot a standard age file whose plaintext is the key as a data-key file
//! holds it, and opened with age identities (`docs/BACKUP.md`, section 3a).

use std::fmt;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::BackupError;
use super::input::Place;
use super::keys::{join_list, split_list};
use crate::key::{DataKey, KeyId};

/// At most this many recipient slots in one backup.
pub const MAX_RECIPIENT_SLOTS: usize = 16;

/// Identity and recipient files are read up to this many bytes.
const MAX_FILE_LEN: u64 = 1 << 20;

/// The plaintext of a slot is at most this long (the key's base64 and a line feed is 45 bytes).
const MAX_SLOT_PLAINTEXT: u64 = 1024;

/// One recipient: its text as age spells it, and the parsed key.
struct Recipient {
    text: String,
    inner: Box<dyn age::Recipient + Send + Sync>,
}

/// The age recipients a backup's key is wrapped to: X25519 (`age1...`) and SSH
/// (`ssh-ed25519 ...`, `ssh-rsa ...`) public keys, as `age -r` and `age -R` take them.
///
/// ```
/// use strongbox::backup::Recipients;
///
/// let recipients = Recipients::new()
///     .with("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")?;
/// assert_eq!(recipients.len(), 1);
/// # Ok::<(), strongbox::backup::BackupError>(())
/// ```
#[derive(Default)]
pub struct Recipients {
    list: Vec<Recipient>,
}

impl Recipients {
    /// No recipient.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the recipient `text` (`age1...`, `ssh-ed25519 AAAA... [comment]` or
    /// `ssh-rsa AAAA... [comment]`); anything else is [`BackupError::InvalidRecipient`].
    pub fn with(mut self, text: &str) -> Result<Self, BackupError> {
        self.list.push(parse_recipient(text.trim())?);
        Ok(self)
    }

    /// Adds every recipient of a recipients file (`age -R`): one per line; empty lines and
    /// lines starting with `#` are skipped. A file of no recipient is
    /// [`BackupError::InvalidRecipient`].
    pub fn with_file(mut self, path: impl AsRef<Path>) -> Result<Self, BackupError> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let before = self.list.len();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let recipient = parse_recipient(line).map_err(|_| BackupError::InvalidRecipient {
                what: format!("{} line {}", super::printable_path(path), number + 1),
            })?;
            self.list.push(recipient);
        }
        if self.list.len() == before {
            return Err(BackupError::InvalidRecipient {
                what: format!("{} (no recipient in it)", super::printable_path(path)),
            });
        }
        Ok(self)
    }

    /// The number of recipients.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is no recipient.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The recipients, as they were given.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|r| r.text.as_str())
    }
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.texts()).finish()
    }
}

fn parse_recipient(text: &str) -> Result<Recipient, BackupError> {
    let inner: Box<dyn age::Recipient + Send + Sync> = if text.starts_with("age1") {
        Box::new(
            text.parse::<age::x25519::Recipient>()
                .map_err(|_| invalid(text))?,
        )
    } else if text.starts_with("ssh-ed25519 ") || text.starts_with("ssh-rsa ") {
        Box::new(
            text.parse::<age::ssh::Recipient>()
                .map_err(|_| invalid(text))?,
        )
    } else {
        return Err(invalid(text));
    };
    Ok(Recipient {
        text: text.to_string(),
        inner,
    })
}

/// A public key may be named in the error (cut, and made printable); anything else (a secret
/// key given by mistake) is not echoed.
fn invalid(text: &str) -> BackupError {
    let what = if text.starts_with("age1") || text.starts_with("ssh-") {
        let shown: String = text.chars().take(80).collect();
        format!("\"{}\"", super::printable(&shown))
    } else {
        "not an age1..., ssh-ed25519 or ssh-rsa public key (the text is not shown)".to_string()
    };
    BackupError::InvalidRecipient { what }
}

/// A public-key file or an identity file, read up to 1 MiB.
fn read_text(path: &Path) -> Result<Zeroizing<String>, BackupError> {
    let io_err = |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::fs::open_regular(path).map_err(io_err)?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(io_err)?;
    Ok(text)
}

/// The age identities that open recipient slots: the contents of age identity files
/// (`AGE-SECRET-KEY-1...` lines, as `age-keygen` writes them, or such a file encrypted with a
/// passphrase by `age -p`) and of OpenSSH private key files (`ssh-ed25519`, `ssh-rsa`, possibly
/// passphrase-protected). A passphrase is asked through the [`age::Callbacks`] given to
/// [`with_file_prompting`](Self::with_file_prompting).
///
/// `Debug` names the files, never a key.
#[derive(Default)]
pub struct Identities {
    list: Mutex<Vec<Box<dyn age::Identity + Send>>>,
    files: Vec<PathBuf>,
}

impl Identities {
    /// No identity.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the identities of the file `path`; a passphrase-protected file is refused when
    /// it is used ([`with_file_prompting`](Self::with_file_prompting) asks for the
    /// passphrase).
    pub fn with_file(self, path: impl AsRef<Path>) -> Result<Self, BackupError> {
        self.with_file_prompting(path, age::NoCallbacks)
    }

    /// Adds the identities of the file `path`, asking `callbacks` for the passphrase of a
    /// protected one when it is first needed. A file that is no identity file is
    /// [`BackupError::InvalidIdentity`], naming the file and never its content.
    pub fn with_file_prompting(
        mut self,
        path: impl AsRef<Path>,
        callbacks: impl age::Callbacks,
    ) -> Result<Self, BackupError> {
        let path = path.as_ref();
        let found = read_identities(path, callbacks)?;
        self.list
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .extend(found);
        self.files.push(path.to_path_buf());
        Ok(self)
    }

    /// Adds an identity made by the caller.
    pub fn with_identity(mut self, identity: Box<dyn age::Identity + Send>) -> Self {
        self.list
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .push(identity);
        self
    }

    /// Whether there is no identity.
    pub fn is_empty(&self) -> bool {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn read_identities(
    path: &Path,
    callbacks: impl age::Callbacks,
) -> Result<Vec<Box<dyn age::Identity + Send>>, BackupError> {
    let bad = || BackupError::InvalidIdentity {
        path: path.to_path_buf(),
    };
    let name = Some(path.to_string_lossy().into_owned());
    let bytes = {
        let mut file = crate::fs::open_regular(path).map_err(|source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut bytes = Zeroizing::new(Vec::new());
        (&mut file)
            .take(MAX_FILE_LEN)
            .read_to_end(&mut bytes)
            .map_err(|source| BackupError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        bytes
    };
    if bytes.starts_with(b"age-encryption.org/v1\n") {
        let encrypted = age::encrypted::Identity::from_buffer(
            io::Cursor::new(bytes.to_vec()),
            name,
            callbacks,
            None,
        )
        .map_err(|_| bad())?
        .ok_or_else(bad)?;
        return Ok(vec![Box::new(encrypted)]);
    }
    if bytes.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----")
        || bytes.starts_with(b"-----BEGIN RSA PRIVATE KEY-----")
    {
        let identity =
            age::ssh::Identity::from_buffer(BufReader::new(&bytes[..]), name).map_err(|_| bad())?;
        if matches!(identity, age::ssh::Identity::Unsupported(_)) {
            return Err(bad());
        }
        return Ok(vec![Box::new(identity.with_callbacks(callbacks))]);
    }
    let file = age::IdentityFile::from_buffer(BufReader::new(&bytes[..])).map_err(|_| bad())?;
    let found = file.into_identities().map_err(|_| bad())?;
    if found.is_empty() {
        return Err(bad());
    }
    Ok(found.into_iter().map(|i| i as _).collect())
}

/// The recipient-slots extension: each slot the key's text encrypted to one recipient.
pub(crate) fn wrap_to(key: &DataKey, recipients: &Recipients) -> Result<Vec<u8>, BackupError> {
    let slots = seal_all(key, recipients)?;
    if slots.len() > MAX_RECIPIENT_SLOTS {
        return Err(BackupError::TooManyKeyCopies);
    }
    Ok(join_list(&slots))
}

/// A slot for each recipient.
pub(crate) fn seal_all(
    key: &DataKey,
    recipients: &Recipients,
) -> Result<Vec<Vec<u8>>, BackupError> {
    recipients
        .list
        .iter()
        .map(|r| seal(key, &*r.inner))
        .collect()
}

/// One slot: an age file to `recipient` of the key's base64 and a line feed.
pub(crate) fn seal(key: &DataKey, recipient: &dyn age::Recipient) -> Result<Vec<u8>, BackupError> {
    let fail = |e: &dyn fmt::Display| BackupError::RecipientWrap {
        reason: e.to_string(),
    };
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient)).map_err(|e| fail(&e))?;
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).map_err(|e| fail(&e))?;
    let text = Zeroizing::new(format!("{}\n", key.to_base64().expose_secret()));
    io::Write::write_all(&mut writer, text.as_bytes()).map_err(|e| fail(&e))?;
    writer.finish().map_err(|e| fail(&e))?;
    Ok(out)
}

/// Decodes the recipient-slots extension; `None` if it is malformed: a count of 0 or over
/// [`MAX_RECIPIENT_SLOTS`], a length past the end, bytes after the last slot, or a slot that
/// is not an age file (its header does not parse).
pub fn parse_slots(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let slots = split_list(bytes, MAX_RECIPIENT_SLOTS)?;
    slots
        .into_iter()
        .map(|slot| {
            age::Decryptor::new_buffered(slot).ok()?;
            Some(slot.to_vec())
        })
        .collect()
}

/// The kinds of the recipient stanzas of a slot (`X25519`, `ssh-ed25519 TAG`, `ssh-rsa TAG`:
/// the SSH tag is the first 4 bytes of the SHA-256 of the public key, in the age file's
/// base64), read from its header without any key. The random "grease" stanzas age adds
/// (kinds ending in `-grease`) are left out.
pub fn slot_stanzas(slot: &[u8]) -> Vec<String> {
    let header_end = slot
        .windows(4)
        .position(|w| w == b"\n---")
        .unwrap_or(slot.len());
    String::from_utf8_lossy(&slot[..header_end])
        .lines()
        .filter_map(|line| line.strip_prefix("-> "))
        .map(|stanza| match stanza.split(' ').collect::<Vec<_>>()[..] {
            ["X25519", ..] => "X25519".to_string(),
            [kind @ ("ssh-ed25519" | "ssh-rsa"), tag, ..] => format!("{kind} {tag}"),
            [kind, ..] => super::printable(kind).into_owned(),
            [] => String::new(),
        })
        .filter(|kind| !kind.ends_with("-grease"))
        .collect()
}

/// The backup key `key_id` from the first slot one of `identities` opens.
///
/// Errors: [`BackupError::Tampered`] (header) when a slot opens to anything but the key
/// `key_id`, or an identity's stanza opens and the slot then fails to authenticate;
/// [`BackupError::NoMatchingIdentity`] when no slot opens.
pub(crate) fn open_slots(
    slots: &[Vec<u8>],
    identities: &Identities,
    key_id: KeyId,
    place: &Place,
) -> Result<DataKey, BackupError> {
    let list = identities.list.lock().unwrap_or_else(|e| e.into_inner());
    let tampered = || BackupError::Tampered {
        position: place.position,
        path: place.path.clone(),
        segment: None,
    };
    let mut failure = None;
    for slot in slots {
        let Ok(decryptor) = age::Decryptor::new_buffered(&slot[..]) else {
            return Err(tampered());
        };
        match decryptor.decrypt(list.iter().map(|i| &**i as &dyn age::Identity)) {
            Ok(reader) => {
                let key = read_key(reader).ok_or_else(tampered)?;
                return if key.id() == key_id {
                    Ok(key)
                } else {
                    Err(tampered())
                };
            }
            Err(age::DecryptError::NoMatchingKeys) => {}
            Err(
                age::DecryptError::DecryptionFailed
                | age::DecryptError::InvalidHeader
                | age::DecryptError::InvalidMac,
            ) => return Err(tampered()),
            Err(e) => {
                failure.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Err(BackupError::NoMatchingIdentity {
        position: place.position,
        path: place.path.clone(),
        key_id,
        slots: slots.len(),
        cause: failure,
    })
}

/// The key text a slot holds: at most 1 KiB, a data-key file's text.
fn read_key(reader: impl Read) -> Option<DataKey> {
    let mut text = Zeroizing::new(Vec::new());
    reader
        .take(MAX_SLOT_PLAINTEXT + 1)
        .read_to_end(&mut text)
        .ok()?;
    if text.len() as u64 > MAX_SLOT_PLAINTEXT {
        return None;
    }
    let text = std::str::from_utf8(&text).ok()?;
    DataKey::from_base64(text).ok()
}

/// The recipient-slots extension (kind [`EXT_RECIPIENT_SLOTS`](super::EXT_RECIPIENT_SLOTS))
/// wrapping `key` to every recipient, for a stream written with
/// [`BackupWriter`](crate::BackupWriter) directly (backups add it themselves).
pub fn slots_extension(
    key: &DataKey,
    recipients: &Recipients,
) -> Result<crate::stream::Extension, BackupError> {
    Ok(crate::stream::Extension::new(
        super::EXT_RECIPIENT_SLOTS,
        wrap_to(key, recipients)?,
    ))
}

/// The key of the stream whose (not yet authenticated) header is `header`, from a recipient
/// slot one of `identities` opens; errors name the stream `name`. Authenticate the header with
/// the key next ([`RestoreReader::from_header`](crate::RestoreReader::from_header)).
///
/// Errors: [`BackupError::MalformedRecipientSlots`] (no valid slots in an encrypted stream),
/// [`BackupError::NoMatchingIdentity`], [`BackupError::Tampered`].
pub fn key_from_slots(
    header: &crate::stream::Header,
    identities: &Identities,
    name: &Path,
) -> Result<DataKey, BackupError> {
    let place = Place::new(0, name);
    let malformed = |reason| BackupError::MalformedRecipientSlots {
        position: 0,
        path: name.to_path_buf(),
        reason,
    };
    let key_id = header
        .key_id()
        .ok_or_else(|| malformed("is present in an unencrypted stream"))?;
    let bytes = header
        .extension(super::EXT_RECIPIENT_SLOTS)
        .ok_or_else(|| malformed("is missing"))?;
    let slots = parse_slots(bytes).ok_or_else(|| malformed("is not a valid list of age files"))?;
    open_slots(&slots, identities, key_id, &place)
}
