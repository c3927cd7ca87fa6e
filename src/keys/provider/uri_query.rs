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
pub(crate) fn apply(
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
