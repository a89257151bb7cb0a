//! API access tokens: a role and a scope over the estate, stored in the registry database.
//!
//! A token is `stw_` followed by 192 random bits in hex. Only its SHA-256 is stored: the
//! token has far more entropy than a password, so a salt or a slow hash would add nothing,
//! and an unsalted digest lets a presented token be found by an indexed lookup.

use crate::clock::now_ms;
use crate::registry::Registry;
use crate::{secret, EstateError};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every token starts with this, so a leaked one is easy to recognise (secret scanners).
pub const TOKEN_PREFIX: &str = "stw_";

pub use crate::roles::{Role, TokenScope};

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub scope: TokenScope,
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub scope: TokenScope,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// A token just created: the plain token exists only here.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub info: TokenInfo,
    pub token: String,
}

/// Hex SHA-256 of a token, the stored form.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn row_to_info(r: &rusqlite::Row) -> rusqlite::Result<TokenInfo> {
    let role: String = r.get(2)?;
    let scope: String = r.get(3)?;
    let corrupt = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(EstateError::Corrupt(what)),
        )
    };
    Ok(TokenInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role.parse().map_err(corrupt)?,
        scope: serde_json::from_str(&scope).map_err(|e| corrupt(format!("token scope: {e}")))?,
        created_ms: r.get(4)?,
        revoked_ms: r.get(5)?,
    })
}

const COLS: &str = "id, name, role, scope, created_ms, revoked_ms";

impl Registry {
    /// Check a new token's name and scope against its role and the estate; every problem
    /// names its field.
    fn validate_token(&self, t: &NewToken) -> Vec<String> {
        let mut e = Vec::new();
        if !printable(t.name.trim()) {
            e.push("name: 1 to 64 printable characters".to_string());
        }
        let s = &t.scope;
        let dir = self.directory();
        let mut not_for = |field: &str, given: bool| {
            if given {
                e.push(format!("{field}: does not apply to role {}", t.role));
            }
        };
        if t.role != Role::Captain {
            not_for("buildings", !s.buildings.is_empty());
            not_for("person", s.person.is_some());
        }
        match t.role {
            Role::Admin => {
                not_for("streets", !s.streets.is_empty());
                not_for("compounds", !s.compounds.is_empty());
                not_for("station", s.station.is_some());
                not_for("vendor", s.vendor.is_some());
            }
            Role::Manager => {
                not_for("station", s.station.is_some());
                not_for("vendor", s.vendor.is_some());
                if s.streets.is_empty() && s.compounds.is_empty() {
                    e.push("streets: a manager needs at least one street or compound".into());
                }
                for st in &s.streets {
                    if !self.street_exists(st) {
                        e.push(format!("streets: unknown street `{}`", short(st)));
                    }
                }
                for c in &s.compounds {
                    if !dir.compounds.contains_key(c) {
                        e.push(format!("compounds: unknown compound `{}`", short(c)));
                    }
                }
            }
            Role::Crew => {
                not_for("streets", !s.streets.is_empty());
                not_for("compounds", !s.compounds.is_empty());
                not_for("vendor", s.vendor.is_some());
                match &s.station {
                    None => e.push("station: required for a crew token".into()),
                    Some(st) if !self.station_exists(st) => {
                        e.push(format!("station: unknown station `{}`", short(st)))
                    }
                    Some(_) => {}
                }
            }
            Role::Dispatcher => {
                not_for("compounds", !s.compounds.is_empty());
                not_for("station", s.station.is_some());
                not_for("vendor", s.vendor.is_some());
                for st in &s.streets {
                    if !self.street_exists(st) {
                        e.push(format!("streets: unknown street `{}`", short(st)));
                    }
                }
            }
            Role::Vendor => {
                not_for("streets", !s.streets.is_empty());
                not_for("compounds", !s.compounds.is_empty());
                not_for("station", s.station.is_some());
                match &s.vendor {
                    None => e.push("vendor: required for a vendor token".into()),
                    // Vendor names are free text in the estate; only their shape is checked.
                    Some(v) if !printable(v) => {
                        e.push("vendor: 1 to 64 printable characters".into())
                    }
                    Some(_) => {}
                }
            }
            Role::Captain => {
                not_for("streets", !s.streets.is_empty());
                not_for("compounds", !s.compounds.is_empty());
                not_for("station", s.station.is_some());
                not_for("vendor", s.vendor.is_some());
                self.validate_captain_scope(s, &mut e);
            }
        }
        e
    }

    /// A captain's buildings must exist; its person, if named, must be captain of each.
    fn validate_captain_scope(&self, s: &TokenScope, e: &mut Vec<String>) {
        if s.buildings.is_empty() {
            e.push("buildings: a captain needs at least one building".into());
        }
        for b in &s.buildings {
            if !self.exists("SELECT 1 FROM buildings WHERE id=?1", b) {
                e.push(format!("buildings: unknown building `{}`", short(b)));
            }
        }
        if let Some(p) = &s.person {
            let people = self.people();
            if people.person(p).is_none() {
                e.push(format!("person: unknown person `{}`", short(p)));
            } else {
                let theirs = people.captain_buildings(p);
                for b in &s.buildings {
                    if !theirs.contains(&b.as_str()) {
                        e.push(format!(
                            "person: `{}` is not a captain of building `{}`",
                            short(p),
                            short(b)
                        ));
                    }
                }
            }
        }
    }

