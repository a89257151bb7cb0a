//! The durable spool between decoding and QuestDB: every accepted row is appended to an
//! on-disk segment before it is sent, and a segment is deleted only after QuestDB took it.
//!
//! A segment is one QuestDB batch. It is a sequence of records, each
//! `[len: u32 LE][crc32: u32 LE][rows: u32 LE][len bytes of ILP]`, appended as the ingest
//! loop decodes, so a killed hub loses at most the tail it had not written yet. On start
//! the segments left on disk are checked (a torn last record is cut off) and sent again;
//! QuestDB's `DEDUP UPSERT KEYS` makes a segment sent twice land once.
//!
//! Why hand-written: the format is a few dozen lines, and the crates that offer a
//! persistent queue either store items one by one (a fsync per message) or bring their own
//! runtime; a segment that is exactly one HTTP batch keeps replay a plain file read.

use crate::StorageError;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::{info, warn};

const HEADER: usize = 12;
const EXT: &str = "seg";

/// A sealed segment waiting for QuestDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// The segment directory: the open segment plus the sealed ones waiting for QuestDB.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    fsync: bool,
    next_id: u64,
    open: Option<OpenSegment>,
    /// Bytes on disk in sealed and open segments; the writer lowers it as it delivers.
    disk_bytes: Arc<AtomicU64>,
}

struct OpenSegment {
    id: u64,
    file: File,
    rows: u64,
    bytes: u64,
    /// A write failed part-way: bytes after `bytes` may be a torn record, to be cut off
    /// before the next append (on recovery they would end the segment early).
    torn: bool,
    /// Records appended since the last `sync`.
    unsynced: bool,
}

