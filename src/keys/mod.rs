//! Key management: where the master key comes from ([`MasterKeyProvider`] and its providers,
//! chosen in code or from `settings.json` with [`MasterKeySettings`]), the protected key blob
//! ([`ProtectedKey`], specified in `docs/KEYBLOB.md`), and the database key store
//! ([`DatabaseKeyStore`]: one protected key file per database directory).

pub(crate) mod envelope;
pub(crate) mod provider;
#[cfg(feature = "settings")]
pub(crate) mod settings;
pub(crate) mod store;

pub use envelope::{EnvelopeError, ProtectedKey, Scheme};
#[cfg(feature = "aws-kms")]
pub use provider::AwsKmsProvider;
#[cfg(feature = "vault-transit")]
pub use provider::VaultTransitProvider;
pub use provider::{
    AwsKmsUri, DpapiProvider, ExecProvider, FileProvider, MasterKeyProvider, Protection,
    ProviderError, SealContext, Sealer, UnixHomeFileProvider, VaultTransitUri, default_provider,
};
#[cfg(feature = "settings")]
pub use settings::{MasterKeySettings, MasterKeySource, SettingsError};
pub use store::{DatabaseKeyStore, KEY_FILE_NAME, PutOutcome, RotationReport, StoreError};
