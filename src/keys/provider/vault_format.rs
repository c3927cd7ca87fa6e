//! What the Vault / OpenBao Transit provider reads and writes without talking to Vault, compiled
//! with or without the `vault-transit` feature: the `vault-transit://` URI ([`VaultTransitUri`])
//! and the sealed secret of scheme 3 (`docs/KEYBLOB.md`), so that a Transit key blob parses (and
//! is refused as such) in every build.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ProviderError;
use super::uri_query::{self, DEFAULT_TIMEOUT, is_loopback, parse_timeout, valid_host};

/// The URI scheme of a Vault / OpenBao Transit key.
pub(crate) const URI_SCHEME: &str = "vault-transit://";
/// Longest mount path or key name (each is one length byte in the sealed secret).
const MAX_NAME_LEN: usize = 255;
/// Largest Transit ciphertext (decoded) a sealed secret holds.
pub(crate) const MAX_CIPHERTEXT_LEN: usize = 4096;

/// A Vault / OpenBao Transit key, as configured:
/// `vault-transit://HOST:PORT/MOUNT/KEY[?tls=false][&ca_file=PATH][&token_file=PATH][&timeout=SECS]`.
///
/// - `HOST` is a DNS name, an IPv4 address or a bracketed IPv6 address; `PORT` is required.
/// - `MOUNT` is the Transit engine's mount path (one or more `/`-separated segments, e.g.
///   `transit` or `team/transit`), `KEY` the Transit key's name (the last segment). Segments
///   are letters, digits, `_`, `-` and `.` (not `.` or `..` alone), at most 255 bytes per name.
/// - HTTPS is used unless `tls=false`, which is accepted only for a loopback host (`localhost`,
///   `127.0.0.0/8`, `::1`): plain HTTP would send the token and the secrets in the clear.
/// - `ca_file=PATH`: PEM certificates to trust instead of the built-in Mozilla roots (a private
///   CA); `token_file=PATH`: the file holding the token (otherwise `VAULT_TOKEN_FILE`, else
///   `VAULT_TOKEN`); `timeout=SECS`: the time limit of one request, 1 to 300 s, default 10.
///   Values are taken as written (no percent-decoding) and may not contain `&` or `#`.
///
/// A token never goes in the URI: userinfo (`user@host`) and a `token` parameter are refused.
/// Error messages never quote the URI being parsed. `Display` gives the canonical form.
///
/// ```
/// use strongbox::keys::VaultTransitUri;
///
/// let uri: VaultTransitUri = "vault-transit://127.0.0.1:8200/transit/db-keys?tls=false".parse()?;
/// assert_eq!((uri.mount(), uri.key_name(), uri.uses_tls()), ("transit", "db-keys", false));
/// assert!("vault-transit://vault.example:8200/transit/db-keys?tls=false"
///     .parse::<VaultTransitUri>()
///     .is_err());
/// # Ok::<(), strongbox::keys::ProviderError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VaultTransitUri {
    host: String,
    port: u16,
    mount: String,
    key: String,
    tls: bool,
    ca_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    timeout: Duration,
}

