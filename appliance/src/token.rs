//! `taskstream token`: mints an API token for a user, for scripts and the README walk-through.

use anyhow::{Context, bail};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use crate::config::{CommonArgs, ServeArgs, Settings};
use crate::data_dir;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The user id to put in `sub`; every task belongs to one
    #[arg(long, value_name = "USER")]
    pub sub: String,

    /// Lifetime in seconds [default: 3600, like the frontend's tokens]
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub ttl_secs: u64,

    /// Optional `email` claim
    #[arg(long)]
    pub email: Option<String>,

    /// Optional `name` claim
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    if args.sub.trim().is_empty() {
        bail!("--sub must not be empty");
    }
    let settings = Settings::resolve(&ServeArgs {
        common: args.common.clone(),
        ..ServeArgs::default()
    })?;
    let secret = match settings.jwt_secret {
        Some(secret) => secret,
        None => data_dir::read_secret(&settings.data_dir)?.with_context(|| {
            format!(
                "no JWT secret in {}: start `taskstream serve` once (it generates one) or pass --jwt-secret",
                settings.data_dir.display()
            )
        })?,
    };
    let issued = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(args.ttl_secs).context("--ttl-secs is too large")?;
    let mut claims = json!({ "sub": args.sub, "iat": issued, "exp": issued.saturating_add(ttl) });
    if let Some(email) = args.email {
        claims["email"] = json!(email);
    }
    if let Some(name) = args.name {
        claims["name"] = json!(name);
    }
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("cannot sign the token")?;
    println!("{token}");
    Ok(())
}
