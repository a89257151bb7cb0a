//! Where ticket photos are kept on disk (`api.photo_dir`). Apart from the handlers in
//! `photos.rs` so that the shared state does not import them.

use std::path::PathBuf;
use std::sync::Arc;

/// Where photos are kept (`api.photo_dir`).
#[derive(Clone, Debug)]
pub struct PhotoStore {
    dir: Arc<PathBuf>,
}

impl PhotoStore {
    pub fn new(dir: impl Into<PathBuf>) -> PhotoStore {
        PhotoStore {
            dir: Arc::new(dir.into()),
        }
    }

    pub(crate) fn ticket_dir(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string())
    }
}

impl Default for PhotoStore {
    fn default() -> Self {
        PhotoStore::new(std::env::temp_dir().join("steward-photos"))
    }
}
