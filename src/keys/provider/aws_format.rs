//! What the AWS KMS provider reads and writes without talking to AWS, compiled with or without
//! the `aws-kms` feature: the `aws-kms://` URI ([`AwsKmsUri`]), the sealed secret of scheme 4
//! (`docs/KEYBLOB.md`) and the encryption context, so that an AWS KMS key blob parses (and is
//! refused as such) in every build.

use std::fmt;
use std::time::Duration;

use super::ProviderError;
use super::uri_query::{self, DEFAULT_TIMEOUT, is_loopback, parse_timeout, valid_host};

/// The URI scheme of an AWS KMS key.
pub(crate) const URI_SCHEME: &str = "aws-kms://";
/// Longest key ARN a sealed secret records (one length byte).
const MAX_ARN_LEN: usize = 255;
/// Largest KMS ciphertext blob a sealed secret holds (KMS's own limit for `CiphertextBlob`).
pub(crate) const MAX_CIPHERTEXT_LEN: usize = 6144;
/// Encryption-context key holding the data key's id (32 lower-case hexadecimal digits).
pub(crate) const CONTEXT_KEY_ID: &str = "strongbox:key-id";
/// Encryption-context key holding the blob header (standard padded base64 of its 42 bytes).
pub(crate) const CONTEXT_HEADER: &str = "strongbox:blob-header";

/// An AWS KMS key, as configured:
/// `aws-kms://KEY[?region=REGION][&endpoint=URL][&timeout=SECS]`.
///
/// - `KEY` is a key id (`1234abcd-12ab-34cd-56ef-1234567890ab`, `mrk-...`), a key ARN
///   (`arn:aws:kms:us-east-1:111122223333:key/1234abcd-...`), an alias name (`alias/db-keys`)
///   or an alias ARN (`arn:aws:kms:us-east-1:111122223333:alias/db-keys`), as AWS KMS's `KeyId`
///   parameter takes them.
/// - `region=REGION` (`us-east-1`): the region to call; otherwise the ARN's region, else the
///   standard AWS region chain (`AWS_REGION`, the profile). A `region` that contradicts the
///   ARN's is refused.
/// - `endpoint=URL`: another endpoint than AWS's (a VPC endpoint, a local KMS for tests):
///   `https://HOST[:PORT]`, or `http://` for a loopback host only (`localhost`, `127.0.0.0/8`,
///   `[::1]`); no path, user information or query.
/// - `timeout=SECS`: the time limit of one attempt, 1 to 300 s, default 10.
///
/// Values are taken as written (no percent-decoding) and may not contain `&` or `#`.
/// Credentials never go in the URI: they come from the standard AWS credential chain. Error
/// messages never quote the URI being parsed. `Display` gives the canonical form.
///
/// ```
/// use strongbox::keys::AwsKmsUri;
///
/// let uri: AwsKmsUri = "aws-kms://alias/db-keys?region=eu-west-1".parse()?;
/// assert_eq!((uri.key(), uri.region()), ("alias/db-keys", Some("eu-west-1")));
/// let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// let uri = AwsKmsUri::parse(&format!("aws-kms://{arn}"))?;
/// assert_eq!(uri.region(), Some("us-east-1"));
/// assert!("aws-kms://alias/k?endpoint=http://kms.example".parse::<AwsKmsUri>().is_err());
/// # Ok::<(), strongbox::keys::ProviderError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKmsUri {
    key: String,
    region: Option<String>,
    region_given: bool,
    endpoint: Option<String>,
    timeout: Duration,
}

