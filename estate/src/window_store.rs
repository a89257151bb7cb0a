//! The registry's side of maintenance windows: the snapshot the rules read, windows
//! created and deleted through the API. Apart from `windows.rs` so that the window model
//! does not import the registry that stores it.

use crate::registry::Registry;
use crate::windows::{
    check, insert, MaintenanceWindow, WindowDef, WindowSet, WindowSource, WindowTarget,
};
use crate::EstateError;
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::Arc;

impl Registry {
    /// The zone API window times are read and shown in: the estate's (`timezone`).
    pub fn window_offset(&self) -> Tz {
        self.people().timezone()
    }

    /// Current windows snapshot; cheap to call per message.
    pub fn windows(&self) -> Arc<WindowSet> {
        self.windows_snapshot()
    }

    /// Validate and store a window created through the API. Local times are read in the
    /// estate's zone. Errors name the field (`building: unknown building ...`).
    pub fn create_window(
        &self,
        def: &WindowDef,
        created_by: Option<&str>,
    ) -> Result<MaintenanceWindow, EstateError> {
        let offset = self.window_offset();
        let dir = self.directory();
        let buildings = self.building_compounds()?;
        let known = |t: &WindowTarget| match t {
            WindowTarget::Device(d) => dir.device(d).is_some(),
            WindowTarget::Building(b) => buildings.contains_key(b),
            WindowTarget::Compound(c) => dir.compounds.contains_key(c),
        };
        let mut w =
            check(def, "", offset, &known, WindowSource::Api).map_err(EstateError::Invalid)?;
        w.created_by = created_by.map(str::to_string);
        {
            let conn = self.conn.lock();
            let exists = conn
                .query_row(
                    "SELECT 1 FROM maintenance_windows WHERE id=?1",
                    [&w.id],
                    |_| Ok(()),
                )
                .map(|_| true)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(false),
                    e => Err(e),
                })?;
            if exists {
                return Err(EstateError::Invalid(vec![format!(
                    "id: a window `{}` already exists",
                    w.id
                )]));
            }
            insert(&conn, &w, false)?;
            self.record(&conn, || {
                Ok(crate::changes::Change::WindowCreated { window: w.clone() })
            })?;
        }
        self.reload_windows()?;
        Ok(w)
    }

    /// Remove a window (file windows come back at the next load of the estate file).
    pub fn delete_window(&self, id: &str) -> Result<(), EstateError> {
        {
            let conn = self.conn.lock();
            let n = conn.execute("DELETE FROM maintenance_windows WHERE id=?1", [id])?;
            if n == 0 {
                return Err(EstateError::NotFound(format!("maintenance window `{id}`")));
            }
            self.record(&conn, || {
                Ok(crate::changes::Change::WindowDeleted { id: id.to_string() })
            })?;
        }
        self.reload_windows()
    }

    /// Every building's compound.
    pub fn building_compounds(&self) -> Result<HashMap<String, String>, EstateError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT id, compound FROM buildings")?;
        let map = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(map)
    }
}
