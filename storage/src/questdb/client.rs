//! A small client for QuestDB's HTTP `/exec` endpoint (DDL and queries). questdb-rs's
//! reader needs QuestDB 10, so 9.x is queried here.

use crate::StorageError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone)]
pub struct QuestDbClient {
    http: reqwest::Client,
    base: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// Result set of a query, as QuestDB returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryResult {
    #[serde(default)]
    pub columns: Vec<Column>,
    #[serde(default)]
    pub dataset: Vec<Vec<serde_json::Value>>,
    #[serde(default)]
    pub count: u64,
}

impl QueryResult {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
    /// First cell of the first row as i64 (for `SELECT count() ...`).
    pub fn scalar_i64(&self) -> Option<i64> {
        self.dataset.first()?.first()?.as_i64()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl QuestDbClient {
    pub fn new(http_addr: SocketAddr) -> Result<QuestDbClient, StorageError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StorageError::Client {
                reason: e.to_string(),
            })?;
        Ok(QuestDbClient {
            http,
            base: format!("http://{http_addr}"),
        })
    }

    /// Run one SQL statement. Callers never splice outside input into `sql`: identifiers come
    /// from the catalogue and values are validated or bound by the caller.
    pub async fn exec(&self, sql: &str) -> Result<QueryResult, StorageError> {
        let resp = self
            .http
            .get(format!("{}/exec", self.base))
            .query(&[("query", sql)])
            .send()
            .await
            .map_err(|e| StorageError::Unreachable {
                reason: e.to_string(),
            })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| StorageError::BadResponse {
            reason: e.to_string(),
        })?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(StorageError::QueryRefused {
                status: status.as_u16(),
                message: msg,
            });
        }
        serde_json::from_slice(&body).map_err(|e| StorageError::BadResponse {
            reason: format!("not JSON: {e}"),
        })
    }

    pub async fn ping(&self) -> bool {
        matches!(
            self.http.get(format!("{}/ping", self.base)).send().await,
            Ok(r) if r.status().is_success()
        )
    }

    /// Set every table's and rollup's TTL from `[questdb.retention]`; applied at every
    /// start so a changed setting takes effect.
    pub async fn apply_retention(
        &self,
        cfg: &super::retention::RetentionConfig,
    ) -> Result<(), StorageError> {
        for ttl in cfg.ttls() {
            self.exec(&ttl.sql()).await?;
        }
        Ok(())
    }

    /// Create the hub's tables and rollup views (idempotent).
    pub async fn create_tables(&self) -> Result<(), StorageError> {
        for ddl in super::schema::all_ddl() {
            self.exec(&ddl).await?;
        }
        Ok(())
    }
}
