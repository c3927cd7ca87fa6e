//! Key management: master-key providers, the protected key blob, the database key store and the
//! settings that choose a provider.

pub(crate) mod envelope;
pub(crate) mod provider;
pub(crate) mod settings;
pub(crate) mod store;
