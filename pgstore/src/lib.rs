//! The ticket store on PostgreSQL, for cluster mode: [`PgTicketStore`] implements
//! [`steward_tickets::TicketStore`] with the semantics of the SQLite store (same
//! tickets, audit trail, SLA clocks, event log, rule state, desk tables, same errors and
//! JSON), shared by every node of a cluster.
//!
//! For the rule workers it adds the exactly-once-into-a-database pattern: the consumed
//! Kafka offsets of each partition live in the same database with a fencing epoch
//! ([`PgTicketStore::claim_partition`]), and a batch of ticket writes commits together
//! with its offsets only while the worker still holds every partition it read
//! ([`PgTicketStore::commit_fenced`]); a late writer is refused and leaves nothing.
//!
//! Boundaries: it stores what the ticket domain decides (the lifecycle and SLA
//! arithmetic are the tickets crate's) and knows nothing of Kafka, MQTT, QuestDB or
//! HTTP; it does not start PostgreSQL (the testbed crate does, for tests) and creates
//! only its own tables.

mod cluster;
mod conn;
mod ddl;
mod dispatch;
mod estate_log;
mod lifecycle;
mod log;
mod read;
mod schema;
mod sla;
mod store;

pub use cluster::{Claim, Fence};
pub use conn::{Options, PgTicketStore};
pub use estate_log::PgEstateLog;

use steward_tickets::TicketError;

/// Failures of the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] postgres::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// A refusal or invalid value of the ticket domain, passed through unchanged.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The batch could not commit because this worker no longer owns `topic/partition`
    /// at `epoch`: another worker claimed it (`current` is its epoch), or the server
    /// ended the transaction (`current` is `None`: the connection was lost, e.g. by the
    /// idle-in-transaction timeout). Nothing of the batch was written.
    #[error(
        "partition {topic}/{partition}: fenced (batch epoch {epoch}, current epoch {current:?}); \
         nothing of the batch was written"
    )]
    Fenced {
        topic: String,
        partition: i32,
        epoch: i64,
        current: Option<i64>,
    },
    /// The connection of the open batch was lost: the batch is gone and every write
    /// until it is committed or rolled back is refused.
    #[error("the open batch was lost with its PostgreSQL connection; roll it back")]
    BatchLost,
}

impl PgStoreError {
    fn corrupt(what: impl Into<String>) -> PgStoreError {
        PgStoreError::Ticket(TicketError::Corrupt(what.into()))
    }
}

impl From<PgStoreError> for TicketError {
    fn from(e: PgStoreError) -> TicketError {
        match e {
            PgStoreError::Ticket(t) => t,
            PgStoreError::Postgres(p) => TicketError::Database(Box::new(p)),
            other => TicketError::Database(Box::new(other)),
        }
    }
}