impl Spool {
    /// Open (creating) the spool directory and return it with the sealed segments found
    /// there, oldest first, to be sent again.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        fsync: bool,
    ) -> Result<(Spool, Vec<SegmentInfo>), StorageError> {
        let err = |e: std::io::Error| StorageError::SpoolIo {
            path: dir.to_path_buf(),
            source: e,
        };
        fs::create_dir_all(dir).map_err(err)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).map_err(err)? {
            let path = entry.map_err(err)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXT) {
                continue;
            }
            let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                warn!(file = %path.display(), "not a spool segment name; ignored");
                continue;
            };
            match recover(&path) {
                Ok((rows, bytes)) if rows > 0 => found.push(SegmentInfo { id, rows, bytes }),
                Ok(_) => {
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(err(e)),
            }
        }
        found.sort_by_key(|s| s.id);
        let next_id = found.last().map_or(1, |s| s.id + 1);
        let disk_bytes = Arc::new(AtomicU64::new(found.iter().map(|s| s.bytes).sum()));
        if !found.is_empty() {
            info!(
                segments = found.len(),
                rows = found.iter().map(|s| s.rows).sum::<u64>(),
                "spool holds rows from a previous run; sending them again"
            );
        }
        Ok((
            Spool {
                dir: dir.to_path_buf(),
                max_bytes,
                fsync,
                next_id,
                open: None,
                disk_bytes,
            },
            found,
        ))
    }

    pub fn path_of(&self, id: u64) -> PathBuf {
        segment_path(&self.dir, id)
    }

    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }

    /// The on-disk total, shared with the writer.
    pub fn shared_bytes(&self) -> Arc<AtomicU64> {
        self.disk_bytes.clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `more` bytes would go past the size bound.
    pub fn is_full(&self, more: usize) -> bool {
        self.disk_bytes() + (more + HEADER) as u64 > self.max_bytes
    }

    /// Append one record (whole ILP rows) to the open segment, opening one if needed.
    pub fn append(&mut self, ilp: &[u8], rows: u64) -> Result<(), StorageError> {
        if ilp.is_empty() {
            return Ok(());
        }
        if self.open.is_none() {
            let id = self.next_id;
            self.next_id += 1;
            let path = segment_path(&self.dir, id);
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)
                .map_err(|e| StorageError::SpoolIo {
                    path: path.clone(),
                    source: e,
                })?;
            self.open = Some(OpenSegment {
                id,
                file,
                rows: 0,
                bytes: 0,
                torn: false,
                unsynced: false,
            });
        }
        let Some(seg) = self.open.as_mut() else {
            return Ok(());
        };
        let io_err = |e| StorageError::SpoolIo {
            path: segment_path(&self.dir, seg.id),
            source: e,
        };
        if seg.torn {
            // Cut what a failed write left before writing after it; if the disk still
            // refuses, nothing is written and the caller tries again later.
            seg.file.set_len(seg.bytes).map_err(io_err)?;
            seg.file.seek(SeekFrom::Start(seg.bytes)).map_err(io_err)?;
            seg.torn = false;
        }
        let len = u32::try_from(ilp.len())
            .map_err(|_| StorageError::SpoolRecordTooLarge { bytes: ilp.len() })?;
        let mut header = [0u8; HEADER];
        header[0..4].copy_from_slice(&len.to_le_bytes());
        header[4..8].copy_from_slice(&crc32fast::hash(ilp).to_le_bytes());
        header[8..12].copy_from_slice(&(rows as u32).to_le_bytes());
        // One write per record: after it returns the bytes are the kernel's, so a killed
        // process loses nothing it appended (a power cut may, until the fsync at seal).
        let mut record = Vec::with_capacity(HEADER + ilp.len());
        record.extend_from_slice(&header);
        record.extend_from_slice(ilp);
        if let Err(e) = seg.file.write_all(&record) {
            seg.torn = true;
            return Err(io_err(e));
        }
        seg.rows += rows;
        seg.bytes += record.len() as u64;
        seg.unsynced = true;
        self.disk_bytes
            .fetch_add(record.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Make the records appended so far survive a power cut (`fdatasync` of the open
    /// segment); a no-op when nothing was appended since the last call.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        let Some(seg) = self.open.as_mut().filter(|s| s.unsynced) else {
            return Ok(());
        };
        seg.file.sync_data().map_err(|e| StorageError::SpoolIo {
            path: segment_path(&self.dir, seg.id),
            source: e,
        })?;
        seg.unsynced = false;
        Ok(())
    }

    /// Close the open segment; it is now a batch for QuestDB.
    pub fn seal(&mut self) -> Result<Option<SegmentInfo>, StorageError> {
        let Some(seg) = self.open.take() else {
            return Ok(None);
        };
        if self.fsync {
            seg.file.sync_data().map_err(|e| StorageError::SpoolIo {
                path: segment_path(&self.dir, seg.id),
                source: e,
            })?;
        }
        Ok(Some(SegmentInfo {
            id: seg.id,
            rows: seg.rows,
            bytes: seg.bytes,
        }))
    }
}

pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}.{EXT}"))
}

/// Read a sealed segment's ILP bytes (the records' payloads, concatenated).
pub fn read_segment(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    File::open(path)?.read_to_end(&mut raw)?;
    let mut out = Vec::with_capacity(raw.len());
    for_each_record(&raw, |payload, _| out.extend_from_slice(payload));
    Ok(out)
}

/// Walk the valid records; returns the length of the valid prefix.
fn for_each_record(raw: &[u8], mut f: impl FnMut(&[u8], u64)) -> usize {
    let mut at = 0;
    while raw.len() - at >= HEADER {
        let word = |i: usize| {
            u32::from_le_bytes([
                raw[at + i],
                raw[at + i + 1],
                raw[at + i + 2],
                raw[at + i + 3],
            ])
        };
        let (len, crc, rows) = (word(0) as usize, word(4), word(8) as u64);
        let Some(payload) = raw.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        f(payload, rows);
        at += HEADER + len;
    }
    at
}

