//! `POST /api/auth/token` (email and password in, JWT out), `POST /api/auth/logout` (that JWT
//! ends), and the caller's personal API tokens under `/api/auth/tokens`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Serialize;
use serde_json::{Value, json};
use taskstream_engine::accounts::{ApiTokenInfo, TOKEN_NAME_MAX_CHARS};
use taskstream_engine::time::format_utc;
use taskstream_engine::{FieldError, Loc, ValidationErrors};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{AuthUser, Caller, Credential};
use crate::error::ApiError;
use crate::extract::JsonBody;

/// Lifetime of the JWTs `POST /api/auth/token` hands out.
pub const LOGIN_TOKEN_TTL_DAYS: i64 = 7;

/// Log-in request body, for the docs.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct TokenRequest {
    email: String,
    password: String,
}

/// An HS256 JWT for the account (`sub` = account id), valid for seven days.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
}

/// Personal token request body, for the docs.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct NewTokenRequest {
    /// 1–100 characters, e.g. the machine or script that will use it.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00]*[^\s\x00][^\x00]*$"
    )]
    name: String,
}

/// A personal token as listed (never with its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The token's first characters, e.g. `tsk_ab12`.
    pub prefix: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

/// A personal token just created: `token` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    pub prefix: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `tsk_` + 43 characters; send as `Authorization: Bearer <token>`.
    pub token: String,
}

impl From<&ApiTokenInfo> for TokenView {
    fn from(info: &ApiTokenInfo) -> Self {
        Self {
            id: info.id.clone(),
            name: info.name.clone(),
            prefix: info.prefix.clone(),
            created_at: format_utc(info.created_at),
            last_used_at: info.last_used_at.map(format_utc),
        }
    }
}

/// The peer address of the connection ("" when the server was not started with connect
/// info, e.g. in in-process tests). Proxies' forwarding headers are not trusted.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip().to_string())
                .unwrap_or_default(),
        ))
    }
}

/// The body as an error's `input`, with any password replaced.
fn redacted(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(password) = body.get_mut("password") {
        *password = json!("[redacted]");
    }
    body
}

/// Required string fields of a JSON object, in the framework's 422 shapes; a password value
/// is never echoed back.
fn string_fields<'a>(body: &'a Value, keys: &[&str]) -> Result<Vec<&'a str>, ValidationErrors> {
    let Value::Object(fields) = body else {
        return Err(ValidationErrors(vec![FieldError::new(
            "model_attributes_type",
            vec![Loc::from("body")],
            "Input should be a valid dictionary or object to extract fields from",
            redacted(body),
        )]));
    };
    let mut errors = Vec::new();
    let mut values = Vec::new();
    for key in keys {
        let loc = vec![Loc::from("body"), Loc::from(*key)];
        match fields.get(*key) {
            Some(Value::String(text)) => values.push(text.as_str()),
            None => errors.push(FieldError::new(
                "missing",
                loc,
                "Field required",
                redacted(body),
            )),
            Some(other) => errors.push(FieldError::new(
                "string_type",
                loc,
                "Input should be a valid string",
                if *key == "password" {
                    json!("[redacted]")
                } else {
                    other.clone()
                },
            )),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(ValidationErrors(errors))
    }
}

/// Exchange an account's email and password for a JWT (scripts and the CLI). Five failures
/// for one email, or twenty from one address, within 15 minutes answer 429 with
/// `Retry-After`.
#[utoipa::path(post, path = "/api/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, description = "Invalid email or password"),
        (status = 422), (status = 429, description = "Too many attempts; see Retry-After")))]
pub(crate) async fn token(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody,
) -> Result<Json<TokenResponse>, ApiError> {
    let fields = string_fields(&body, &["email", "password"]).map_err(ApiError::Validation)?;
    let (email, password) = (fields[0], fields[1]);
    let account = app.accounts.log_in(email, password, &client).await?;
    let token = app
        .signer
        .sign(&account.id, chrono::Duration::days(LOGIN_TOKEN_TTL_DAYS));
    Ok(Json(TokenResponse { token }))
}

/// Why a personal token cannot mint tokens: a leaked one could otherwise outlive its own
/// revocation by minting replacements.
pub const PERSONAL_TOKEN_CANNOT_MINT: &str =
    "Personal API tokens cannot create tokens; sign in with a password";

