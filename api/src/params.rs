//! Query parameters and path ids: parsed by hand so that an unknown or malformed one gets a
//! 400 naming it instead of axum's generic rejection.

use crate::error::ApiError;
use std::collections::HashMap;
use steward_estate::validate_id;

/// Query parameter that may carry the token instead of the `Authorization` header.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// Query parameters of a request as a multimap, for endpoints whose filters repeat.
pub type Pairs = Vec<(String, String)>;

/// 400 naming the first parameter of `q` that is not `allowed` (the token parameter always
/// is: the extractor, not the handler, decides where it counts).
pub(crate) fn params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = q
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && *k != ACCESS_TOKEN_PARAM)
    {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter `{}`; allowed: {}",
            k.chars().take(64).collect::<String>(),
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// `limit`, when given: 1 to 1000 rows.
pub(crate) fn limit_param(q: &HashMap<String, String>) -> Result<Option<u32>, ApiError> {
    q.get("limit")
        .map(|l| match l.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(
                "limit: expected an integer between 1 and 1000".into(),
            )),
        })
        .transpose()
}

/// An id from the request, checked against the identifier alphabet before it goes near
/// the registry or SQL.
pub(crate) fn id_param(name: &str, v: &str) -> Result<(), ApiError> {
    validate_id(v).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

/// Pairs into a map of the single-valued ones, refusing a parameter given twice unless it
/// is one of `repeatable`.
pub fn single_values(
    pairs: &Pairs,
    repeatable: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if repeatable.contains(&k.as_str()) {
            continue;
        }
        if out.insert(k.clone(), v.clone()).is_some() && k != ACCESS_TOKEN_PARAM {
            return Err(ApiError::BadRequest(format!(
                "{}: given more than once",
                k.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(out)
}