    fn station_exists(&self, id: &str) -> bool {
        self.exists("SELECT 1 FROM stations WHERE id=?1", id)
    }

    fn street_exists(&self, id: &str) -> bool {
        self.exists("SELECT 1 FROM streets WHERE id=?1", id)
    }

    fn exists(&self, sql: &str, v: &str) -> bool {
        self.conn
            .lock()
            .query_row(sql, [v], |_| Ok(()))
            .optional()
            .ok()
            .flatten()
            .is_some()
    }

    /// Create a token; the plain token is returned once and never stored.
    pub fn create_token(&self, t: &NewToken) -> Result<IssuedToken, EstateError> {
        let errors = self.validate_token(t);
        if !errors.is_empty() {
            return Err(EstateError::Invalid(errors));
        }
        let mut scope = t.scope.clone();
        scope.streets.sort();
        scope.streets.dedup();
        scope.compounds.sort();
        scope.compounds.dedup();
        scope.buildings.sort();
        scope.buildings.dedup();
        let token = format!("{TOKEN_PREFIX}{}", secret::generate_secret());
        let scope_json = serde_json::to_string(&scope)
            .map_err(|e| EstateError::Corrupt(format!("token scope: {e}")))?;
        let created_ms = now_ms();
        let name = t.name.trim().to_string();
        let hash = hash_token(&token);
        let id = {
            let conn = self.conn.lock();
            conn.execute(
                "INSERT INTO api_tokens(name, role, scope, token_hash, created_ms)
                 VALUES(?1, ?2, ?3, ?4, ?5)",
                params![name, t.role.as_str(), scope_json, hash, created_ms],
            )?;
            let id = conn.last_insert_rowid();
            self.record(&conn, || {
                Ok(crate::changes::Change::TokenCreated(
                    crate::changes::TokenRow {
                        name: name.clone(),
                        role: t.role,
                        scope: scope.clone(),
                        hash: hash.clone(),
                        created_ms,
                        revoked_ms: None,
                    },
                ))
            })?;
            id
        };
        Ok(IssuedToken {
            info: TokenInfo {
                id,
                name,
                role: t.role,
                scope,
                created_ms,
                revoked_ms: None,
            },
            token,
        })
    }

    /// Every token, revoked ones included, oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, EstateError> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!("SELECT {COLS} FROM api_tokens ORDER BY id"))?;
        let rows = st
            .query_map([], row_to_info)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Revoke a token; it stops working at once. Revoking twice keeps the first time.
    pub fn revoke_token(&self, id: i64) -> Result<TokenInfo, EstateError> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1",
            params![id, now_ms()],
        )?;
        if n == 0 {
            return Err(EstateError::NotFound(format!("token {id}")));
        }
        let (info, hash) = conn.query_row(
            &format!("SELECT {COLS}, token_hash FROM api_tokens WHERE id = ?1"),
            [id],
            |r| Ok((row_to_info(r)?, r.get::<_, String>(6)?)),
        )?;
        if let Some(revoked_ms) = info.revoked_ms {
            self.record(&conn, || {
                Ok(crate::changes::Change::TokenRevoked { hash, revoked_ms })
            })?;
        }
        Ok(info)
    }

    /// The live (not revoked) token a presented string is, if any.
    pub fn verify_token(&self, presented: &str) -> Result<Option<TokenInfo>, EstateError> {
        if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let hash = hash_token(presented);
        let conn = self.conn.lock();
        let found: Option<(TokenInfo, String)> = conn
            .query_row(
                &format!(
                    "SELECT {COLS}, token_hash FROM api_tokens
                     WHERE token_hash = ?1 AND revoked_ms IS NULL"
                ),
                [&hash],
                |r| Ok((row_to_info(r)?, r.get::<_, String>(6)?)),
            )
            .optional()?;
        // The index lookup already matched; comparing again in constant time keeps the
        // decision itself free of early exits whatever the database does.
        Ok(found.and_then(|(info, stored)| {
            bool::from(stored.as_bytes().ct_eq(hash.as_bytes())).then_some(info)
        }))
    }
}

