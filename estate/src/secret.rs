//! Device and gateway secrets are stored as salted SHA-256.
//!
//! Secrets are issued by the hub (or the vendor) as 128+ bit random strings, so a slow
//! password hash buys nothing against brute force while it would cost a reconnect storm of
//! 50K devices minutes of CPU; a per-secret salt still defeats precomputed tables.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SCHEME: &str = "sha256";

/// Hash a secret into the stored form `sha256$<salt hex>$<digest hex>`.
pub fn hash_secret(secret: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    hash_with_salt(secret, &salt)
}

fn hash_with_salt(secret: &str, salt: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    format!(
        "{SCHEME}${}${}",
        hex::encode(salt),
        hex::encode(h.finalize())
    )
}

/// Whether `stored` has the form produced by [`hash_secret`].
pub fn is_valid_hash(stored: &str) -> bool {
    parse(stored).is_some()
}

fn parse(stored: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    if parts.next()? != SCHEME {
        return None;
    }
    let salt = hex::decode(parts.next()?).ok()?;
    let digest = hex::decode(parts.next()?).ok()?;
    if parts.next().is_some() || digest.len() != 32 || salt.is_empty() {
        return None;
    }
    Some((salt, digest))
}

/// Constant-time check of a presented secret against its stored hash.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let Some((salt, digest)) = parse(stored) else {
        return false;
    };
    let mut h = Sha256::new();
    h.update(&salt);
    h.update(secret.as_bytes());
    h.finalize().as_slice().ct_eq(&digest).into()
}

/// A new random secret for a device or token: 24 random bytes, hex.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_round_trip() {
        let h = hash_secret("s3cret");
        assert!(is_valid_hash(&h));
        assert!(verify_secret("s3cret", &h));
        assert!(!verify_secret("s3cret2", &h));
        assert!(!verify_secret("s3cret", "md5$00$00"));
        assert_ne!(hash_secret("x"), hash_secret("x"), "salted");
    }
}
