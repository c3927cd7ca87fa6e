//! The Vault / OpenBao Transit provider: a [`Sealer`] whose key never leaves Vault.
//!
//! Scheme 3 of `docs/KEYBLOB.md`. For each blob the envelope draws a fresh 32-byte secret `S`;
//! this provider sends `S` to Transit `encrypt` with the blob header as the `context` of a
//! derived key, and stores what Transit returns (mount, key name, key version, ciphertext) as
//! the sealed secret. Opening a blob is one Transit `decrypt` with the same context; `key
//! rewrap` is one Transit `rewrap` (the secret is not sent) and one `decrypt`.
//!
//! Transit's `associated_data` (AEAD keys) would bind the header too, but OpenBao's `rewrap`
//! refuses ciphertexts made with it (checked with OpenBao 2.7.2); a derived key's `context` is
//! accepted by `encrypt`, `decrypt` and `rewrap` alike. Transit silently ignores a context given
//! for a key that is not derived, so before its first `encrypt` the provider reads the key's
//! configuration and refuses one created without `derived=true`.
//!
//! HTTP is ureq (blocking) with rustls on ring: every request bounded by the URI's timeout,
//! a refused or timed-out connection tried at most [`ATTEMPTS`] times (a TLS failure once), no
//! redirects, no proxy. The token
//! (`X-Vault-Token`) is read for every request, from `?token_file=`, else `VAULT_TOKEN_FILE`,
//! else `VAULT_TOKEN`; no token, secret or response body appears in an error, `Debug` or log.

use std::fmt;
use std::io::Read as _;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::vault_format::{TransitSealed, VaultTransitUri, split_transit_ciphertext};
use super::{MasterKeyProvider, Protection, ProviderError, SealContext, Sealer, private};
use crate::base64::{STANDARD, encode};
use crate::key::KEY_LEN;
use crate::keys::envelope::Scheme;

/// How many times a request is tried when the server cannot be reached.
const ATTEMPTS: u32 = 3;
/// Pause before the second attempt (doubled before the third).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Largest response body read.
const MAX_RESPONSE_LEN: u64 = 64 * 1024;
/// Largest CA file read.
const MAX_CA_FILE_LEN: u64 = 1 << 20;
/// Largest token file read.
const MAX_TOKEN_LEN: u64 = 4096;

/// Protects data keys with a Vault or OpenBao Transit key: the master key never leaves Vault.
///
/// Configured by a [`VaultTransitUri`] (`vault-transit://HOST:PORT/MOUNT/KEY`). The Transit key
/// must be a derived key (`bao write transit/keys/NAME derived=true`), whose `context` binds
/// each sealed secret to its blob header (and so to the database's key id). The token needs the
/// `update` capability on `MOUNT/encrypt/KEY`, `MOUNT/decrypt/KEY` and `MOUNT/rewrap/KEY`, and
/// `read` on `MOUNT/keys/KEY`.
///
/// Constructing it reads and sends nothing. Each database key opened costs one Transit request
/// (`decrypt`), each key protected two the first time (`keys`, to check the key is derived, then
/// `encrypt`) and one after; [`VaultTransitProvider::requests`] counts them.
pub struct VaultTransitProvider {
    uri: VaultTransitUri,
    shown: String,
    agent: OnceLock<ureq::Agent>,
    derived: OnceLock<()>,
    requests: AtomicU64,
}

impl VaultTransitProvider {
    /// The provider of the Transit key `uri` names.
    pub fn new(uri: VaultTransitUri) -> Self {
        Self {
            shown: uri.to_string(),
            uri,
            agent: OnceLock::new(),
            derived: OnceLock::new(),
            requests: AtomicU64::new(0),
        }
    }

    /// The provider of the Transit key named by the URI text `uri` ([`VaultTransitUri::parse`]).
    pub fn from_uri(uri: &str) -> Result<Self, ProviderError> {
        Ok(Self::new(VaultTransitUri::parse(uri)?))
    }

    /// The Transit key's URI.
    pub fn uri(&self) -> &VaultTransitUri {
        &self.uri
    }

