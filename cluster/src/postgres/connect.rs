//! Turning a `DATABASE_URL` into a connection configuration and a TLS choice.

use std::time::Duration;

use tokio_postgres::config::SslMode;

use super::error::PgError;

/// How long establishing one connection may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether connections are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `sslmode` absent, `disable` or `prefer`.
    Plain,
    /// `sslmode=require`, `verify-ca` or `verify-full`: rustls, always verifying the server's
    /// certificate and host name against the platform's roots (stricter than libpq's `require`,
    /// which only encrypts; managed databases such as Neon have publicly trusted certificates).
    Tls,
}

/// Parses a libpq-style URL (`postgres://…`) or key/value string. tokio-postgres knows only
/// `disable`/`prefer`/`require`, so the verifying modes are read as `require`: this store
/// verifies in every TLS mode anyway.
pub(crate) fn parse(
    url: &str,
    schema: Option<&str>,
) -> Result<(tokio_postgres::Config, Transport), PgError> {
    let normalised = url
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let mut config: tokio_postgres::Config = normalised
        .parse()
        .map_err(|error: tokio_postgres::Error| PgError::Config(error.to_string()))?;
    let transport = match config.get_ssl_mode() {
        SslMode::Disable | SslMode::Prefer => Transport::Plain,
        _ => Transport::Tls,
    };
    if transport == Transport::Plain {
        config.ssl_mode(SslMode::Disable);
    }
    if config.get_application_name().is_none() {
        config.application_name("taskstream");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if let Some(schema) = schema {
        // A startup option, so every connection (pooled or listening) resolves the tables in
        // the schema without an extra round trip; the name is a checked plain identifier.
        let options = match config.get_options() {
            Some(existing) if !existing.trim().is_empty() => {
                format!("{existing} -c search_path={schema}")
            }
            _ => format!("-c search_path={schema}"),
        };
        config.options(options);
    }
    Ok((config, transport))
}

/// Accepts only names that need no quoting, so they can be spliced into SQL and startup options.
pub(crate) fn check_schema(name: &str) -> Result<(), PgError> {
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63;
    if plain {
        Ok(())
    } else {
        Err(PgError::SchemaName(name.to_owned()))
    }
}

/// The rustls connector: aws-lc-rs (already the appliance's HTTPS provider) and the platform's
/// certificate roots, so a system CA bundle also covers a self-hosted server's private CA.
#[cfg(feature = "tls")]
pub(crate) fn rustls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let tls_error = |error: rustls::Error| PgError::Tls(error.to_string());
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_platform_verifier()
        .map_err(tls_error)?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_picks_the_transport() {
        let plain = |url: &str| parse(url, None).expect("valid").1;
        assert_eq!(plain("postgres://u@localhost/db"), Transport::Plain);
        assert_eq!(
            plain("postgres://u@localhost/db?sslmode=disable"),
            Transport::Plain
        );
        assert_eq!(
            plain("postgres://u@localhost/db?sslmode=prefer"),
            Transport::Plain
        );
        assert_eq!(
            plain("postgres://u:p@ep-x.neon.tech/db?sslmode=require&channel_binding=require"),
            Transport::Tls
        );
        assert_eq!(
            plain("postgres://u@h/db?sslmode=verify-full"),
            Transport::Tls
        );
        assert_eq!(plain("host=h user=u sslmode=verify-ca"), Transport::Tls);
    }

    #[test]
    fn plain_config_never_tries_tls() {
        let (config, _) = parse("postgres://u@localhost/db", None).expect("valid");
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(config.get_application_name(), Some("taskstream"));
    }

    #[test]
    fn schema_goes_into_the_startup_options() {
        let (config, _) = parse(
            "postgres://u@localhost/db?options=-c%20statement_timeout%3D5000",
            Some("t_1"),
        )
        .expect("valid");
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=5000 -c search_path=t_1")
        );
    }

    #[test]
    fn bad_urls_do_not_echo_the_password() {
        let error = parse("postgres://u:hunter2@localhost/db?sslmode=sometimes", None)
            .expect_err("invalid");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn only_plain_schema_names_pass() {
        for good in ["t", "_x", "ts_0123abc", &"a".repeat(63)] {
            assert!(check_schema(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1a",
            "A",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            &"a".repeat(64),
        ] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }
}
