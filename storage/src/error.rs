use std::path::PathBuf;

/// What can go wrong in storage. Messages name the file, address or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The managed QuestDB could not be found, prepared or started.
    #[error("questdb start: {reason}")]
    QuestDbStart { reason: String },
    /// QuestDB did not answer a query.
    #[error("questdb query: questdb unreachable: {reason}")]
    Unreachable { reason: String },
    /// QuestDB answered a query with an error status.
    #[error("questdb query: questdb {status}: {message}")]
    QueryRefused { status: u16, message: String },
    /// QuestDB's answer could not be read.
    #[error("questdb query: questdb response: {reason}")]
    BadResponse { reason: String },
    /// The HTTP client for queries could not be built.
    #[error("questdb query: {reason}")]
    Client { reason: String },
    /// The ILP writer could not be started.
    #[error("questdb writer: {reason}")]
    Writer { reason: String },
    /// A spool file or directory could not be read or written.
    #[error("spool {}: {source}", path.display())]
    SpoolIo {
        path: PathBuf,
        source: std::io::Error,
    },
    /// One append larger than a spool record can hold.
    #[error("spool: record of {bytes} bytes is larger than 4 GiB")]
    SpoolRecordTooLarge { bytes: usize },
}
