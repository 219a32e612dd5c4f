//! Bearer API keys: who may call the API, and for which users.
//!
//! Keys come from the environment variable `REFLECTOR_API_KEYS` only (never a flag, which
//! other users of the machine could read in the process list, nor the TOML file):
//!
//! ```text
//! REFLECTOR_API_KEYS = ENTRY ("," ENTRY)*
//! ENTRY  = SECRET ":" SCOPE
//! SECRET = the key itself: 16 to 256 printable ASCII characters without ',' ':' or spaces
//!        | "sha256-" followed by the 64 hex digits of the key's SHA-256 (the plaintext
//!          need not be stored anywhere; `reflector key new` prints both forms)
//! SCOPE  = "admin" | "user=" USER_ID ("|" USER_ID)*
//! ```
//!
//! For example `REFLECTOR_API_KEYS='k3y-for-the-operator-1234:admin,k3y-for-ana-app-5678:user=ana|bob'`.
//! User ids named in a scope cannot contain `,` or `|` (the separators).
//!
//! Only the SHA-256 of each key is kept in memory. A presented token is hashed once and
//! compared with every configured hash in constant time (no early exit, no data-dependent
//! branch), so the response time does not tell how much of a key was right. Plain SHA-256
//! without a salt is adequate because keys are long random strings (`reflector key new`
//! draws 244 random bits), not passwords a dictionary could guess.
//!
//! Each key is named in logs by its *key id*: the first 8 hex digits of its SHA-256. Keys,
//! tokens and message texts never appear in logs.
//!
//! Policy (see [`authorize`]): without keys every request is allowed (and the service refuses
//! to listen beyond loopback); with keys, `GET /api/reflection/health` is public (load
//! balancers and container health checks call it without credentials; it shows component
//! status and queue counts, no user data), every other route needs a valid key (401
//! otherwise). Routes with a `{user_id}` need an admin key or one whose scope names that user
//! (403 otherwise); `POST /api/interactions` and `GET /api/reflection/jobs/{job_id}` check the
//! body's / job's user in the handler, and `/mcp` (the MCP server) the session's user at
//! every tool call; `GET /api/me` answers any valid key with what that key may see; every
//! other route (queue status, stats, the dead-letter list and replay, the users list,
//! `/metrics`) is for admin keys only.
//!
//! `GET /openapi.json` and `GET /docs` (Swagger UI) are outside this layer, public like the
//! health check: they are metadata, the API's shape, the same for every deployment, with no
//! user data, keys or configuration in them. The document marks every route but
//! [`PUBLIC_ROUTES`] with the `bearer` security scheme (see `super::openapi`).

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiContext, ApiError};

/// Routes anyone may call, even when keys are configured.
pub const PUBLIC_ROUTES: &[&str] = &["/api/reflection/health"];

/// Routes whose handler checks the caller against the user the request concerns (the body's
/// `user_id`, the job's user).
/// `/mcp` checks each tool call's user (`crate::api::mcp`), and its tools go through this layer
/// again as REST calls with the same key.
/// `GET /api/me` concerns no user: it only tells the caller what its own key may see.
const HANDLER_CHECKED_ROUTES: &[&str] = &[
    "/api/interactions",
    "/api/reflection/jobs/{job_id}",
    "/api/me",
    "/mcp",
];

/// What one key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every route, every user.
    Admin,
    /// Only the routes of these users.
    Users(BTreeSet<String>),
}

#[derive(Clone)]
struct KeyEntry {
    hash: [u8; 32],
    id: String,
    scope: Scope,
}

/// The configured keys (hashes only). `Debug` shows how many, never the hashes.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Arc<Vec<KeyEntry>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.keys.len())
    }
}

