//! The AWS KMS provider: a [`Sealer`] whose key never leaves AWS KMS.
//!
//! Scheme 4 of `docs/KEYBLOB.md`. For each blob the envelope draws a fresh 32-byte secret `S`;
//! this provider sends `S` to KMS `Encrypt` under an encryption context that names the blob's
//! key id and holds its header, and stores what KMS returns (the key ARN and the ciphertext
//! blob) as the sealed secret. Opening a blob is one KMS `Decrypt` with the same context.
//!
//! The AWS SDK for Rust is asynchronous; the sealer is called synchronously. The provider owns
//! a current-thread tokio runtime, built on first use, and blocks on each request (from a
//! scoped thread when the caller is itself inside a tokio runtime, where blocking in place is
//! not allowed). HTTPS is rustls on ring, with the platform's root certificates. Credentials
//! come from the standard AWS chain (environment, profile, web identity, container, instance
//! metadata) and are never shown: errors are built from KMS's error codes and static reasons,
//! never from the SDK's or the service's messages.
//!
//! The secret `S` passes through buffers the SDK owns (the request's `Plaintext` and JSON body,
//! the response's JSON text), which are not zeroized; the decoded `Plaintext`, which the
//! provider takes over, is. `S` opens one blob only, and only with the blob's sealed data key.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_kms::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use super::aws_format::{AwsKmsUri, AwsSealed, encryption_context};
use super::{MasterKeyProvider, Protection, ProviderError, SealContext, Sealer, private};
use crate::key::KEY_LEN;
use crate::keys::envelope::Scheme;

/// How many times a request is tried (the SDK's standard retry mode: refused connections,
/// timeouts, throttling and KMS's internal errors are tried again).
const ATTEMPTS: u32 = 3;
/// First pause between attempts (then growing, with jitter, up to [`MAX_RETRY_PAUSE`]).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Protects data keys with an AWS KMS key: the master key never leaves KMS.
///
/// Configured by an [`AwsKmsUri`] (`aws-kms://KEY?region=...`). The credentials need
/// `kms:Encrypt` and `kms:Decrypt` on the key. The encryption context of every call binds the
/// sealed secret to its blob: `strongbox:key-id` (the database key's id) and
/// `strongbox:blob-header` (the blob header), so KMS refuses a sealed secret moved to another
/// blob. CloudTrail logs the context, which holds only public identifiers.
///
/// Constructing it reads and sends nothing. Each database key opened costs one KMS request
/// (`Decrypt`), each key protected one (`Encrypt`); [`AwsKmsProvider::requests`] counts them,
/// retries included.
pub struct AwsKmsProvider {
    uri: AwsKmsUri,
    shown: String,
    base: Option<aws_config::SdkConfig>,
    runtime: OnceLock<tokio::runtime::Runtime>,
    client: OnceLock<aws_sdk_kms::Client>,
    requests: Arc<AtomicU64>,
}

impl AwsKmsProvider {
    /// The provider of the KMS key `uri` names, with the standard AWS credential and region
    /// chains.
    pub fn new(uri: AwsKmsUri) -> Self {
        Self::build(uri, None)
    }

    /// The provider of the KMS key `uri` names, with an AWS configuration the caller loaded
    /// (its own credentials provider, say); the URI's region, endpoint and timeout still apply.
    pub fn with_config(uri: AwsKmsUri, config: &aws_config::SdkConfig) -> Self {
        Self::build(uri, Some(config.clone()))
    }

    /// The provider of the KMS key named by the URI text `uri` ([`AwsKmsUri::parse`]).
    pub fn from_uri(uri: &str) -> Result<Self, ProviderError> {
        Ok(Self::new(AwsKmsUri::parse(uri)?))
    }

    fn build(uri: AwsKmsUri, base: Option<aws_config::SdkConfig>) -> Self {
        Self {
            shown: uri.to_string(),
            uri,
            base,
            runtime: OnceLock::new(),
            client: OnceLock::new(),
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The KMS key's URI.
    pub fn uri(&self) -> &AwsKmsUri {
        &self.uri
    }

    /// How many HTTP requests this provider has sent to KMS (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Runs `future` to completion on the provider's runtime.
    fn block_on<F>(&self, future: F) -> Result<F::Output, ProviderError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = match self.runtime.get() {
            Some(runtime) => runtime,
            None => {
                let built = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|_| ProviderError::KmsUnreachable {
                        uri: self.shown.clone(),
                        attempts: 0,
                        reason: "the asynchronous runtime could not be started".to_string(),
                    })?;
                self.runtime.get_or_init(|| built)
            }
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(runtime.block_on(future));
        }
        // Inside another runtime, blocking this thread in place would panic.
        std::thread::scope(|scope| scope.spawn(move || runtime.block_on(future)).join()).map_err(
            |_| ProviderError::KmsUnreachable {
                uri: self.shown.clone(),
                attempts: 0,
                reason: "the request's thread failed".to_string(),
            },
        )
    }

