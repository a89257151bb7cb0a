//! One-time signed acknowledgement links. A notification carries a link to a page with one
//! button; the token in it names the ticket, the person and the endpoint it was sent over,
//! expires, and is signed with the hub's link key (HMAC-SHA256). Opening the page changes
//! nothing (chat apps fetch links to preview them); pressing the button acknowledges the
//! ticket once, recorded with who and through which channel.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a link allows: acknowledging one ticket, as one person, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckClaim {
    #[serde(rename = "t")]
    pub ticket_id: i64,
    #[serde(rename = "p")]
    pub person: String,
    #[serde(rename = "e")]
    pub endpoint: String,
    #[serde(rename = "x")]
    pub expires_ms: i64,
    /// Random; a used nonce is refused.
    #[serde(rename = "n")]
    pub nonce: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not a Steward acknowledgement link")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
    #[error("the link was already used")]
    Used,
}

/// The key links are signed with. `Debug` does not show it.
#[derive(Clone)]
pub struct LinkKey(Vec<u8>);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(***)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl LinkKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> LinkKey {
        LinkKey(bytes.into())
    }

    pub fn generate() -> LinkKey {
        let mut k = vec![0u8; 32];
        rand::rng().fill_bytes(&mut k);
        LinkKey(k)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        m.update(data);
        m
    }

    /// A new claim's token: `base64url(json) "." base64url(hmac)`.
    pub fn sign(&self, claim: &AckClaim) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claim).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// The claim of a token signed with this key and not expired at `now_ms` (whether it
    /// was used is the store's to say).
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<AckClaim, LinkError> {
        if token.len() > 1024 {
            return Err(LinkError::Malformed);
        }
        let (body, tag) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LinkError::Malformed)?;
        self.mac(body.as_bytes())
            .verify_slice(&tag)
            .map_err(|_| LinkError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| LinkError::Malformed)?;
        let claim: AckClaim = serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
        if claim.expires_ms <= now_ms {
            return Err(LinkError::Expired);
        }
        Ok(claim)
    }
}

/// A fresh random nonce.
pub fn nonce() -> String {
    let mut n = [0u8; 12];
    rand::rng().fill_bytes(&mut n);
    URL_SAFE_NO_PAD.encode(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> AckClaim {
        AckClaim {
            ticket_id: 42,
            person: "p-wang".into(),
            endpoint: "crew-hook".into(),
            expires_ms: 10_000,
            nonce: nonce(),
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let k = LinkKey::generate();
        let t = k.sign(&claim());
        assert_eq!(k.verify(&t, 9_999).unwrap().ticket_id, 42);
        assert_eq!(k.verify(&t, 10_000), Err(LinkError::Expired));
    }

    #[test]
    fn a_changed_or_foreign_link_is_refused() {
        let k = LinkKey::generate();
        let t = k.sign(&claim());
        assert_eq!(
            LinkKey::generate().verify(&t, 0),
            Err(LinkError::BadSignature)
        );
        let mut forged = claim();
        forged.ticket_id = 43;
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let tag = t.split_once('.').unwrap().1;
        assert_eq!(
            k.verify(&format!("{body}.{tag}"), 0),
            Err(LinkError::BadSignature)
        );
        for bad in ["", "abc", "a.b.c", "%%%.%%%"] {
            assert!(k.verify(bad, 0).is_err(), "{bad}");
        }
        assert_eq!(format!("{k:?}"), "LinkKey(***)");
    }
}