/// SHA-256 of a key.
fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key id shown in logs: the first 8 hex digits of the key's SHA-256.
fn key_id(hash: &[u8; 32]) -> String {
    hash[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two digests.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    std::hint::black_box(diff) == 0
}

impl ApiKeys {
    /// Parse `REFLECTOR_API_KEYS` (format in the module docs). Errors name the entry by its
    /// position, never by its text (it holds a secret).
    pub fn parse(spec: &str) -> anyhow::Result<ApiKeys> {
        let mut keys: Vec<KeyEntry> = Vec::new();
        for (i, entry) in spec.split(',').enumerate() {
            let n = i + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            // A key cannot contain ':', so the scope starts after the first one.
            let (secret, scope) = entry.split_once(':').with_context(|| {
                format!("REFLECTOR_API_KEYS entry {n}: expected KEY:admin or KEY:user=ID|ID…")
            })?;
            let (secret, scope) = (secret.trim(), scope.trim());
            let hash = if let Some(hex) = secret.strip_prefix("sha256-") {
                parse_hex32(hex).with_context(|| {
                    format!(
                        "REFLECTOR_API_KEYS entry {n}: sha256- must be followed by 64 hex digits"
                    )
                })?
            } else {
                if !(16..=256).contains(&secret.len())
                    || !secret
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b',' && b != b':')
                {
                    bail!(
                        "REFLECTOR_API_KEYS entry {n}: a key must be 16 to 256 printable ASCII characters without ',' ':' or spaces"
                    );
                }
                digest(secret)
            };
            let scope = if scope == "admin" {
                Scope::Admin
            } else if let Some(users) = scope.strip_prefix("user=") {
                let set: BTreeSet<String> = users
                    .split('|')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_string)
                    .collect();
                if set.is_empty() {
                    bail!("REFLECTOR_API_KEYS entry {n}: user= needs at least one user id");
                }
                if let Some(bad) = set
                    .iter()
                    .find(|u| u.len() > 256 || u.chars().any(char::is_control))
                {
                    bail!(
                        "REFLECTOR_API_KEYS entry {n}: user id {bad:?} must be 1 to 256 bytes without control characters"
                    );
                }
                Scope::Users(set)
            } else {
                bail!(
                    "REFLECTOR_API_KEYS entry {n}: the scope must be `admin` or `user=ID|ID…`, got {scope:?}"
                );
            };
            if keys.iter().any(|k| k.hash == hash) {
                bail!("REFLECTOR_API_KEYS entry {n}: the same key appears twice");
            }
            keys.push(KeyEntry {
                id: key_id(&hash),
                hash,
                scope,
            });
        }
        Ok(ApiKeys {
            keys: Arc::new(keys),
        })
    }

    /// Read `REFLECTOR_API_KEYS` from the environment (unset or blank: no keys).
    pub fn from_env() -> anyhow::Result<ApiKeys> {
        match std::env::var("REFLECTOR_API_KEYS") {
            Ok(s) if !s.trim().is_empty() => Self::parse(&s),
            _ => Ok(ApiKeys::default()),
        }
    }

    /// True when no key is configured (authentication off; loopback only).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The caller a bearer token stands for, or `None` for an unknown token. Compares the
    /// token's hash with every key's in constant time.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let h = digest(token);
        let mut found: Option<&KeyEntry> = None;
        for k in self.keys.iter() {
            if ct_eq(&k.hash, &h) {
                found = Some(k);
            }
        }
        found.map(|k| Caller::Key {
            key_id: k.id.clone(),
            scope: k.scope.clone(),
        })
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A fresh random key (244 bits from the OS generator via UUID v4, as 64 hex digits minus
/// the version nibbles) and its `sha256-` form for `REFLECTOR_API_KEYS`.
pub fn new_key() -> (String, String) {
    let key = format!(
        "rk_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let hashed = format!(
        "sha256-{}",
        digest(&key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    (key, hashed)
}

/// Who is calling, as the handlers see it (a request extension set by [`authorize`]).
#[derive(Debug, Clone)]
pub enum Caller {
    /// No keys are configured: everything is allowed (loopback only).
    Open,
    /// A valid key.
    Key { key_id: String, scope: Scope },
}

impl Caller {
    /// 403 unless this caller may read and write `user_id`'s memory.
    pub fn check_user(&self, user_id: &str) -> Result<(), ApiError> {
        match self {
            Caller::Open
            | Caller::Key {
                scope: Scope::Admin,
                ..
            } => Ok(()),
            Caller::Key {
                key_id,
                scope: Scope::Users(users),
            } => {
                if users.contains(user_id) {
                    Ok(())
                } else {
                    tracing::info!(key_id = %key_id, user_id = %user_id, "request refused: key not allowed for this user");
                    Err(ApiError::Forbidden(format!(
                        "this API key is not allowed to access user {user_id:?}"
                    )))
                }
            }
        }
    }

    /// Who made a change, for the audit record: the key id, or `local` without keys.
    pub fn actor(&self) -> String {
        match self {
            Caller::Open => "local".into(),
            Caller::Key { key_id, .. } => key_id.clone(),
        }
    }

    /// 403 unless this caller is an admin (or keys are off).
    pub fn check_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Open
            | Caller::Key {
                scope: Scope::Admin,
                ..
            } => Ok(()),
            Caller::Key { key_id, .. } => {
                tracing::info!(key_id = %key_id, "request refused: admin route, user-scoped key");
                Err(ApiError::Forbidden(
                    "this route needs an admin API key; this key is limited to some users".into(),
                ))
            }
        }
    }
}

/// Middleware on every route (a `route_layer`, so it runs after routing and sees the
/// matched route and its path parameters): authenticates the bearer token, applies the
/// policy in the module docs, and hands the [`Caller`] to the handler.
pub async fn authorize(
    State(ctx): State<ApiContext>,
    params: RawPathParams,
    mut req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let keys = &ctx.config.api_keys;
    let caller = if keys.is_empty() || PUBLIC_ROUTES.contains(&route.as_str()) {
        Caller::Open
    } else {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        let Some(token) = token else {
            tracing::info!(route = %route, "request refused: no bearer token");
            return ApiError::Unauthorized(
                "missing API key: send the header `Authorization: Bearer <key>`".into(),
            )
            .into_response();
        };
        match keys.authenticate(token) {
            Some(c) => c,
            None => {
                tracing::info!(route = %route, token_bytes = token.len(), "request refused: unknown API key");
                return ApiError::Unauthorized("invalid API key".into()).into_response();
            }
        }
    };
    if let Caller::Key { .. } = caller {
        let user = params.iter().find(|(k, _)| *k == "user_id").map(|(_, v)| v);
        let verdict = match user {
            Some(u) => caller.check_user(u),
            None if HANDLER_CHECKED_ROUTES.contains(&route.as_str()) => Ok(()),
            None => caller.check_admin(),
        };
        if let Err(e) = verdict {
            return e.into_response();
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_admin_user_and_hashed_entries() {
        let hashed = format!(
            "sha256-{}",
            digest("another-long-key-123")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let k = ApiKeys::parse(&format!(
            "operator-key-0123456:admin, app-key-for-ana-0001:user=ana|bob,{hashed}:user=carol"
        ))
        .unwrap();
        assert_eq!(k.len(), 3);
        assert!(matches!(
            k.authenticate("operator-key-0123456"),
            Some(Caller::Key {
                scope: Scope::Admin,
                ..
            })
        ));
        match k.authenticate("app-key-for-ana-0001") {
            Some(Caller::Key {
                scope: Scope::Users(u),
                ..
            }) => assert_eq!(u.into_iter().collect::<Vec<_>>(), ["ana", "bob"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            k.authenticate("another-long-key-123"),
            Some(Caller::Key {
                scope: Scope::Users(_),
                ..
            })
        ));
        assert!(k.authenticate("operator-key-012345").is_none());
        assert!(k.authenticate("").is_none());
        assert_eq!(format!("{k:?}"), "ApiKeys(3 keys)");
    }

    #[test]
    fn rejects_bad_entries_without_echoing_the_key() {
        for bad in [
            "short:admin",
            "a-long-enough-key-123",
            "a-long-enough-key-123:root",
            "a-long-enough-key-123:user=",
            "sha256-abc:admin",
            "a-long-enough-key-123:admin,a-long-enough-key-123:user=x",
        ] {
            let e = format!("{:#}", ApiKeys::parse(bad).unwrap_err());
            assert!(e.contains("REFLECTOR_API_KEYS entry"), "{bad}: {e}");
            assert!(!e.contains("a-long-enough-key-123"), "{e}");
        }
        assert!(ApiKeys::parse("").unwrap().is_empty());
    }

    #[test]
    fn new_keys_are_accepted_in_both_forms() {
        let (key, hashed) = new_key();
        for spec in [format!("{key}:admin"), format!("{hashed}:admin")] {
            let k = ApiKeys::parse(&spec).unwrap();
            assert!(k.authenticate(&key).is_some());
        }
        assert_ne!(new_key().0, key);
    }

    #[test]
    fn scopes() {
        let limited = Caller::Key {
            key_id: "k".into(),
            scope: Scope::Users(["ana".to_string()].into()),
        };
        assert!(limited.check_user("ana").is_ok());
        assert!(matches!(
            limited.check_user("bob"),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(limited.check_admin(), Err(ApiError::Forbidden(_))));
        assert!(Caller::Open.check_admin().is_ok());
    }
}