    /// The KMS client, built on first use (loading the AWS configuration); a failure is not
    /// kept.
    fn client(&self) -> Result<&aws_sdk_kms::Client, ProviderError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = match &self.base {
            Some(config) => config.clone(),
            None => self.block_on(
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(http.clone())
                    .load(),
            )?,
        };
        let mut config = aws_sdk_kms::config::Builder::from(&sdk)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(ATTEMPTS)
                    .with_initial_backoff(RETRY_PAUSE)
                    .with_max_backoff(MAX_RETRY_PAUSE),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.uri.timeout())
                    .operation_attempt_timeout(self.uri.timeout())
                    .build(),
            );
        if sdk.http_client().is_none() {
            config = config.http_client(http);
        }
        if let Some(region) = self.uri.region() {
            config = config.region(Region::new(region.to_string()));
        }
        if let Some(endpoint) = self.uri.endpoint() {
            config = config.endpoint_url(endpoint);
        }
        let config = config.build();
        if config.region().is_none() {
            return Err(ProviderError::KmsCredentials {
                uri: self.shown.clone(),
                reason: "no AWS region: give ?region= in the URI or a key ARN, or set AWS_REGION",
            });
        }
        let client = aws_sdk_kms::Client::from_conf(config);
        Ok(self.client.get_or_init(|| client))
    }

    /// A counter of this call's attempts, which also counts into [`AwsKmsProvider::requests`].
    fn counter(&self) -> AttemptCounter {
        AttemptCounter {
            call: Arc::new(AtomicU32::new(0)),
            total: self.requests.clone(),
        }
    }

    /// The typed error of a failed request.
    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        error: &SdkError<E>,
        counter: &AttemptCounter,
    ) -> ProviderError {
        let uri = self.shown.clone();
        let attempts = counter.call.load(Ordering::Relaxed);
        let unreachable = |reason: &str| ProviderError::KmsUnreachable {
            uri: uri.clone(),
            attempts,
            reason: reason.to_string(),
        };
        match error {
            SdkError::ServiceError(context) => {
                let status = context.raw().status().as_u16();
                refusal(uri, context.err().code(), status)
            }
            SdkError::TimeoutError(_) => unreachable("timed out"),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => unreachable("timed out"),
            SdkError::DispatchFailure(failure) if failure.is_io() => {
                unreachable("the connection failed (refused, reset or not resolved)")
            }
            SdkError::ResponseError(_) => ProviderError::KmsBadResponse {
                uri,
                reason: "the response could not be read",
            },
            _ if mentions_credentials(error) => ProviderError::KmsCredentials {
                uri,
                reason: "no AWS credentials could be had from the standard chain (environment, \
                         profile, web identity, container or instance metadata)",
            },
            _ => unreachable("the request could not be sent"),
        }
    }
}

/// Whether the error chain of a failed request is about credentials (judged by its text,
/// which is never shown).
fn mentions_credentials(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.to_string().to_ascii_lowercase().contains("credential") {
            return true;
        }
        next = e.source();
    }
    false
}

/// The typed error of a request KMS refused, by its error code (the message is never shown).
fn refusal(uri: String, code: Option<&str>, status: u16) -> ProviderError {
    match code.unwrap_or_default() {
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "MissingAuthenticationToken" => ProviderError::KmsAccessDenied { uri, status },
        "NotFoundException" | "InvalidKeyUsageException" => ProviderError::KmsKeyNotFound { uri },
        "DisabledException" | "KMSInvalidStateException" => ProviderError::KmsKeyDisabled { uri },
        "InvalidCiphertextException" => ProviderError::KmsWrongContext { uri },
        "IncorrectKeyException" => ProviderError::KmsOtherKey { uri },
        _ => ProviderError::KmsRefused { uri, status },
    }
}

impl MasterKeyProvider for AwsKmsProvider {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::Sealer(self))
    }
}

impl private::InCrate for AwsKmsProvider {}

impl Sealer for AwsKmsProvider {
    fn scheme(&self) -> Scheme {
        Scheme::AwsKms
    }

