//! Email and password rules, and argon2id password hashes.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use super::AccountError;

/// Longest address SMTP can carry (RFC 5321 path limit less the angle brackets).
pub const EMAIL_MAX_BYTES: usize = 254;
/// Shortest password accepted, in bytes.
pub const PASSWORD_MIN_BYTES: usize = 8;
/// Longest password accepted, in bytes: long passphrases are welcome, megabytes to hash are not.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// The canonical form of an email address (trimmed, lower-cased), if it looks like one: one `@`,
/// a non-empty local part, a dotted domain, no spaces or control characters. Deliverability is
/// not checked; this only keeps obvious typos and junk out.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    if email.is_empty() || email.len() > EMAIL_MAX_BYTES {
        return Err(AccountError::InvalidEmail);
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err(AccountError::InvalidEmail);
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(AccountError::InvalidEmail);
    };
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    if local.is_empty() || !domain_ok {
        return Err(AccountError::InvalidEmail);
    }
    Ok(email)
}

/// Checks the length rules; the error says which one failed.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.len() < PASSWORD_MIN_BYTES {
        return Err(AccountError::WeakPassword(format!(
            "Password must be at least {PASSWORD_MIN_BYTES} characters"
        )));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(AccountError::WeakPassword(format!(
            "Password must be at most {PASSWORD_MAX_BYTES} bytes"
        )));
    }
    if password.trim().is_empty() {
        return Err(AccountError::WeakPassword(
            "Password must not be only spaces".to_owned(),
        ));
    }
    Ok(())
}

/// An argon2id PHC string (default parameters, random salt). CPU-heavy: call it off the
/// async runtime.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| {
            AccountError::Store(crate::EngineError::Store(format!(
                "cannot hash a password: {error}"
            )))
        })
}

/// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
/// CPU-heavy: call it off the async runtime.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_junk_is_refused() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").ok().as_deref(),
            Some("ann@example.com")
        );
        assert!(normalize_email("a.b+tag@mail.example.org").is_ok());
        for bad in [
            "",
            "   ",
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "ann@@example.com",
            "ann@exa mple.com",
            "ann@example..com",
            "ann@-example.com",
            "a<b@example.com",
        ] {
            assert!(
                matches!(normalize_email(bad), Err(AccountError::InvalidEmail)),
                "{bad:?} should be refused"
            );
        }
        let long = format!("{}@example.com", "a".repeat(EMAIL_MAX_BYTES));
        assert!(matches!(
            normalize_email(&long),
            Err(AccountError::InvalidEmail)
        ));
    }

    #[test]
    fn password_lengths_are_bounded_in_bytes() {
        assert!(matches!(
            check_password("short"),
            Err(AccountError::WeakPassword(why)) if why.contains("at least 8")
        ));
        assert!(check_password("eight ch").is_ok());
        assert!(check_password(&"x".repeat(PASSWORD_MAX_BYTES)).is_ok());
        assert!(matches!(
            check_password(&"x".repeat(PASSWORD_MAX_BYTES + 1)),
            Err(AccountError::WeakPassword(why)) if why.contains("at most")
        ));
        assert!(matches!(
            check_password("          "),
            Err(AccountError::WeakPassword(_))
        ));
        // Four 2-byte characters are 8 bytes.
        assert!(check_password("éééé").is_ok());
    }

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let first = hash_password("correct horse").expect("hash");
        let second = hash_password("correct horse").expect("hash");
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "a random salt per hash");
        assert!(verify_password("correct horse", &first));
        assert!(!verify_password("correct horsf", &first));
        assert!(!verify_password("correct horse", "not a phc string"));
    }
}