/// End the session of the Bearer JWT from `POST /api/auth/token` (or the web UI's cookie, sent
/// as a Bearer token): from now on it is refused with 401 `Invalid token`, on every replica.
/// Tokens this server did not sign at a sign-in (the frontend's, `taskstream token`'s) have no
/// session to end: 400; personal tokens are revoked with `DELETE /api/auth/tokens/{id}`.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "`{\"logged_out\": true}`"),
        (status = 400, description = "The credential is not a sign-in session"),
        (status = 401)))]
pub(crate) async fn logout(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let jwt = match caller.credential {
        Credential::Jwt(jwt) => jwt,
        Credential::PersonalToken => {
            return Err(ApiError::detail(
                StatusCode::BAD_REQUEST,
                "Personal API tokens are revoked with DELETE /api/auth/tokens/{id}",
            ));
        }
    };
    let Some(sid) = &jwt.sid else {
        return Err(ApiError::detail(
            StatusCode::BAD_REQUEST,
            "This token has no session to end: it was not issued by a sign-in",
        ));
    };
    app.accounts
        .revoke_session(sid, &jwt.sub, jwt.expires_at)
        .await?;
    Ok(Json(json!({ "logged_out": true })))
}

/// The caller's personal API tokens, newest first (revoked ones are gone).
#[utoipa::path(get, path = "/api/auth/tokens", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [TokenView]), (status = 401)))]
pub(crate) async fn list_tokens(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = app.accounts.api_tokens(&user).await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

/// Create a personal API token for scripts; its secret is in this response only. Needs a JWT
/// (a sign-in): a personal token cannot create more of them.
#[utoipa::path(post, path = "/api/auth/tokens", tag = "auth", security(("bearer" = [])),
    request_body = NewTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 401),
        (status = 403, description = "Authenticated with a personal token"),
        (status = 404, description = "The caller has no local account"), (status = 422)))]
pub(crate) async fn create_token(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    if caller.credential == Credential::PersonalToken {
        return Err(ApiError::detail(
            StatusCode::FORBIDDEN,
            PERSONAL_TOKEN_CANNOT_MINT,
        ));
    }
    let user = caller.user_id;
    let fields = string_fields(&body, &["name"]).map_err(ApiError::Validation)?;
    let name = fields[0];
    let length = name.trim().chars().count();
    if length == 0 || length > TOKEN_NAME_MAX_CHARS {
        const WHY: &str = "Token name must be 1 to 100 characters";
        let error =
            FieldError::value_error(vec![Loc::from("body"), Loc::from("name")], WHY, json!(name))
                .with_ctx(json!({ "error": WHY, "max_length": TOKEN_NAME_MAX_CHARS }));
        return Err(ApiError::Validation(ValidationErrors(vec![error])));
    }
    let created = app.accounts.create_api_token(&user, name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: created.info.id,
            name: created.info.name,
            prefix: created.info.prefix,
            created_at: format_utc(created.info.created_at),
            token: created.secret,
        }),
    ))
}

/// Revoke one of the caller's personal tokens; it stops working at once.
#[utoipa::path(delete, path = "/api/auth/tokens/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 200, description = "`{\"id\": …, \"revoked\": true}`"), (status = 401),
        (status = 404, description = "Token not found")))]
pub(crate) async fn revoke_token(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if app.accounts.revoke_api_token(&user, &id).await? {
        Ok(Json(json!({ "id": id, "revoked": true })))
    } else {
        Err(ApiError::detail(StatusCode::NOT_FOUND, "Token not found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape_errors_never_echo_the_password() {
        let errors = string_fields(&json!({"password": "hunter2!!"}), &["email", "password"])
            .err()
            .map(|errors| serde_json::to_string(&errors.0).unwrap_or_default())
            .unwrap_or_default();
        assert!(errors.contains("\"missing\""), "{errors}");
        assert!(!errors.contains("hunter2"), "{errors}");
        let errors = string_fields(
            &json!({"email": "a@b.co", "password": 12345678}),
            &["email", "password"],
        )
        .err()
        .map(|errors| serde_json::to_string(&errors.0).unwrap_or_default())
        .unwrap_or_default();
        assert!(errors.contains("string_type"), "{errors}");
        assert!(!errors.contains("12345678"), "{errors}");
        assert!(string_fields(&json!([]), &["name"]).is_err());
        assert_eq!(
            string_fields(&json!({"name": "ci"}), &["name"]).ok(),
            Some(vec!["ci"])
        );
    }
}
