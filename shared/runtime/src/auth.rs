//! Bearer-token authentication. When a key is configured, every RPC except health and reflection
//! needs `authorization: Bearer <JWT>` signed with HS256 (shared secret) or RS256 (RSA public
//! key). Handlers see the verified [`Caller`]; a missing or bad token is UNAUTHENTICATED, and a
//! caller without the needed tenant or role gets PERMISSION_DENIED from [`require_role`],
//! [`Caller::require_tenant`] or, for a user's own records, [`require_owner`].

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::AuthConfig;
use crate::error::{Refusal, RefusalKind};

/// Who is calling, as proven by the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The `sub` claim: for a person, their user id in the directory.
    pub subject: String,
    /// The `tenant` claim, if the token is scoped to one tenant.
    pub tenant: Option<String>,
    /// The `roles` claim.
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// PERMISSION_DENIED unless the caller has `role`.
    pub fn require_role(&self, role: &str) -> Result<(), Refusal> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Refusal::permission_denied(
                "ROLE_REQUIRED",
                format!("this call needs the role {role:?}"),
            )
            .with("role", role))
        }
    }

    /// Whether the token's subject is the user `id`: the same text, or the same UUID however
    /// written (a token may carry it in upper case).
    pub fn is(&self, id: &str) -> bool {
        match (
            uuid::Uuid::try_parse(&self.subject),
            uuid::Uuid::try_parse(id),
        ) {
            (Ok(subject), Ok(id)) => subject == id,
            _ => self.subject == id,
        }
    }

    /// PERMISSION_DENIED unless the caller's token is scoped to `tenant`.
    pub fn require_tenant(&self, tenant: &str) -> Result<(), Refusal> {
        if self.tenant.as_deref() == Some(tenant) {
            Ok(())
        } else {
            Err(Refusal::permission_denied(
                "WRONG_TENANT",
                "the caller's token is not scoped to this tenant",
            )
            .with("tenant", tenant))
        }
    }

    /// PERMISSION_DENIED unless the caller is `owner` (its `sub` claim names that user) or
    /// holds `admin_role`.
    pub fn require_owner(&self, owner: &str, admin_role: &str) -> Result<(), Refusal> {
        if self.is(owner) || self.has_role(admin_role) {
            Ok(())
        } else {
            Err(Refusal::permission_denied(
                "NOT_OWNER",
                format!(
                    "the caller may act only on its own records, not on those of user {}, \
                     unless it holds the role {admin_role:?}",
                    crate::error::quote(owner)
                ),
            )
            .with("owner", owner)
            .with("role", admin_role))
        }
    }
}

/// The caller of the current request: `None` when authentication is off.
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// With authentication on, PERMISSION_DENIED unless the caller has `role`; with it off, every
/// caller is trusted.
pub fn require_role<T>(request: &tonic::Request<T>, role: &str) -> Result<(), Refusal> {
    caller(request).map_or(Ok(()), |caller| caller.require_role(role))
}

/// With authentication on, PERMISSION_DENIED unless the caller is the user `owner` or holds
/// `admin_role`: a user acts on its own records only. With it off, every caller is trusted.
pub fn require_owner<T>(
    request: &tonic::Request<T>,
    owner: &str,
    admin_role: &str,
) -> Result<(), Refusal> {
    caller(request).map_or(Ok(()), |caller| caller.require_owner(owner, admin_role))
}

/// The caller of one request, taken out of it so that a handler can check it after decoding
/// (`None` inside: authentication is off, and every caller is trusted), for a service whose
/// admin role is `admin_role`.
#[derive(Debug, Clone)]
pub struct Access {
    caller: Option<Caller>,
    admin_role: &'static str,
}

impl Access {
    pub fn of<T>(request: &tonic::Request<T>, admin_role: &'static str) -> Self {
        Self {
            caller: caller(request).cloned(),
            admin_role,
        }
    }

    /// PERMISSION_DENIED `ROLE_REQUIRED` unless the caller holds the admin role.
    pub fn admin(&self) -> Result<(), Refusal> {
        self.caller
            .as_ref()
            .map_or(Ok(()), |c| c.require_role(self.admin_role))
    }

