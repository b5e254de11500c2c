//! Personal API tokens: `tsk_` + 43 base64url characters (32 random bytes). Only an HMAC-SHA256
//! of a token is stored, keyed from the instance's JWT secret, so a leaked database does not
//! hold usable tokens and cannot be brute-forced offline without the secret.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::EngineError;

/// What every personal token starts with; the auth layer tells them from JWTs by it.
pub const TOKEN_PREFIX: &str = "tsk_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Characters of a whole token: the prefix and 43 base64url characters.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 43;
/// Characters of a token kept to show in lists (`tsk_` and four more).
pub const SHOWN_PREFIX_LEN: usize = TOKEN_PREFIX.len() + 4;
/// Separates this key from every other use of the JWT secret.
const KEY_LABEL: &[u8] = b"taskstream/api-token-hmac/v1";

/// The key token hashes are made with.
pub(crate) struct TokenKey(hmac::Key);

impl TokenKey {
    /// Derives the key from `material` (the JWT secret) with a domain-separation label, so the
    /// JWT key itself is never used for anything but JWTs.
    pub(crate) fn derive(material: &[u8]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, material);
        let derived = hmac::sign(&root, KEY_LABEL);
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// Lower-case hex of HMAC-SHA256(key, secret): what the store indexes.
    pub(crate) fn hash(&self, secret: &str) -> String {
        hex(hmac::sign(&self.0, secret.as_bytes()).as_ref())
    }
}

/// A fresh token secret.
pub(crate) fn generate(random: &SystemRandom) -> Result<String, EngineError> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    random
        .fill(&mut bytes)
        .map_err(|_| EngineError::Unavailable("the system random source failed".to_owned()))?;
    Ok(format!("{TOKEN_PREFIX}{}", base64url(&bytes)))
}

/// Prefix of calendar feed tokens, which only open the feed (`GET /ical/{token}.ics`).
pub const FEED_PREFIX: &str = "cal_";

/// A fresh calendar feed token.
pub(crate) fn generate_feed(random: &SystemRandom) -> Result<String, EngineError> {
    let token = generate(random)?;
    Ok(format!("{FEED_PREFIX}{}", &token[TOKEN_PREFIX.len()..]))
}

/// Whether `secret` has the shape of a calendar feed token.
pub(crate) fn feed_well_formed(secret: &str) -> bool {
    secret.len() == TOKEN_LEN
        && secret.starts_with(FEED_PREFIX)
        && secret[FEED_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `secret` has the shape of a personal token (checked before any lookup).
pub(crate) fn well_formed(secret: &str) -> bool {
    secret.len() == TOKEN_LEN
        && secret.starts_with(TOKEN_PREFIX)
        && secret[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            text.push(char::from(ALPHABET[index as usize]));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), expected);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tokens_have_the_documented_shape_and_differ() {
        let random = SystemRandom::new();
        let first = generate(&random).expect("token");
        let second = generate(&random).expect("token");
        assert_eq!(first.len(), TOKEN_LEN);
        assert!(first.starts_with("tsk_"));
        assert!(well_formed(&first) && well_formed(&second));
        assert_ne!(first, second);
        assert!(!well_formed("tsk_short"));
        assert!(!well_formed(&first.replace("tsk_", "tsx_")));
        assert!(!well_formed(&format!("{}!", &first[..TOKEN_LEN - 1])));
    }

    #[test]
    fn hashes_depend_on_the_key_and_the_token() {
        let key = TokenKey::derive(b"secret one");
        let same = TokenKey::derive(b"secret one");
        let other = TokenKey::derive(b"secret two");
        let hash = key.hash("tsk_a");
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, same.hash("tsk_a"));
        assert_ne!(hash, other.hash("tsk_a"));
        assert_ne!(hash, key.hash("tsk_b"));
        // Derived, not the raw secret: HMAC(secret, token) is not what is stored.
        let raw = hmac::Key::new(hmac::HMAC_SHA256, b"secret one");
        assert_ne!(hash, hex(hmac::sign(&raw, b"tsk_a").as_ref()));
    }
}
