//! What is delivered and to whom, and how contact details are shown in logs.

use serde::{Deserialize, Serialize};

/// One notification about a ticket at one escalation tier. Its text is built by the caller
/// from ticket fields; it must never carry a secret or an access token (the one-time
/// acknowledgement link is the exception the caller opts into through `link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub ticket_id: String,
    /// The escalation tier this notification belongs to (0 = at raise).
    pub tier: u32,
    /// Reminder number within the tier (0 = the tier's first notice).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// `P1`, `P2`, `P3`.
    pub priority: String,
    pub title: String,
    pub text: String,
    /// A link the recipient can open (ticket page or one-time acknowledgement page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Notification {
    /// Title with the priority in front, as shown in subjects and robot messages.
    pub fn headline(&self) -> String {
        format!("[{}] {}", self.priority, self.title)
    }

    /// Plain text: headline, text, link.
    pub fn plain(&self) -> String {
        let mut s = format!("{}\n{}", self.headline(), self.text);
        if let Some(link) = &self.link {
            s.push('\n');
            s.push_str(link);
        }
        s
    }

    /// Markdown for the group robots (both render a small common subset).
    pub fn markdown(&self) -> String {
        let mut s = format!("### {}\n{}", self.headline(), self.text);
        if let Some(link) = &self.link {
            s.push_str(&format!("\n\n[open]({link})"));
        }
        s
    }
}

/// A person (or group) a notification is for. The endpoint decides the channel; the
/// recipient supplies the address the channel needs (email for SMTP, phone for SMS, and
/// for the robots an optional phone to @-mention in the group).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Recipient {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Recipient {
            id: id.into(),
            name: name.into(),
            phone: None,
            email: None,
        }
    }

    pub fn with_phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }

    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// `id (138****5678, z***@example.com)`: safe for logs and the attempt record.
    pub fn masked(&self) -> String {
        let contacts: Vec<String> = self
            .phone
            .iter()
            .map(|p| mask_phone(p))
            .chain(self.email.iter().map(|e| mask_email(e)))
            .collect();
        if contacts.is_empty() {
            self.id.clone()
        } else {
            format!("{} ({})", self.id, contacts.join(", "))
        }
    }
}

/// Contact details stay out of `Debug` (and so out of logs that print a recipient).
impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("phone", &self.phone.as_deref().map(mask_phone))
            .field("email", &self.email.as_deref().map(mask_email))
            .finish()
    }
}

// One masking for the whole hub: the estate's (people's contacts are masked the same way
// in the API, logs and the delivery record).
pub use steward_estate::people::{mask_email, mask_phone};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_contacts() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+8613812345678"), "+86****5678");
        assert_eq!(mask_phone("12345"), "****45");
        assert_eq!(mask_email("zhang.san@example.com"), "z***@example.com");
        let r = Recipient::new("crew-1", "Zhang San")
            .with_phone("13812345678")
            .with_email("zhang.san@example.com");
        let debug = format!("{r:?}");
        assert!(!debug.contains("13812345678"), "{debug}");
        assert!(!debug.contains("zhang.san@"), "{debug}");
        assert_eq!(r.masked(), "crew-1 (138****5678, z***@example.com)");
    }
}