    /// How many HTTP requests this provider has sent to Vault (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The agent, built on first use (reading the `ca_file`, if any); a failure is not kept.
    fn agent(&self) -> Result<&ureq::Agent, ProviderError> {
        if let Some(agent) = self.agent.get() {
            return Ok(agent);
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = self.uri.ca_file() {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&self.ca_certs(path)?));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(self.uri.uses_tls())
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(self.uri.timeout()))
            .user_agent(concat!("strongbox/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .new_agent();
        Ok(self.agent.get_or_init(|| agent))
    }

    /// The certificates of the `ca_file`.
    fn ca_certs(&self, path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ProviderError> {
        let unreadable = |reason: String| ProviderError::KmsCaFile {
            uri: self.shown.clone(),
            path: path.to_path_buf(),
            reason,
        };
        let mut pem = Vec::new();
        crate::fs::open_regular(path)
            .and_then(|f| f.take(MAX_CA_FILE_LEN).read_to_end(&mut pem))
            .map_err(|e| unreadable(e.to_string()))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(unreadable("no PEM certificate in it".to_string()));
        }
        Ok(certs)
    }

    /// The token, read for every request (a token file may be renewed while the process runs).
    fn token(&self) -> Result<SecretString, ProviderError> {
        let error = |reason: String| ProviderError::KmsToken {
            uri: self.shown.clone(),
            reason,
        };
        let file = match self.uri.token_file() {
            Some(path) => Some(path.to_path_buf()),
            None => std::env::var_os("VAULT_TOKEN_FILE")
                .filter(|v| !v.is_empty())
                .map(Into::into),
        };
        let token = match file {
            Some(path) => {
                let mut text = Zeroizing::new(String::new());
                crate::fs::open_regular(&path)
                    .and_then(|f| f.take(MAX_TOKEN_LEN).read_to_string(&mut text))
                    .map_err(|e| error(format!("token file {}: {e}", path.display())))?;
                SecretString::from(text.trim())
            }
            None => match std::env::var("VAULT_TOKEN") {
                Ok(token) => SecretString::from(Zeroizing::new(token).trim()),
                Err(_) => return Err(error("no Vault token: set VAULT_TOKEN or VAULT_TOKEN_FILE, or give ?token_file= in the URI".to_string())),
            },
        };
        let valid = token.expose_secret().bytes().all(|b| b.is_ascii_graphic());
        if token.expose_secret().is_empty() || !valid {
            return Err(error(
                "the Vault token is empty or holds characters a token cannot have".to_string(),
            ));
        }
        Ok(token)
    }

    /// Sends one Transit request (`body` as JSON, or a GET without one) and returns the body of
    /// its successful response; transport failures are retried, refusals are not.
    fn call(&self, op: &str, body: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let agent = self.agent()?;
        let token = self.token()?;
        let url = self.uri.url(op);
        let (mut last, mut attempts) = (Failure::default(), 0);
        while attempts < ATTEMPTS {
            if attempts > 0 {
                std::thread::sleep(RETRY_PAUSE * attempts);
            }
            attempts += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = match body {
                Some(body) => agent
                    .post(&url)
                    .header("X-Vault-Token", token.expose_secret())
                    .header("X-Vault-Request", "true")
                    .content_type("application/json")
                    .send(body),
                None => agent
                    .get(&url)
                    .header("X-Vault-Token", token.expose_secret())
                    .header("X-Vault-Request", "true")
                    .call(),
            };
            match sent {
                Ok(response) => return self.answer(response),
                Err(e) => last = transport_reason(&e),
            }
            if !last.transient {
                break;
            }
        }
        Err(ProviderError::KmsUnreachable {
            uri: self.shown.clone(),
            attempts,
            reason: last.text,
        })
    }

    /// The body of a successful response, or the typed refusal its status and errors mean.
    fn answer(
        &self,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_LEN)
            .read_to_vec()
            .map(Zeroizing::new);
        let uri = self.shown.clone();
        match status {
            200 => body.map_err(|_| ProviderError::KmsBadResponse {
                uri,
                reason: "the response body could not be read",
            }),
            401 | 403 => Err(ProviderError::KmsAccessDenied { uri, status }),
            404 => Err(ProviderError::KmsKeyNotFound { uri }),
            _ => Err(refusal(uri, status, body.ok().as_deref().map(|b| &b[..]))),
        }
    }