/// Check a segment left by a previous run and cut off a torn tail (a record whose write
/// was interrupted). Returns its rows and bytes.
fn recover(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut raw = Vec::new();
    File::open(path)?.read_to_end(&mut raw)?;
    let mut rows = 0;
    let valid = for_each_record(&raw, |_, r| rows += r);
    if valid < raw.len() {
        warn!(
            file = %path.display(),
            kept = valid,
            cut = raw.len() - valid,
            "spool segment has a torn tail; cutting it off"
        );
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(valid as u64)?;
    }
    Ok((rows, valid as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_survive_reopen_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut spool, found) = Spool::open(dir.path(), 1 << 20, false).expect("open");
        assert!(found.is_empty());
        spool.append(b"a x=1i 1\n", 1).expect("append");
        spool.append(b"a x=2i 2\nb y=3i 3\n", 2).expect("append");
        let sealed = spool.seal().expect("seal").expect("segment");
        assert_eq!(sealed.rows, 3);
        spool.append(b"c z=4i 4\n", 1).expect("append");
        // The second segment stays open, as if the hub were killed here, then gets torn.
        let open_path = spool.path_of(sealed.id + 1);
        drop(spool);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&open_path)
            .expect("open");
        f.write_all(&[9, 0, 0, 0, 1, 2]).expect("torn write");
        drop(f);

        let (mut spool, found) = Spool::open(dir.path(), 1 << 20, false).expect("reopen");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].rows, 3);
        assert_eq!(found[1].rows, 1);
        assert_eq!(
            read_segment(&spool.path_of(found[0].id)).expect("read"),
            b"a x=1i 1\na x=2i 2\nb y=3i 3\n"
        );
        assert_eq!(
            read_segment(&spool.path_of(found[1].id)).expect("read"),
            b"c z=4i 4\n"
        );
        // New segments never reuse an id still on disk.
        spool.append(b"d w=5i 5\n", 1).expect("append");
        let next = spool.seal().expect("seal").expect("segment");
        assert!(next.id > found[1].id);
    }

    #[test]
    fn a_write_that_failed_part_way_is_cut_before_the_next_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut spool, _) = Spool::open(dir.path(), 1 << 20, false).expect("open");
        spool.append(b"a x=1i 1\n", 1).expect("append");
        // What a write cut short by a full disk leaves: part of a record after the last
        // whole one, with the file position past it.
        let seg = spool.open.as_mut().expect("open segment");
        seg.file
            .write_all(&[40, 0, 0, 0, 1, 2])
            .expect("partial write");
        seg.torn = true;
        spool
            .append(b"b y=2i 2\n", 1)
            .expect("append after the disk recovered");
        spool.sync().expect("sync");
        drop(spool);
        let (spool, found) = Spool::open(dir.path(), 1 << 20, false).expect("reopen");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rows, 2, "both records survive");
        assert_eq!(
            read_segment(&spool.path_of(found[0].id)).expect("read"),
            b"a x=1i 1\nb y=2i 2\n"
        );
    }

    #[test]
    fn corrupt_record_ends_the_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut spool, _) = Spool::open(dir.path(), 1 << 20, false).expect("open");
        spool.append(b"a x=1i 1\n", 1).expect("append");
        spool.append(b"a x=2i 2\n", 1).expect("append");
        let seg = spool.seal().expect("seal").expect("segment");
        let path = spool.path_of(seg.id);
        let mut raw = fs::read(&path).expect("read");
        let last = raw.len() - 2;
        raw[last] ^= 0xff;
        fs::write(&path, raw).expect("write");
        let (spool, found) = Spool::open(dir.path(), 1 << 20, false).expect("reopen");
        assert_eq!(found[0].rows, 1);
        assert_eq!(
            read_segment(&spool.path_of(found[0].id)).expect("read"),
            b"a x=1i 1\n"
        );
    }

    #[test]
    fn size_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut spool, _) = Spool::open(dir.path(), 100, false).expect("open");
        assert!(!spool.is_full(50));
        spool.append(&[b'x'; 60], 1).expect("append");
        assert!(spool.is_full(50));
        spool.shared_bytes().fetch_sub(72, Ordering::Relaxed);
        assert!(!spool.is_full(50));
    }
}
