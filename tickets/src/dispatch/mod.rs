//! The dispatcher's desk and residents following their reports (issue 14): tickets opened
//! from a phone call (with the caller kept apart from the ticket text), transfers between
//! stations with the holding history the rating splits by, merges and links between
//! tickets, and the tracking codes and 1-5 star ratings of resident reports.

mod desk;
mod split;

pub use split::{attribute, holder_at, Attribution};

use crate::request::Priority;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Ticket kind of tickets a dispatcher opened from a phone call.
pub const CALL_KIND: &str = "call";

/// Where a ticket came from, as recorded with its caller.
pub const SOURCE_PHONE: &str = "phone";

/// A ticket opened by a dispatcher from a phone call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTicket {
    pub compound: String,
    /// Station responsible for the compound, from the estate.
    pub station: String,
    /// Building id, when the caller named one (may be empty).
    pub building: String,
    pub category: String,
    pub priority: Priority,
    pub title: String,
    /// Description and location as the dispatcher wrote them; no personal data.
    pub detail: String,
    pub caller: Caller,
    pub ts_ms: i64,
}

/// Who called: personal data, kept out of the ticket text and the event stream; shown to
/// dispatchers, admins and the station's crew only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub name: String,
    pub phone: String,
    /// How the ticket came in (`phone`).
    pub source: String,
}

impl Caller {
    /// The phone number for logs: all but the last two digits hidden.
    pub fn masked_phone(&self) -> String {
        mask_phone(&self.phone)
    }
}

/// `13912345678` -> `*********78`: enough to tell two callers apart in a log line.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 2 < n { '*' } else { c })
        .collect()
}

/// One stretch of time a station held a ticket; `to_ms` is `None` while it still does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub station: String,
    pub from_ms: i64,
    pub to_ms: Option<i64>,
}

/// How two tickets relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRelation {
    /// The same site or cause, each ticket still worked on.
    Related,
    /// `from` reports what `to` already covers.
    Duplicate,
    /// `from` was merged into `to` (and cancelled).
    Merged,
}

impl LinkRelation {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRelation::Related => "related",
            LinkRelation::Duplicate => "duplicate",
            LinkRelation::Merged => "merged",
        }
    }

    pub fn parse(s: &str) -> Option<LinkRelation> {
        [
            LinkRelation::Related,
            LinkRelation::Duplicate,
            LinkRelation::Merged,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A link between two tickets, as the detail of either lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLink {
    pub from: i64,
    pub to: i64,
    pub relation: LinkRelation,
    pub ts_ms: i64,
    pub actor: String,
    pub note: String,
}

/// What a resident's tracking code shows: the ticket it follows (after a merge, the
/// ticket it was merged into), the category reported and whether it was rated.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub code: String,
    pub ticket: crate::Ticket,
    pub category: String,
    pub reported_ms: i64,
    /// The note of the latest move to `resolved`, if any.
    pub closure_note: Option<String>,
    pub rating: Option<ResidentRating>,
}

/// A resident's 1-5 stars for a resolved ticket, once per tracking code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentRating {
    pub code: String,
    pub ticket_id: i64,
    /// The station that held the ticket when it was resolved: the one the stars count for.
    pub station: String,
    pub stars: u8,
    pub comment: String,
    pub ts_ms: i64,
}

/// Length of a tracking code.
pub const TRACKING_CODE_LEN: usize = 10;

/// RFC 4648 base32 alphabet, lower case: no look-alike pairs but `l`/`1`, which base32
/// avoids by having no `1`.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new tracking code: 10 base32 characters (50 bits) from the thread's CSPRNG, so one
/// cannot be guessed from another, while short enough to read out over the phone.
pub fn new_tracking_code() -> String {
    let mut rng = rand::rng();
    (0..TRACKING_CODE_LEN)
        .map(|_| char::from(BASE32[rng.random_range(0..32usize)]))
        .collect()
}

/// Whether `code` has the shape of a tracking code (any case).
pub fn is_tracking_code(code: &str) -> bool {
    code.len() == TRACKING_CODE_LEN
        && code
            .bytes()
            .all(|b| BASE32.contains(&b.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_codes_have_their_shape_and_differ() {
        let a = new_tracking_code();
        let b = new_tracking_code();
        assert!(is_tracking_code(&a) && is_tracking_code(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(is_tracking_code(&a.to_uppercase()));
        assert!(!is_tracking_code("abc"));
        assert!(!is_tracking_code("abcdefgh1!"));
    }

    #[test]
    fn phones_are_masked_but_the_last_two_digits() {
        assert_eq!(mask_phone("13912345678"), "*********78");
        assert_eq!(mask_phone("1"), "1");
    }
}
