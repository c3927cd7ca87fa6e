//! The rules shared by the KMS key URIs: length, scheme, no fragment, and the query
//! (`NAME=VALUE&...`).

use std::fmt;
use std::time::Duration;

use super::ProviderError;

/// Time limit of one KMS request unless `?timeout=` says otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest key URI, in bytes.
const MAX_URI_LEN: usize = 2048;
/// Largest `?timeout=`, in seconds.
const MAX_TIMEOUT_SECS: u64 = 300;

/// The part of a key URI between `scheme` and `?`, and the query after `?` (empty without one).
///
/// Refuses a URI longer than 2048 bytes, one not starting with `scheme` (`wrong_scheme` says
/// why) and one with a fragment.
pub(crate) fn split<'t>(
    text: &'t str,
    scheme: &str,
    wrong_scheme: &'static str,
) -> Result<(&'t str, &'t str), ProviderError> {
    let bad = |reason| ProviderError::KmsUri { reason };
    if text.len() > MAX_URI_LEN {
        return Err(bad("longer than 2048 bytes"));
    }
    let rest = text.strip_prefix(scheme).ok_or(bad(wrong_scheme))?;
    if rest.contains('#') {
        return Err(bad("a fragment (#) is not allowed"));
    }
    Ok(rest.split_once('?').unwrap_or((rest, "")))
}

/// Applies the parameters of `query` in order, each by its index in `known` and its value.
///
/// Refuses a pair without `=`, a name not in `known` (with `unknown`'s reason for it), a name
/// given twice and an empty value.
fn apply(
    query: &str,
    known: &[&str],
    unknown: impl Fn(&str) -> &'static str,
    mut set: impl FnMut(usize, &str) -> Result<(), ProviderError>,
) -> Result<(), ProviderError> {
    let bad = |reason| ProviderError::KmsUri { reason };
    let mut seen = vec![false; known.len()];
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or(bad("every parameter is NAME=VALUE"))?;
        let index = known
            .iter()
            .position(|known| *known == name)
            .ok_or_else(|| bad(unknown(name)))?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(bad("a parameter is given twice"));
        }
        if value.is_empty() {
            return Err(bad("a parameter has an empty value"));
        }
        set(index, value)?;
    }
    Ok(())
}

/// The query parameters of a key URI type, applied by [`with_query`].
pub(crate) trait Params: Sized {
    /// The parameter names; [`set`](Self::set) takes a parameter by its index here.
    const KNOWN: &'static [&'static str];

    /// Why `name`, not one of [`KNOWN`](Self::KNOWN), is refused.
    fn unknown(name: &str) -> &'static str;

    /// Sets parameter `KNOWN[index]` to `value`.
    fn set(&mut self, index: usize, value: &str) -> Result<(), ProviderError>;

    /// Checks the parameters together, once all are set.
    fn check(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// `uri` with the parameters of `query` applied in order ([`apply`]), then checked together.
pub(crate) fn with_query<U: Params>(mut uri: U, query: &str) -> Result<U, ProviderError> {
    apply(query, U::KNOWN, U::unknown, |index, value| {
        uri.set(index, value)
    })?;
    uri.check()?;
    Ok(uri)
}

/// A `timeout=` value: whole seconds from 1 to 300.
pub(crate) fn parse_timeout(value: &str) -> Result<Duration, ProviderError> {
    match value.parse::<u64>() {
        Ok(secs @ 1..=MAX_TIMEOUT_SECS) if value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Duration::from_secs(secs))
        }
        _ => Err(ProviderError::KmsUri {
            reason: "timeout must be a whole number of seconds from 1 to 300",
        }),
    }
}

/// Whether `host` is a DNS name or an IPv4 address (letters, digits, `-` and `.`, 1 to 253
/// bytes) or a bracketed IPv6 address.
pub(crate) fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
    }
}

/// Whether `host` names this machine: `localhost`, `127.0.0.0/8` or `[::1]`.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Writes `?NAME=VALUE&...` for `params`, then `timeout` unless it is the default; nothing when
/// that leaves no parameter.
pub(crate) fn write_query(
    f: &mut fmt::Formatter<'_>,
    mut params: Vec<String>,
    timeout: Duration,
) -> fmt::Result {
    if timeout != DEFAULT_TIMEOUT {
        params.push(format!("timeout={}", timeout.as_secs()));
    }
    if !params.is_empty() {
        write!(f, "?{}", params.join("&"))?;
    }
    Ok(())
}

/// `FromStr` by the type's `parse`, and a `Debug` that shows the canonical form (`Display`,
/// which holds no credential): the traits every KMS key URI type has alike.
macro_rules! uri_traits {
    ($uri:ident) => {
        impl std::str::FromStr for $uri {
            type Err = ProviderError;

            fn from_str(text: &str) -> Result<Self, ProviderError> {
                Self::parse(text)
            }
        }

        impl std::fmt::Debug for $uri {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($uri), "({})"), self)
            }
        }
    };
}
pub(crate) use uri_traits;