fn printable(v: &str) -> bool {
    !v.is_empty() && v.chars().count() <= 64 && !v.chars().any(char::is_control)
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EstateFile;

    fn registry() -> Registry {
        let reg = Registry::open_in_memory().expect("registry");
        let file = EstateFile::parse(
            r#"
[[stations]]
id = "st-1"
name = "One"
[[streets]]
id = "street-1"
name = "Main"
fallback_station = "st-1"
[[communities]]
id = "com-1"
name = "C"
street = "street-1"
[[compounds]]
id = "cmp-1"
name = "Elm"
community = "com-1"
[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"
"#,
        )
        .expect("estate");
        reg.apply(&file).expect("apply");
        reg
    }

    fn new(role: Role, scope: TokenScope) -> NewToken {
        NewToken {
            name: "t".into(),
            role,
            scope,
        }
    }

    #[test]
    fn create_verify_revoke() {
        let reg = registry();
        let issued = reg
            .create_token(&new(
                Role::Crew,
                TokenScope {
                    station: Some("st-1".into()),
                    ..Default::default()
                },
            ))
            .expect("create");
        assert!(issued.token.starts_with(TOKEN_PREFIX));
        // 192 bits of hex after the prefix.
        assert_eq!(issued.token.len(), TOKEN_PREFIX.len() + 48);
        let found = reg.verify_token(&issued.token).expect("verify");
        assert_eq!(found.map(|i| i.id), Some(issued.info.id));
        assert_eq!(reg.verify_token("stw_nope").expect("verify"), None);
        let listed = reg.tokens().expect("list");
        assert_eq!(listed.len(), 1);
        let stored: String = reg
            .conn
            .lock()
            .query_row("SELECT token_hash FROM api_tokens", [], |r| r.get(0))
            .expect("hash");
        assert!(!stored.contains(&issued.token[TOKEN_PREFIX.len()..]));
        reg.revoke_token(issued.info.id).expect("revoke");
        assert_eq!(reg.verify_token(&issued.token).expect("verify"), None);
        assert!(matches!(
            reg.revoke_token(999),
            Err(EstateError::NotFound(_))
        ));
    }

    #[test]
    fn scope_must_fit_the_role_and_the_estate() {
        let reg = registry();
        let cases = [
            (new(Role::Crew, TokenScope::default()), "station: required"),
            (
                new(
                    Role::Crew,
                    TokenScope {
                        station: Some("st-9".into()),
                        ..Default::default()
                    },
                ),
                "station: unknown station",
            ),
            (
                new(Role::Manager, TokenScope::default()),
                "streets: a manager",
            ),
            (
                new(
                    Role::Manager,
                    TokenScope {
                        compounds: vec!["cmp-9".into()],
                        ..Default::default()
                    },
                ),
                "compounds: unknown compound",
            ),
            (
                new(
                    Role::Admin,
                    TokenScope {
                        vendor: Some("acme".into()),
                        ..Default::default()
                    },
                ),
                "vendor: does not apply",
            ),
            (new(Role::Vendor, TokenScope::default()), "vendor: required"),
            (
                new(Role::Captain, TokenScope::default()),
                "buildings: a captain needs",
            ),
            (
                new(
                    Role::Captain,
                    TokenScope {
                        buildings: vec!["b-9".into()],
                        ..Default::default()
                    },
                ),
                "buildings: unknown building `b-9`",
            ),
            (
                new(
                    Role::Captain,
                    TokenScope {
                        buildings: vec!["b-1".into()],
                        person: Some("p-9".into()),
                        ..Default::default()
                    },
                ),
                "person: unknown person `p-9`",
            ),
            (
                new(
                    Role::Crew,
                    TokenScope {
                        station: Some("st-1".into()),
                        buildings: vec!["b-1".into()],
                        ..Default::default()
                    },
                ),
                "buildings: does not apply to role crew",
            ),
            (
                new(
                    Role::Dispatcher,
                    TokenScope {
                        station: Some("st-1".into()),
                        ..Default::default()
                    },
                ),
                "station: does not apply",
            ),
            (
                new(
                    Role::Dispatcher,
                    TokenScope {
                        streets: vec!["street-9".into()],
                        ..Default::default()
                    },
                ),
                "streets: unknown street",
            ),
        ];
        for (t, want) in cases {
            match reg.create_token(&t) {
                Err(EstateError::Invalid(e)) => {
                    assert!(e.iter().any(|m| m.starts_with(want)), "{want}: got {e:?}")
                }
                other => panic!("{want}: expected invalid, got {other:?}"),
            }
        }
        let ok = reg.create_token(&new(
            Role::Manager,
            TokenScope {
                streets: vec!["street-1".into()],
                ..Default::default()
            },
        ));
        assert!(ok.is_ok());
        let captain = reg.create_token(&new(
            Role::Captain,
            TokenScope {
                buildings: vec!["b-1".into(), "b-1".into()],
                ..Default::default()
            },
        ));
        assert_eq!(
            captain.map(|c| c.info.scope.buildings).ok(),
            Some(vec!["b-1".into()])
        );
        // A dispatcher covers the whole estate without streets, or only its streets.
        for streets in [vec![], vec!["street-1".to_string()]] {
            let ok = reg.create_token(&new(
                Role::Dispatcher,
                TokenScope {
                    streets,
                    ..Default::default()
                },
            ));
            assert!(ok.is_ok(), "{ok:?}");
        }
    }
}