    fn seal(
        &self,
        secret: &[u8; KEY_LEN],
        context: &SealContext<'_>,
    ) -> Result<Vec<u8>, ProviderError> {
        let client = self.client()?;
        let counter = self.counter();
        let mut request = client
            .encrypt()
            .key_id(self.uri.key())
            .plaintext(Blob::new(secret.to_vec()));
        for (name, value) in encryption_context(context) {
            request = request.encryption_context(name, value);
        }
        let sent = request.customize().interceptor(counter.clone()).send();
        let answer = self.block_on(sent)?.map_err(|e| self.error(&e, &counter))?;
        let bad = |reason| ProviderError::KmsBadResponse {
            uri: self.shown.clone(),
            reason,
        };
        let (Some(arn), Some(ciphertext)) = (answer.key_id, answer.ciphertext_blob) else {
            return Err(bad("the Encrypt answer has no KeyId or CiphertextBlob"));
        };
        AwsSealed {
            key_arn: &arn,
            ciphertext: ciphertext.as_ref(),
        }
        .to_bytes()
        .ok_or(bad(
            "the Encrypt answer's KeyId is not a key ARN, or its ciphertext does not fit a key blob",
        ))
    }

    fn unseal(
        &self,
        sealed: &[u8],
        context: &SealContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let parsed = AwsSealed::parse(sealed).expect("the envelope checked the layout");
        let client = self.client()?;
        let counter = self.counter();
        let mut request = client
            .decrypt()
            .key_id(self.uri.key())
            .ciphertext_blob(Blob::new(parsed.ciphertext.to_vec()));
        for (name, value) in encryption_context(context) {
            request = request.encryption_context(name, value);
        }
        let sent = request.customize().interceptor(counter.clone()).send();
        let answer = self.block_on(sent)?.map_err(|e| self.error(&e, &counter))?;
        let plaintext = answer
            .plaintext
            .map(|blob| Zeroizing::new(blob.into_inner()));
        plaintext.ok_or(ProviderError::KmsBadResponse {
            uri: self.shown.clone(),
            reason: "the Decrypt answer has no Plaintext",
        })
    }

    /// The blob records this provider's key: the same key ARN (or key id) as the URI's; with an
    /// alias URI, only KMS can tell (a blob of another key is then refused by `Decrypt`).
    fn recognizes(&self, sealed: &[u8]) -> bool {
        AwsSealed::parse(sealed).is_ok_and(|s| self.uri.may_be(s.key_arn))
    }
}

impl fmt::Debug for AwsKmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsProvider")
            .field("uri", &self.shown)
            .field("requests", &self.requests())
            .finish()
    }
}

impl Drop for AwsKmsProvider {
    /// Shuts the runtime down without waiting: dropping a runtime in place would panic when
    /// the provider is dropped inside another runtime.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Counts the requests one call transmits, and every request of its provider.
#[derive(Debug, Clone)]
struct AttemptCounter {
    call: Arc<AtomicU32>,
    total: Arc<AtomicU64>,
}

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "strongbox::AttemptCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.call.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{AwsKmsProvider, ProviderError, refusal};

    #[test]
    fn refusals_are_classified_by_kms_error_codes() {
        let uri = || "aws-kms://alias/db".to_string();
        for (code, status, expected) in [
            ("AccessDeniedException", 400, "permission denied (HTTP 400)"),
            ("UnrecognizedClientException", 400, "permission denied"),
            ("NotFoundException", 400, "was not found"),
            ("DisabledException", 400, "is disabled"),
            ("KMSInvalidStateException", 400, "is disabled"),
            ("InvalidCiphertextException", 400, "context does not match"),
            ("IncorrectKeyException", 400, "another KMS key"),
            (
                "KMSInternalException",
                500,
                "refused the request (HTTP 500)",
            ),
        ] {
            let message = refusal(uri(), Some(code), status).to_string();
            assert!(message.starts_with("aws-kms://alias/db: "), "{message}");
            assert!(message.contains(expected), "{code}: {message}");
        }
        assert!(matches!(
            refusal(uri(), Some("DisabledException"), 400),
            ProviderError::KmsKeyDisabled { .. }
        ));
        assert!(matches!(
            refusal(uri(), None, 503),
            ProviderError::KmsRefused { status: 503, .. }
        ));
    }

    #[test]
    fn debug_shows_the_uri_and_the_request_count_only() {
        let provider =
            AwsKmsProvider::from_uri("aws-kms://alias/db?region=us-east-1&timeout=5").unwrap();
        assert_eq!(
            format!("{provider:?}"),
            "AwsKmsProvider { uri: \"aws-kms://alias/db?region=us-east-1&timeout=5\", \
             requests: 0 }"
        );
    }
}
