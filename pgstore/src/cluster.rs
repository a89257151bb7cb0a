//! Cluster mode's exactly-once-into-a-database pattern: each consumed partition has a
//! row with the next offset to read and a fencing epoch. A worker that takes a
//! partition bumps its epoch; a batch commits its tickets, rule state and offsets in
//! one transaction only if every partition it read is still at the epoch the worker
//! claimed, so a worker that lost a partition (paused, partitioned away) cannot write
//! after the one that took it over.

use crate::conn::{lost, off_runtime, Db, PgTicketStore, State};
use crate::PgStoreError;

type E = PgStoreError;

/// A partition taken: the epoch to fence writes with and where to resume reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub epoch: i64,
    /// The next offset to consume; -1 when no batch of the partition was ever committed.
    pub next_offset: i64,
}

/// What a batch read from one partition: the epoch it was claimed at and the offset to
/// resume from once the batch is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub epoch: i64,
    pub next_offset: i64,
}

impl PgTicketStore {
    /// Take a partition: bump its epoch (every earlier claim is fenced from now on) and
    /// return it with the committed offset. Commits at once, on a connection of its own,
    /// whatever batch is open.
    pub fn claim_partition(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Claim, PgStoreError> {
        let mut slot = self.shared.claims.lock();
        let slot: &mut Option<Db> = &mut slot;
        off_runtime(|| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let db = self.connected(slot)?;
                let r = db.one(
                    "INSERT INTO partition_offsets(consumer_group, topic, partition_id, epoch, next_offset)
                     VALUES($1, $2, $3, 1, -1)
                     ON CONFLICT (consumer_group, topic, partition_id)
                     DO UPDATE SET epoch = partition_offsets.epoch + 1
                     RETURNING epoch, next_offset",
                    &[&group, &topic, &partition],
                );
                match r {
                    Ok(row) => {
                        return Ok(Claim {
                            epoch: row.try_get(0)?,
                            next_offset: row.try_get(1)?,
                        })
                    }
                    Err(e) if attempt < 2 && lost(&e, Some(db)) => *slot = None,
                    Err(e) => return Err(e),
                }
            }
        })
    }

    /// Commit the open batch together with the offsets of `fences`, if every partition
    /// is still at its fence's epoch (rows locked until the commit, so no claim slips
    /// in between). Otherwise roll the whole batch back and return
    /// [`PgStoreError::Fenced`]; also when the transaction can no longer commit (the
    /// server ended it, the connection was lost), since the caller must then reload
    /// from the database either way. Without an open batch, commits the offsets alone.
    pub fn commit_fenced(&self, fences: &[Fence]) -> Result<(), PgStoreError> {
        self.begin()?;
        let mut guard = self.shared.state.lock();
        let st: &mut State = &mut guard;
        st.in_batch = false;
        let broken = std::mem::take(&mut st.broken);
        let fenced = |f: &Fence, current: Option<i64>| E::Fenced {
            topic: f.topic.clone(),
            partition: f.partition,
            epoch: f.epoch,
            current,
        };
        let Some(db) = st.db.as_mut().filter(|_| !broken) else {
            st.db = None;
            return Err(fences.first().map_or(E::BatchLost, |f| fenced(f, None)));
        };
        let (refusal, rolled_back) = off_runtime(|| {
            let refusal = match check_and_commit(db, fences) {
                Ok(()) => return (None, true),
                Err(Refusal::Moved(i, current)) => fenced(&fences[i], current),
                Err(Refusal::Failed(i, e)) => {
                    tracing::warn!(error = %e, "fenced commit failed; the batch is rolled back");
                    match fences.get(i) {
                        Some(f) => fenced(f, None),
                        None => e,
                    }
                }
            };
            (Some(refusal), db.simple("ROLLBACK").is_ok())
        });
        if !rolled_back {
            st.db = None;
        }
        refusal.map_or(Ok(()), Err)
    }

    /// Saved rule state of these devices only, by device id (a worker loads the devices
    /// of the partitions it takes, not the whole estate).
    pub fn load_rule_states_for(
        &self,
        device_ids: &[String],
    ) -> Result<Vec<(String, String)>, PgStoreError> {
        self.run(
            false,
            |db| crate::log::load_rule_states_for(db, device_ids),
            |_| {},
        )
    }

    /// Where `group` resumes `topic/partition` and at which epoch, without claiming it
    /// (`None` when never claimed).
    pub fn partition_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Claim>, PgStoreError> {
        self.run(
            false,
            |db| {
                db.opt(
                    "SELECT epoch, next_offset FROM partition_offsets
                     WHERE consumer_group=$1 AND topic=$2 AND partition_id=$3",
                    &[&group, &topic, &partition],
                )?
                .map(|r| {
                    Ok(Claim {
                        epoch: r.try_get(0)?,
                        next_offset: r.try_get(1)?,
                    })
                })
                .transpose()
            },
            |_| {},
        )
    }
}

enum Refusal {
    /// Fence `i` no longer holds; the partition's epoch now (`None`: never claimed).
    Moved(usize, Option<i64>),
    /// A statement failed at fence `i` (`fences.len()` for the commit itself).
    Failed(usize, E),
}

fn check_and_commit(db: &mut Db, fences: &[Fence]) -> Result<(), Refusal> {
    for (i, f) in fences.iter().enumerate() {
        let fail = |e| Refusal::Failed(i, e);
        let row = db
            .opt(
                "SELECT epoch FROM partition_offsets
                 WHERE consumer_group=$1 AND topic=$2 AND partition_id=$3 FOR UPDATE",
                &[&f.group, &f.topic, &f.partition],
            )
            .map_err(fail)?;
        let current: Option<i64> = row
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| fail(e.into()))?;
        if current != Some(f.epoch) {
            return Err(Refusal::Moved(i, current));
        }
        db.exec(
            "UPDATE partition_offsets SET next_offset=$4
             WHERE consumer_group=$1 AND topic=$2 AND partition_id=$3",
            &[&f.group, &f.topic, &f.partition, &f.next_offset],
        )
        .map_err(fail)?;
    }
    db.simple("COMMIT")
        .map_err(|e| Refusal::Failed(fences.len().saturating_sub(1), e))
}