    /// Parses the `data` of a successful response.
    fn data<'a, T: Deserialize<'a>>(&self, body: &'a [u8]) -> Result<T, ProviderError> {
        serde_json::from_slice::<Response<T>>(body)
            .map(|r| r.data)
            .map_err(|_| ProviderError::KmsBadResponse {
                uri: self.shown.clone(),
                reason: "not the JSON a Transit response has",
            })
    }

    /// Refuses a Transit key that is not derived (checked once per provider).
    fn check_derived(&self) -> Result<(), ProviderError> {
        if self.derived.get().is_some() {
            return Ok(());
        }
        let body = self.call("keys", None)?;
        let config: KeyConfig = self.data(&body)?;
        if !config.derived {
            return Err(ProviderError::KmsKeyNotDerived {
                uri: self.shown.clone(),
            });
        }
        let _ = self.derived.set(());
        Ok(())
    }

    /// The sealed secret of Transit's answer `ciphertext` (`vault:vN:BASE64`).
    fn sealed(&self, ciphertext: &str) -> Result<Vec<u8>, ProviderError> {
        let bad = |reason| ProviderError::KmsBadResponse {
            uri: self.shown.clone(),
            reason,
        };
        let (version, bytes) = split_transit_ciphertext(ciphertext).ok_or(bad(
            "the ciphertext is not vault:vN: and 1 to 4096 bytes of base64",
        ))?;
        TransitSealed {
            mount: self.uri.mount(),
            key: self.uri.key_name(),
            version,
            ciphertext: &bytes,
        }
        .to_bytes()
        .ok_or(bad("the ciphertext does not fit a key blob"))
    }

    /// The JSON body of a request on `ciphertext` under `context` (`decrypt`, `rewrap`).
    fn ciphertext_request(&self, sealed: &[u8], context: &SealContext<'_>) -> Vec<u8> {
        let parsed = TransitSealed::parse(sealed).expect("the envelope checked the layout");
        let request = CiphertextRequest {
            ciphertext: &parsed.transit_ciphertext(),
            context: &encode(context.header(), STANDARD),
        };
        serde_json::to_vec(&request).expect("strings serialize")
    }
}

impl MasterKeyProvider for VaultTransitProvider {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::Sealer(self))
    }
}

impl private::InCrate for VaultTransitProvider {}

impl Sealer for VaultTransitProvider {
    fn scheme(&self) -> Scheme {
        Scheme::VaultTransit
    }

    fn seal(
        &self,
        secret: &[u8; KEY_LEN],
        context: &SealContext<'_>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.check_derived()?;
        let plaintext = Zeroizing::new(encode(secret, STANDARD));
        let request = EncryptRequest {
            plaintext: &plaintext,
            context: &encode(context.header(), STANDARD),
        };
        let body = Zeroizing::new(serde_json::to_vec(&request).expect("strings serialize"));
        let answer = self.call("encrypt", Some(&body))?;
        let data: CiphertextData<'_> = self.data(&answer)?;
        self.sealed(data.ciphertext)
    }

    fn unseal(
        &self,
        sealed: &[u8],
        context: &SealContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let answer = self.call("decrypt", Some(&self.ciphertext_request(sealed, context)))?;
        let data: PlaintextData<'_> = self.data(&answer)?;
        let mut secret = Zeroizing::new(vec![0u8; data.plaintext.len() / 4 * 3]);
        let len = crate::base64::decode(data.plaintext.as_bytes(), &mut secret).map_err(|_| {
            ProviderError::KmsBadResponse {
                uri: self.shown.clone(),
                reason: "the plaintext is not base64",
            }
        })?;
        secret.truncate(len);
        Ok(secret)
    }

    /// The blob names this provider's mount and key (the host may differ: a blob opens through
    /// any address of the same Vault).
    fn recognizes(&self, sealed: &[u8]) -> bool {
        TransitSealed::parse(sealed)
            .is_ok_and(|s| s.mount == self.uri.mount() && s.key == self.uri.key_name())
    }

    fn rewrap(
        &self,
        sealed: &[u8],
        context: &SealContext<'_>,
    ) -> Result<Option<Vec<u8>>, ProviderError> {
        let old = TransitSealed::parse(sealed).expect("the envelope checked the layout");
        let answer = self.call("rewrap", Some(&self.ciphertext_request(sealed, context)))?;
        let data: CiphertextData<'_> = self.data(&answer)?;
        let new = self.sealed(data.ciphertext)?;
        let version = TransitSealed::parse(&new).map(|s| s.version);
        Ok((version != Ok(old.version)).then_some(new))
    }
}

