pub struct LocalPostgres; #[derive(Debug, thiserror::Error)] #[error("x")] pub struct PostgresError;