impl VaultTransitUri {
    /// Parses a `vault-transit://` URI.
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        let bad = |reason| ProviderError::KmsUri { reason };
        let (rest, query) =
            uri_query::split(text, URI_SCHEME, "it does not start with vault-transit://")?;
        let (authority, path) = rest
            .split_once('/')
            .ok_or(bad("no /MOUNT/KEY path after HOST:PORT"))?;
        let (host, port) = parse_authority(authority)?;
        let (mount, key) = path
            .rsplit_once('/')
            .ok_or(bad("the path must be /MOUNT/KEY"))?;
        if !mount.split('/').all(valid_segment) || !valid_segment(key) {
            return Err(bad(
                "mount and key segments must be letters, digits, '_', '-' or '.' (not '.' or '..')",
            ));
        }
        if mount.len() > MAX_NAME_LEN || key.len() > MAX_NAME_LEN {
            return Err(bad(
                "the mount path and the key name are at most 255 bytes each",
            ));
        }
        let uri = Self {
            host: host.to_string(),
            port,
            mount: mount.to_string(),
            key: key.to_string(),
            tls: true,
            ca_file: None,
            token_file: None,
            timeout: DEFAULT_TIMEOUT,
        };
        uri_query::with_query(uri, query)
    }

    /// The host: a DNS name, an IPv4 address, or an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Transit engine's mount path (e.g. `transit`).
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The Transit key's name.
    pub fn key_name(&self) -> &str {
        &self.key
    }

    /// Whether requests use HTTPS (`false` only with `tls=false` on a loopback host).
    pub fn uses_tls(&self) -> bool {
        self.tls
    }

    /// The PEM file of trusted certificates (`ca_file=`), if given.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The token file (`token_file=`), if given.
    pub fn token_file(&self) -> Option<&Path> {
        self.token_file.as_deref()
    }

    /// The time limit of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The URL of Transit operation `op` (`encrypt`, `decrypt`, `rewrap`, `keys`) on the key.
    #[cfg_attr(not(feature = "vault-transit"), allow(dead_code))]
    pub(crate) fn url(&self, op: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!(
            "{scheme}://{}:{}/v1/{}/{op}/{}",
            self.host, self.port, self.mount, self.key
        )
    }
}

uri_query::uri_traits!(VaultTransitUri);

impl uri_query::Params for VaultTransitUri {
    const KNOWN: &'static [&'static str] = &["tls", "ca_file", "token_file", "timeout"];

    fn unknown(name: &str) -> &'static str {
        match name {
            "token" => {
                "a token never goes in the URI: use VAULT_TOKEN, VAULT_TOKEN_FILE or ?token_file="
            }
            _ => "unknown parameter (known: tls, ca_file, token_file, timeout)",
        }
    }

    fn set(&mut self, index: usize, value: &str) -> Result<(), ProviderError> {
        match index {
            0 => self.tls = parse_tls(value)?,
            1 => self.ca_file = Some(PathBuf::from(value)),
            2 => self.token_file = Some(PathBuf::from(value)),
            _ => self.timeout = parse_timeout(value)?,
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ProviderError> {
        let bad = |reason| ProviderError::KmsUri { reason };
        if !self.tls && !is_loopback(&self.host) {
            return Err(bad(
                "tls=false is accepted only for a loopback host (localhost, 127.0.0.0/8, [::1])",
            ));
        }
        if !self.tls && self.ca_file.is_some() {
            return Err(bad("ca_file needs TLS (it cannot go with tls=false)"));
        }
        Ok(())
    }
}

/// The canonical form: parameters that differ from the defaults, in a fixed order.
impl fmt::Display for VaultTransitUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{URI_SCHEME}{}:{}/{}/{}",
            self.host, self.port, self.mount, self.key
        )?;
        let mut params = Vec::new();
        if !self.tls {
            params.push("tls=false".to_string());
        }
        if let Some(path) = &self.ca_file {
            params.push(format!("ca_file={}", path.display()));
        }
        if let Some(path) = &self.token_file {
            params.push(format!("token_file={}", path.display()));
        }
        uri_query::write_query(f, params, self.timeout)
    }
}

/// `HOST:PORT`: the host (brackets kept for IPv6) and the port.
fn parse_authority(authority: &str) -> Result<(&str, u16), ProviderError> {
    let bad = |reason| ProviderError::KmsUri { reason };
    if authority.contains('@') {
        return Err(bad(
            "user information (user@host) is not allowed: a token never goes in the URI",
        ));
    }
    let (host, port_text) = authority
        .rsplit_once(':')
        .ok_or(bad("HOST:PORT is required (e.g. vault.example:8200)"))?;
    let port = match port_text.parse::<u16>() {
        Ok(port) if port != 0 && port_text.bytes().all(|b| b.is_ascii_digit()) => port,
        _ => return Err(bad("the port must be a number from 1 to 65535")),
    };
    if !valid_host(host) {
        return Err(bad(
            "the host must be a DNS name, an IPv4 address or a bracketed IPv6 address",
        ));
    }
    Ok((host, port))
}

fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn parse_tls(value: &str) -> Result<bool, ProviderError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ProviderError::KmsUri {
            reason: "tls must be true or false",
        }),
    }
}

/// The parts of a scheme-3 sealed secret (`docs/KEYBLOB.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransitSealed<'a> {
    /// The Transit mount path.
    pub(crate) mount: &'a str,
    /// The Transit key's name.
    pub(crate) key: &'a str,
    /// The key version that encrypted the secret (the `N` of `vault:vN:`).
    pub(crate) version: u32,
    /// The Transit ciphertext after `vault:vN:`, base64-decoded.
    pub(crate) ciphertext: &'a [u8],
}

impl<'a> TransitSealed<'a> {
    /// The sealed secret's bytes: `m ‖ mount ‖ k ‖ key ‖ version ‖ c ‖ ciphertext`; `None` if a
    /// field is out of its range.
    #[cfg_attr(not(feature = "vault-transit"), allow(dead_code))]
    pub(crate) fn to_bytes(&self) -> Option<Vec<u8>> {
        let m = u8::try_from(self.mount.len()).ok().filter(|m| *m > 0)?;
        let k = u8::try_from(self.key.len()).ok().filter(|k| *k > 0)?;
        let c = u16::try_from(self.ciphertext.len()).ok()?;
        if c == 0 || usize::from(c) > MAX_CIPHERTEXT_LEN || self.version == 0 {
            return None;
        }
        Some(
            [
                &[m][..],
                self.mount.as_bytes(),
                &[k],
                self.key.as_bytes(),
                &self.version.to_be_bytes(),
                &c.to_be_bytes(),
                self.ciphertext,
            ]
            .concat(),
        )
    }

    /// Parses a sealed secret, or says why its layout is wrong.
    pub(crate) fn parse(sealed: &'a [u8]) -> Result<Self, &'static str> {
        let truncated = "truncated Vault Transit sealed secret";
        let (mount, rest) = take_name(sealed).ok_or(truncated)?;
        let (key, rest) = take_name(rest).ok_or(truncated)?;
        if !mount.split('/').all(valid_segment) || !valid_segment(key) {
            return Err("invalid Transit mount or key name in the sealed secret");
        }
        let (version, rest) = rest.split_first_chunk::<4>().ok_or(truncated)?;
        let version = u32::from_be_bytes(*version);
        if version == 0 {
            return Err("Transit key version 0 in the sealed secret");
        }
        Ok(Self {
            mount,
            key,
            version,
            ciphertext: super::last_ciphertext(rest, MAX_CIPHERTEXT_LEN)?,
        })
    }

    /// The ciphertext as Transit writes it: `vault:vN:` and the standard padded base64.
    #[cfg_attr(not(feature = "vault-transit"), allow(dead_code))]
    pub(crate) fn transit_ciphertext(&self) -> String {
        format!(
            "vault:v{}:{}",
            self.version,
            crate::base64::encode(self.ciphertext, crate::base64::STANDARD)
        )
    }
}

/// A length byte (1 or more) and that many bytes of UTF-8, and what follows.
fn take_name(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first()?;
    let len = usize::from(*len);
    if len == 0 || rest.len() < len {
        return None;
    }
    let (name, rest) = rest.split_at(len);
    Some((std::str::from_utf8(name).ok()?, rest))
}

/// Splits a Transit ciphertext `vault:vN:BASE64` into the version and the decoded bytes.
#[cfg_attr(not(feature = "vault-transit"), allow(dead_code))]
pub(crate) fn split_transit_ciphertext(text: &str) -> Option<(u32, Vec<u8>)> {
    let rest = text.strip_prefix("vault:v")?;
    let (version, encoded) = rest.split_once(':')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = version.parse::<u32>().ok().filter(|v| *v > 0)?;
    let mut bytes = vec![0u8; encoded.len() / 4 * 3];
    let len = crate::base64::decode(encoded.as_bytes(), &mut bytes).ok()?;
    bytes.truncate(len);
    (!bytes.is_empty() && bytes.len() <= MAX_CIPHERTEXT_LEN).then_some((version, bytes))
}

#[cfg(test)]
mod tests;