    /// PERMISSION_DENIED `NOT_OWNER` unless the caller is the user `owner` or an admin.
    pub fn owner(&self, owner: impl std::fmt::Display) -> Result<(), Refusal> {
        self.caller.as_ref().map_or(Ok(()), |c| {
            c.require_owner(&owner.to_string(), self.admin_role)
        })
    }
    /// Whether authentication is on (an owner check on a stored record needs a read first).
    pub fn is_on(&self) -> bool {
        self.caller.is_some()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Verifies bearer tokens against the configured keys.
pub struct Authenticator {
    keys: Vec<(Algorithm, DecodingKey)>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<_> = self.keys.iter().map(|(alg, _)| alg).collect();
        f.debug_struct("Authenticator")
            .field("algorithms", &algorithms)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `None` when no key is configured (authentication off).
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Option<Self>> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.hs256_secret {
            anyhow::ensure!(
                secret.len() >= 32,
                "PHOENIX_AUTH_HS256_SECRET: must be at least 32 bytes long"
            );
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if let Some(path) = &config.rs256_public_key_file {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!(
                    "PHOENIX_AUTH_RS256_PUBLIC_KEY_FILE: cannot read {}: {e}",
                    path.display()
                )
            })?;
            let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "PHOENIX_AUTH_RS256_PUBLIC_KEY_FILE: {} is not an RSA public key in PEM: {e}",
                    path.display()
                )
            })?;
            keys.push((Algorithm::RS256, key));
        }
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        }))
    }

    /// Verifies the `authorization` header.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, Refusal> {
        let unauthenticated = |reason: &'static str, message: String| {
            Refusal::new(RefusalKind::Unauthenticated, reason, message)
        };
        let header = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
            unauthenticated(
                "TOKEN_MISSING",
                "this call needs `authorization: Bearer <token>`".to_owned(),
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                unauthenticated(
                    "TOKEN_MALFORMED",
                    "the authorization header must be `Bearer <token>`".to_owned(),
                )
            })?;
        let algorithm = jsonwebtoken::decode_header(token)
            .map_err(|e| {
                unauthenticated(
                    "TOKEN_MALFORMED",
                    format!("the bearer token is not a JWT: {e}"),
                )
            })?
            .alg;
        let (_, key) = self
            .keys
            .iter()
            .find(|(alg, _)| *alg == algorithm)
            .ok_or_else(|| {
                unauthenticated(
                    "TOKEN_ALGORITHM",
                    format!("tokens signed with {algorithm:?} are not accepted"),
                )
            })?;
        let mut validation = Validation::new(algorithm);
        // A configured issuer or audience must be present, not merely right when present.
        let mut required = vec!["exp", "sub"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| {
                unauthenticated(
                    "TOKEN_INVALID",
                    format!("the bearer token was rejected: {e}"),
                )
            })?
            .claims;
        Ok(Caller {
            subject: claims.sub,
            tenant: claims.tenant,
            roles: claims.roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(secret: Option<&str>) -> AuthConfig {
        AuthConfig {
            hs256_secret: secret.map(str::to_owned),
            rs256_public_key_file: None,
            issuer: None,
            audience: None,
        }
    }

    fn bearer(claims: serde_json::Value, secret: &str) -> http::HeaderMap {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("token");
        authorization(&token)
    }

    /// Headers carrying `authorization: Bearer <token>`.
    fn authorization(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        headers
    }

    #[test]
    fn off_without_keys_and_short_secrets_are_refused() {
        assert!(
            Authenticator::from_config(&config(None))
                .expect("valid")
                .is_none()
        );
        let error = Authenticator::from_config(&config(Some("short"))).expect_err("too short");
        assert!(
            error.to_string().contains("PHOENIX_AUTH_HS256_SECRET"),
            "{error}"
        );
    }

    #[test]
    fn a_valid_token_yields_the_caller() {
        let auth = Authenticator::from_config(&config(Some(SECRET)))
            .expect("valid")
            .expect("on");
        let headers = bearer(
            serde_json::json!({"sub": "svc", "tenant": "t1", "roles": ["admin"], "exp": 4_102_444_800_u64}),
            SECRET,
        );
        let caller = auth.authenticate(&headers).expect("accepted");
        assert_eq!(
            caller,
            Caller {
                subject: "svc".into(),
                tenant: Some("t1".into()),
                roles: vec!["admin".into()]
            }
        );
        assert!(caller.require_role("admin").is_ok());
        assert!(caller.require_tenant("t1").is_ok());
        assert_eq!(
            caller
                .require_role("auditor")
                .expect_err("missing role")
                .kind,
            RefusalKind::PermissionDenied
        );
        assert_eq!(
            caller.require_tenant("t2").expect_err("other tenant").kind,
            RefusalKind::PermissionDenied
        );
        assert!(caller.require_owner("svc", "missions-admin").is_ok());
        let other = caller
            .require_owner("someone-else", "missions-admin")
            .expect_err("not the owner");
        assert_eq!(
            (other.kind, other.reason.as_str()),
            (RefusalKind::PermissionDenied, "NOT_OWNER")
        );
        let admin = Caller {
            roles: vec!["missions-admin".into()],
            ..caller
        };
        assert!(
            admin
                .require_owner("someone-else", "missions-admin")
                .is_ok()
        );
    }

    #[test]
    fn expired_malformed_and_missing_tokens_are_unauthenticated() {
        let auth = Authenticator::from_config(&config(Some(SECRET)))
            .expect("valid")
            .expect("on");
        let expired = bearer(
            serde_json::json!({"sub": "svc", "exp": 1_000_000_000_u64}),
            SECRET,
        );
        assert_eq!(
            auth.authenticate(&expired).expect_err("expired").reason,
            "TOKEN_INVALID"
        );
        let garbage = authorization("nope");
        assert_eq!(
            auth.authenticate(&garbage).expect_err("garbage").reason,
            "TOKEN_MALFORMED"
        );
        assert_eq!(
            auth.authenticate(&http::HeaderMap::new())
                .expect_err("missing")
                .kind,
            RefusalKind::Unauthenticated
        );
    }

    #[test]
    fn a_configured_issuer_and_audience_are_required() {
        let mut settings = config(Some(SECRET));
        settings.issuer = Some("phoenix-idp".into());
        settings.audience = Some("phoenix".into());
        let auth = Authenticator::from_config(&settings)
            .expect("valid")
            .expect("on");
        let without = bearer(
            serde_json::json!({"sub": "svc", "exp": 4_102_444_800_u64}),
            SECRET,
        );
        assert_eq!(
            auth.authenticate(&without).expect_err("no iss/aud").reason,
            "TOKEN_INVALID"
        );
        let with = bearer(
            serde_json::json!({"sub": "svc", "iss": "phoenix-idp", "aud": "phoenix", "exp": 4_102_444_800_u64}),
            SECRET,
        );
        assert!(auth.authenticate(&with).is_ok());
    }

    #[test]
    fn rs256_tokens_verify_against_the_public_key() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let mut settings = config(None);
        settings.rs256_public_key_file = Some(fixtures.join("rs256-test-public.pem"));
        let auth = Authenticator::from_config(&settings)
            .expect("valid")
            .expect("on");
        let private = std::fs::read(fixtures.join("rs256-test-private.pem")).expect("fixture");
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::RS256),
            &serde_json::json!({"sub": "rsa-caller", "exp": 4_102_444_800_u64}),
            &jsonwebtoken::EncodingKey::from_rsa_pem(&private).expect("private key"),
        )
        .expect("token");
        assert_eq!(
            auth.authenticate(&authorization(&token))
                .expect("accepted")
                .subject,
            "rsa-caller"
        );
        let hs = bearer(
            serde_json::json!({"sub": "svc", "exp": 4_102_444_800_u64}),
            SECRET,
        );
        assert_eq!(
            auth.authenticate(&hs)
                .expect_err("HS256 not configured")
                .reason,
            "TOKEN_ALGORITHM"
        );
    }
}