impl fmt::Debug for VaultTransitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultTransitProvider")
            .field("uri", &self.shown)
            .field("requests", &self.requests())
            .finish()
    }
}

/// Why a request got no answer, and whether trying again may help.
#[derive(Default)]
struct Failure {
    text: String,
    transient: bool,
}

/// The failure of a request, from ureq's error (which holds no header or body). A refused
/// certificate or a bad response is not transient: it is reported at once.
fn transport_reason(error: &ureq::Error) -> Failure {
    use ureq::Error::{ConnectionFailed, HostNotFound, Io, Timeout};
    // rustls reports a refused certificate through the stream as `InvalidData`.
    let transient = match error {
        Io(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        ),
        _ => matches!(error, Timeout(_) | ConnectionFailed | HostNotFound),
    };
    let text = match error {
        Timeout(_) => "timed out".to_string(),
        other => other.to_string(),
    };
    Failure { text, transient }
}

/// The typed error of a refused request, classified by Transit's error messages (never shown).
fn refusal(uri: String, status: u16, body: Option<&[u8]>) -> ProviderError {
    let errors = body
        .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok())
        .map(|b| b.errors.join("\n").to_ascii_lowercase())
        .unwrap_or_default();
    if errors.contains("message authentication failed") {
        ProviderError::KmsWrongContext { uri }
    } else if errors.contains("disallowed by policy") || errors.contains("min_decryption_version") {
        ProviderError::KmsKeyVersionRetired { uri }
    } else if errors.contains("key not found") || errors.contains("does not support encryption") {
        ProviderError::KmsKeyNotFound { uri }
    } else {
        ProviderError::KmsRefused { uri, status }
    }
}

/// `{"data": ...}` of a Transit response.
#[derive(Deserialize)]
struct Response<T> {
    data: T,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

#[derive(Deserialize)]
struct KeyConfig {
    #[serde(default)]
    derived: bool,
}

#[derive(Deserialize)]
struct CiphertextData<'a> {
    #[serde(borrow)]
    ciphertext: &'a str,
}

#[derive(Deserialize)]
struct PlaintextData<'a> {
    #[serde(borrow)]
    plaintext: &'a str,
}

#[derive(Serialize)]
struct EncryptRequest<'a> {
    plaintext: &'a str,
    context: &'a str,
}

#[derive(Serialize)]
struct CiphertextRequest<'a> {
    ciphertext: &'a str,
    context: &'a str,
}

#[cfg(test)]
mod tests {
    use super::{ProviderError, VaultTransitProvider, refusal};

    #[test]
    fn refusals_are_classified_by_transit_errors_never_quoted() {
        let uri = || "vault-transit://v:8200/transit/db".to_string();
        let classify = |status, body: &str| refusal(uri(), status, Some(body.as_bytes()));
        let body = |e: &str| format!(r#"{{"errors":["{e}","SECRET-DETAIL"]}}"#);
        assert!(matches!(
            classify(400, &body("cipher: message authentication failed")),
            ProviderError::KmsWrongContext { .. }
        ));
        assert!(matches!(
            classify(
                400,
                &body("ciphertext or signature version is disallowed by policy (too old)")
            ),
            ProviderError::KmsKeyVersionRetired { .. }
        ));
        assert!(matches!(
            classify(400, &body("encryption key not found")),
            ProviderError::KmsKeyNotFound { .. }
        ));
        for (status, text) in [(400, body("something else")), (503, "not json".to_string())] {
            let err = classify(status, &text);
            assert!(matches!(err, ProviderError::KmsRefused { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "vault-transit://v:8200/transit/db: the KMS refused the request (HTTP {status})"
                )
            );
        }
        assert!(!format!("{:?}", classify(400, &body("x"))).contains("SECRET-DETAIL"));
    }

    #[test]
    fn debug_shows_the_uri_and_the_request_count_only() {
        let provider =
            VaultTransitProvider::from_uri("vault-transit://127.0.0.1:1/transit/db?tls=false")
                .unwrap();
        assert_eq!(
            format!("{provider:?}"),
            "VaultTransitProvider { uri: \"vault-transit://127.0.0.1:1/transit/db?tls=false\", \
             requests: 0 }"
        );
    }
}