impl AwsKmsUri {
    /// Parses an `aws-kms://` URI.
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        let bad = |reason| ProviderError::KmsUri { reason };
        let (key, query) = uri_query::split(text, URI_SCHEME, "it does not start with aws-kms://")?;
        let key_id = KeyName::parse(key).ok_or(bad(
            "the key must be a key id, a key ARN, alias/NAME or an alias ARN",
        ))?;
        let uri = Self {
            key: key.to_string(),
            region: key_id.region.map(str::to_string),
            region_given: false,
            endpoint: None,
            timeout: DEFAULT_TIMEOUT,
        };
        uri_query::with_query(uri, query)
    }

    fn set_region(&mut self, region: &str) -> Result<(), ProviderError> {
        if !valid_region(region) {
            return Err(ProviderError::KmsUri {
                reason: "the region must be letters, digits and '-' (e.g. us-east-1)",
            });
        }
        if self.region.as_deref().is_some_and(|arn| arn != region) {
            return Err(ProviderError::KmsUri {
                reason: "the region differs from the key ARN's region",
            });
        }
        self.region = Some(region.to_string());
        self.region_given = true;
        Ok(())
    }

    /// The key as written: a key id, key ARN, alias name or alias ARN.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The region to call: `?region=`, else the ARN's; `None`: the standard region chain.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The endpoint URL (`?endpoint=`), if given.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The time limit of one attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a sealed secret recording the key ARN `arn` can be this URI's key, judged
    /// without asking KMS: a key id or key ARN must name the same key (the same ARN, or for a
    /// bare key id the same id); an alias can only be resolved by KMS, so it answers `true`.
    #[cfg_attr(not(feature = "aws-kms"), allow(dead_code))]
    pub(crate) fn may_be(&self, arn: &str) -> bool {
        let (Some(recorded), Some(mine)) = (KeyName::parse(arn), KeyName::parse(&self.key)) else {
            return false;
        };
        match mine.kind {
            Kind::Alias => true,
            Kind::Key if mine.region.is_none() => recorded.id == mine.id,
            Kind::Key => arn == self.key,
        }
    }
}

uri_query::uri_traits!(AwsKmsUri);

impl uri_query::Params for AwsKmsUri {
    const KNOWN: &'static [&'static str] = &["region", "endpoint", "timeout"];

    fn unknown(_: &str) -> &'static str {
        "unknown parameter (known: region, endpoint, timeout); credentials never go in the URI"
    }

    fn set(&mut self, index: usize, value: &str) -> Result<(), ProviderError> {
        match index {
            0 => self.set_region(value)?,
            1 => self.endpoint = Some(parse_endpoint(value)?.to_string()),
            _ => self.timeout = parse_timeout(value)?,
        }
        Ok(())
    }
}

/// The canonical form: the key, then the parameters given (a default timeout omitted), in a
/// fixed order.
impl fmt::Display for AwsKmsUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URI_SCHEME}{}", self.key)?;
        let mut params = Vec::new();
        if let (true, Some(region)) = (self.region_given, &self.region) {
            params.push(format!("region={region}"));
        }
        if let Some(endpoint) = &self.endpoint {
            params.push(format!("endpoint={endpoint}"));
        }
        uri_query::write_query(f, params, self.timeout)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Key,
    Alias,
}

/// A KMS key name: `ID`, `alias/NAME`, or their ARNs
/// (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`, `...:alias/NAME`).
struct KeyName<'a> {
    kind: Kind,
    /// The key id or the alias name (after `alias/`).
    id: &'a str,
    /// The ARN's region.
    region: Option<&'a str>,
}

impl<'a> KeyName<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let Some(arn) = text.strip_prefix("arn:") else {
            return Self::resource(text, None);
        };
        let mut parts = arn.splitn(5, ':');
        let (partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let partition_ok = partition.starts_with("aws") && valid_region(partition);
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if !partition_ok || service != "kms" || !valid_region(region) || !account_ok {
            return None;
        }
        Self::resource(resource, Some(region))
    }

    /// `ID` or `alias/NAME`.
    fn resource(text: &'a str, region: Option<&'a str>) -> Option<Self> {
        let (kind, id) = match text.strip_prefix("alias/") {
            Some(name) => (Kind::Alias, name),
            None if region.is_some() => (Kind::Key, text.strip_prefix("key/")?),
            None => (Kind::Key, text),
        };
        let allowed = |b: u8| match kind {
            Kind::Key => b.is_ascii_alphanumeric() || b == b'-',
            Kind::Alias => b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'),
        };
        let valid = !id.is_empty() && id.len() <= 250 && id.bytes().all(allowed);
        valid.then_some(Self { kind, id, region })
    }
}

