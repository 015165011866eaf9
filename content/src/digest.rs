//! File digests, plain or keyed.
//!
//! Offline, a plain SHA-256 is what a person can check with `sha256sum`.
//! The agent (issue 19) will key it with the fleet key, so that whoever
//! reads the digests cannot confirm a guess of a small secret file: the key
//! is a parameter of every digest made here, never a global.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How file contents are digested.
#[derive(Clone, PartialEq, Eq)]
pub enum DigestKey {
    /// SHA-256 of the content, written `sha256:<hex>`.
    Plain,
    /// HMAC-SHA256 of the content under this key, written `hmac-sha256:<hex>`.
    Keyed(Vec<u8>),
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DigestKey::Plain => f.write_str("Plain"),
            // Never print a key.
            DigestKey::Keyed(_) => f.write_str("Keyed(..)"),
        }
    }
}

impl DigestKey {
    /// A digester for one content.
    pub fn digester(&self) -> Digester {
        match self {
            DigestKey::Plain => Digester::Plain(Sha256::new()),
            DigestKey::Keyed(key) => Digester::Keyed(
                // HMAC takes a key of any length.
                Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| {
                    Hmac::<Sha256>::new_from_slice(&[]).expect("an empty HMAC key is valid")
                }),
            ),
        }
    }

    /// The digest of `data`.
    pub fn digest(&self, data: &[u8]) -> String {
        let mut d = self.digester();
        d.update(data);
        d.finish()
    }
}

/// A digest being made.
#[derive(Debug, Clone)]
pub enum Digester {
    /// Plain SHA-256.
    Plain(Sha256),
    /// Keyed HMAC-SHA256.
    Keyed(Hmac<Sha256>),
}

impl Digester {
    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Digester::Plain(h) => h.update(data),
            Digester::Keyed(h) => h.update(data),
        }
    }

    /// The digest, prefixed by its algorithm.
    pub fn finish(self) -> String {
        match self {
            Digester::Plain(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Digester::Keyed(h) => format!("hmac-sha256:{}", hex::encode(h.finalize().into_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_digest_is_sha256sum_and_a_keyed_one_depends_on_the_key() {
        assert_eq!(
            DigestKey::Plain.digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let a = DigestKey::Keyed(b"fleet-a".to_vec()).digest(b"abc");
        let b = DigestKey::Keyed(b"fleet-b".to_vec()).digest(b"abc");
        assert!(a.starts_with("hmac-sha256:"));
        assert_ne!(a, b);
        assert_eq!(
            format!("{:?}", DigestKey::Keyed(b"secret".to_vec())),
            "Keyed(..)"
        );
    }
}
