//! Display names next to the ids that compounds, tickets and devices carry: people read
//! "Elm Court, Block 1" where the store keeps `cmp-1`, `b-1`. Names are read from the
//! registry per request (a few small tables), so a renamed compound shows at once.

use crate::error::{blocking, ApiError};
use crate::state::AppState;
use std::collections::HashMap;
use steward_estate::registry::PlaceNames;

/// Every station, street, community, compound and building name, by id.
pub(crate) async fn place_names(s: &AppState) -> Result<PlaceNames, ApiError> {
    let reg = s.registry.clone();
    blocking(move || Ok(reg.place_names()?)).await
}

/// The name of `id` in `names`, or the id itself when the estate has no name for it (a
/// ticket can outlive the compound it was raised in).
pub(crate) fn name_of(names: &HashMap<String, String>, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}