/// A region or partition: lower-case letters, digits and `-`, 1 to 32 bytes.
fn valid_region(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `https://HOST[:PORT]`, or `http://` with a loopback host; a trailing `/` is dropped.
fn parse_endpoint(value: &str) -> Result<&str, ProviderError> {
    let bad = |reason| ProviderError::KmsUri { reason };
    let value = value.strip_suffix('/').unwrap_or(value);
    let (tls, authority) = match value.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => {
            return Err(bad(
                "the endpoint must start with https:// (or http:// on loopback)",
            ));
        }
    };
    if authority.contains(['@', '/', '?']) {
        return Err(bad(
            "the endpoint is https://HOST[:PORT]: no user information, path or query",
        ));
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => return Err(bad("the endpoint's port must be a number from 1 to 65535")),
        },
        _ => authority,
    };
    if !valid_host(host) {
        return Err(bad(
            "the endpoint's host must be a DNS name, an IPv4 address or a bracketed IPv6 address",
        ));
    }
    if !tls && !is_loopback(host) {
        return Err(bad(
            "an http:// endpoint is accepted only for a loopback host (localhost, 127.0.0.0/8, \
             [::1])",
        ));
    }
    Ok(value)
}

/// The parts of a scheme-4 sealed secret (`docs/KEYBLOB.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsSealed<'a> {
    /// The ARN of the KMS key that encrypted the secret (`KeyId` of KMS's `Encrypt` answer).
    pub(crate) key_arn: &'a str,
    /// KMS's `CiphertextBlob`.
    pub(crate) ciphertext: &'a [u8],
}

impl<'a> AwsSealed<'a> {
    /// The sealed secret's bytes: `a ‖ key ARN ‖ c ‖ ciphertext`; `None` if a field is out of
    /// its range.
    #[cfg_attr(not(feature = "aws-kms"), allow(dead_code))]
    pub(crate) fn to_bytes(&self) -> Option<Vec<u8>> {
        if !is_key_arn(self.key_arn) {
            return None;
        }
        let a = u8::try_from(self.key_arn.len()).ok()?;
        let c = u16::try_from(self.ciphertext.len()).ok()?;
        if c == 0 || usize::from(c) > MAX_CIPHERTEXT_LEN {
            return None;
        }
        Some(
            [
                &[a][..],
                self.key_arn.as_bytes(),
                &c.to_be_bytes(),
                self.ciphertext,
            ]
            .concat(),
        )
    }

    /// Parses a sealed secret, or says why its layout is wrong.
    pub(crate) fn parse(sealed: &'a [u8]) -> Result<Self, &'static str> {
        let truncated = "truncated AWS KMS sealed secret";
        let (a, rest) = sealed.split_first().ok_or(truncated)?;
        let a = usize::from(*a);
        if rest.len() < a {
            return Err(truncated);
        }
        let (arn, rest) = rest.split_at(a);
        let key_arn = std::str::from_utf8(arn)
            .ok()
            .filter(|arn| is_key_arn(arn))
            .ok_or("the AWS KMS sealed secret does not record a key ARN")?;
        Ok(Self {
            key_arn,
            ciphertext: super::last_ciphertext(rest, MAX_CIPHERTEXT_LEN)?,
        })
    }
}

/// Whether `text` is a key ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`) of at most 255
/// bytes.
fn is_key_arn(text: &str) -> bool {
    text.len() <= MAX_ARN_LEN
        && text.starts_with("arn:")
        && KeyName::parse(text).is_some_and(|k| k.kind == Kind::Key)
}

/// The encryption context of a blob: its key id (lower-case hexadecimal) and its header
/// (standard padded base64), under [`CONTEXT_KEY_ID`] and [`CONTEXT_HEADER`].
#[cfg_attr(not(feature = "aws-kms"), allow(dead_code))]
pub(crate) fn encryption_context(context: &super::SealContext<'_>) -> [(&'static str, String); 2] {
    [
        (CONTEXT_KEY_ID, context.key_id().to_string()),
        (
            CONTEXT_HEADER,
            crate::base64::encode(context.header(), crate::base64::STANDARD),
        ),
    ]
}

#[cfg(test)]
mod tests;
