//! The snapshot as a tar stream.
//!
//! Deterministic: entries in path order, explicit 0755 directories, files
//! 0644/0755, symlinks as symlinks, mtime 0 unless the snapshot was stamped
//! (`times.rs`), uid/gid 0, no user names. Each
//! file is read straight into the stream (no temp copy). A reader thread
//! opens and reads worktree files ahead of the writer; memory in flight stays
//! bounded (see `PREFETCH_*`), plus one blob for object-database entries.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::thread::JoinHandle;

use gix::bstr::{BStr, ByteSlice};

use super::{rela_path, Entry, FileKind, Snapshot, SnapshotError, Source};

impl Snapshot {
    /// Writes the snapshot as a tar to `w`; returns the number of bytes written.
    ///
    /// Worktree files are read at this moment: a file edited after the
    /// snapshot was taken is archived as it is now (its id was computed
    /// before); a file that shrinks while being read is an error.
    pub fn write_tar<W: Write>(&self, w: W) -> Result<u64, SnapshotError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH_BATCHES);
        std::thread::scope(|scope| {
            // Opening and reading files overlaps with writing the stream: on
            // a warm cache both are memory copies, and they run on two cores.
            // Entries travel in batches, so the two threads wake each other
            // rarely. If the writer stops early it drops `rx`, and the reader
            // stops.
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(PREFETCH_BATCH_ENTRIES);
                let mut batch_bytes = 0;
                for entry in &self.entries {
                    let item = self.prefetch(entry);
                    batch_bytes += item.held_bytes();
                    let holds_fd = matches!(item, Prefetched::Large(..));
                    batch.push(item);
                    // A batch holding an open file is sent at once, so at most
                    // a handful of descriptors are open at any time.
                    if holds_fd || batch.len() == PREFETCH_BATCH_ENTRIES || batch_bytes >= PREFETCH_BATCH_BYTES {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(PREFETCH_BATCH_ENTRIES));
                        batch_bytes = 0;
                        if tx.send(full).is_err() {
                            return;
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
            });
            self.write_entries(w, rx)
        })
    }

    fn write_entries<W: Write>(
        &self,
        w: W,
        batches: std::sync::mpsc::Receiver<Vec<Prefetched>>,
    ) -> Result<u64, SnapshotError> {
        let mut counted = Counted { inner: w, written: 0 };
        let repo = self.repo.to_thread_local();
        let mut builder = tar::Builder::new(&mut counted);
        let mut dirs: HashSet<&BStr> = HashSet::new();
        let mut prefetched = Vec::new().into_iter();
        for (index, entry) in self.entries.iter().enumerate() {
            let parents =
                entry.path.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(end, _)| entry.path[..end].as_bstr());
            for parent in parents {
                if dirs.insert(parent) {
                    append_dir(&mut builder, parent, self.dir_mtime())?;
                }
            }
            let data = match prefetched.next() {
                Some(data) => data,
                None => {
                    prefetched = batches
                        .recv()
                        .map_err(|_| SnapshotError::Tar {
                            source: io::Error::other("the snapshot file reader stopped early"),
                        })?
                        .into_iter();
                    prefetched.next().ok_or_else(|| SnapshotError::Tar {
                        source: io::Error::other("the snapshot file reader sent an empty batch"),
                    })?
                }
            };
            self.append_entry(&repo, &mut builder, entry, self.entry_mtime(index), data)?;
        }
        builder.finish().map_err(|source| SnapshotError::Tar { source })?;
        drop(builder);
        counted.inner.flush().map_err(|source| SnapshotError::Tar { source })?;
        Ok(counted.written)
    }

    /// Reads what the tar needs from the working tree for `entry`: small files
    /// whole, large ones opened for streaming, links' targets.
    fn prefetch(&self, entry: &Entry) -> Prefetched {
        if entry.source != Source::Worktree {
            return Prefetched::Nothing;
        }
        let full = match self.worktree_path(&entry.path) {
            Ok(full) => full,
            Err(err) => return Prefetched::Failed(err),
        };
        let read_err = |source| Prefetched::Failed(SnapshotError::Read { path: full.clone(), source });
        match entry.kind {
            FileKind::Submodule => Prefetched::Nothing,
            FileKind::Symlink => match std::fs::read_link(&full) {
                Ok(target) => Prefetched::Link(target),
                Err(err) => read_err(err),
            },
            FileKind::File | FileKind::Executable => {
                let file = match std::fs::File::open(&full) {
                    Ok(file) => file,
                    Err(err) => return read_err(err),
                };
                let len = match file.metadata() {
                    Ok(meta) => meta.len(),
                    Err(err) => return read_err(err),
                };
                if len > PREFETCH_MAX_FILE {
                    return Prefetched::Large(file, len);
                }
                // Exactly the size seen at open time goes into the tar; one
                // read per small file (read_to_end would stat again, read in
                // 8 KiB steps and probe for EOF).
                let mut data = vec![0; len as usize];
                match (&file).read_exact(&mut data) {
                    Ok(()) => Prefetched::Data(data),
                    Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                        Prefetched::Failed(SnapshotError::ChangedWhileArchiving { path: full.clone(), expected: len })
                    }
                    Err(err) => read_err(err),
                }
            }
        }
    }

    /// The tar as a reader, for uploading: a thread runs [`Snapshot::write_tar`]
    /// into a pipe, so at most a pipe buffer is in flight. A failure of the
    /// writer surfaces as an error from `read` at the end of the stream, never
    /// as a silently short tar.
    pub fn tar_reader(&self) -> Result<TarReader, SnapshotError> {
        let (reader, writer) = io::pipe().map_err(|source| SnapshotError::Tar { source })?;
        grow_pipe(&writer);
        let snapshot = self.clone();
        let handle = std::thread::Builder::new()
            .name("snapshot-tar".into())
            .spawn(move || snapshot.write_tar(writer))
            .map_err(|source| SnapshotError::Tar { source })?;
        Ok(TarReader { pipe: reader, writer: Some(handle) })
    }

    fn append_entry<W: Write>(
        &self,
        repo: &gix::Repository,
        builder: &mut tar::Builder<W>,
        entry: &Entry,
        mtime: u64,
        prefetched: Prefetched,
    ) -> Result<(), SnapshotError> {
        let header = |kind, mode, size| header(kind, mode, size, mtime);
        let path = rela_path(&entry.path);
        let tar_err = |source| SnapshotError::Tar { source };
        match (entry.kind, prefetched) {
            (_, Prefetched::Failed(err)) => Err(err),
            // Submodule content is not part of the snapshot; an empty
            // directory keeps the path, as an uninitialised checkout would.
            (FileKind::Submodule, _) => append_dir(builder, entry.path.as_bstr(), mtime),
            (FileKind::Symlink, Prefetched::Link(target)) => {
                builder.append_link(&mut header(tar::EntryType::Symlink, 0o777, 0), path, target).map_err(tar_err)
            }
            (FileKind::Symlink, _) => {
                let blob = self.blob(repo, entry)?;
                builder
                    .append_link(&mut header(tar::EntryType::Symlink, 0o777, 0), path, rela_path(&blob))
                    .map_err(tar_err)
            }
            (kind, Prefetched::Data(data)) => builder
                .append_data(
                    &mut header(tar::EntryType::Regular, file_mode(kind), data.len() as u64),
                    path,
                    data.as_slice(),
                )
                .map_err(tar_err),
            (kind, Prefetched::Large(file, len)) => {
                let full = self.worktree_path(&entry.path)?;
                let mut exact = Exact { inner: file.take(len), remaining: len, failure: None };
                let result =
                    builder.append_data(&mut header(tar::EntryType::Regular, file_mode(kind), len), path, &mut exact);
                match (result, exact.failure) {
                    (Ok(()), _) => Ok(()),
                    (Err(_), Some(Failure::Shrank)) => {
                        Err(SnapshotError::ChangedWhileArchiving { path: full, expected: len })
                    }
                    (Err(_), Some(Failure::Read(source))) => Err(SnapshotError::Read { path: full, source }),
                    (Err(source), None) => Err(SnapshotError::Tar { source }),
                }
            }
            (kind, _) => {
                let blob = self.blob(repo, entry)?;
                builder
                    .append_data(
                        &mut header(tar::EntryType::Regular, file_mode(kind), blob.len() as u64),
                        path,
                        blob.as_slice(),
                    )
                    .map_err(tar_err)
            }
        }
    }

    fn blob(&self, repo: &gix::Repository, entry: &Entry) -> Result<Vec<u8>, SnapshotError> {
        let object = repo
            .find_object(entry.id)
            .map_err(SnapshotError::git(repo, format!("reading blob {} for {}", entry.id, entry.path)))?;
        Ok(object.detach().data)
    }
}

/// A 64 KiB pipe (Linux's default) means a context switch every 64 KiB of a
/// 200 MB stream; 1 MiB lets reader and writer run in longer stretches.
/// Best effort: a refusal (e.g. over /proc/sys/fs/pipe-max-size) only costs speed.
#[cfg(target_os = "linux")]
fn grow_pipe(pipe: &io::PipeWriter) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ on a pipe fd we own; it reads no memory of ours.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

#[cfg(not(target_os = "linux"))]
fn grow_pipe(_pipe: &io::PipeWriter) {}

/// The reader runs at most `PREFETCH_BATCHES` batches ahead of the writer; a
/// batch closes at `PREFETCH_BATCH_ENTRIES` entries or once it holds
/// `PREFETCH_BATCH_BYTES`; files above `PREFETCH_MAX_FILE` are streamed, not
/// held. Memory in flight stays under (4 + 2) × (4 MiB + 256 KiB) ≈ 26 MiB.
const PREFETCH_BATCHES: usize = 4;
const PREFETCH_BATCH_ENTRIES: usize = 64;
const PREFETCH_BATCH_BYTES: usize = 4 << 20;
const PREFETCH_MAX_FILE: u64 = 256 * 1024;

/// What the reader thread prepared for one entry, in entry order.
enum Prefetched {
    /// Not a worktree file (object-database entries are read by the writer).
    Nothing,
    Data(Vec<u8>),
    /// Too large to hold: opened, with its size at open time, for streaming.
    Large(std::fs::File, u64),
    Link(std::path::PathBuf),
    Failed(SnapshotError),
}

impl Prefetched {
    fn held_bytes(&self) -> usize {
        match self {
            Prefetched::Data(data) => data.len(),
            _ => 0,
        }
    }
}

fn file_mode(kind: FileKind) -> u32 {
    if kind == FileKind::Executable {
        0o755
    } else {
        0o644
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &BStr, mtime: u64) -> Result<(), SnapshotError> {
    builder
        .append_data(&mut header(tar::EntryType::Directory, 0o755, 0, mtime), rela_path(path), io::empty())
        .map_err(|source| SnapshotError::Tar { source })
}

enum Failure {
    Shrank,
    Read(io::Error),
}

/// Yields exactly `remaining` bytes of a file whose size went into the tar
/// header, and remembers why it could not, so the error names the file.
struct Exact<R> {
    inner: R,
    remaining: u64,
    failure: Option<Failure>,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.failure = Some(Failure::Shrank);
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while archiving"))
            }
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Err(err),
            Err(err) => {
                let kind = err.kind();
                self.failure = Some(Failure::Read(err));
                Err(io::Error::new(kind, "reading a file for the tar failed"))
            }
        }
    }
}

struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The snapshot tar as a `Read + Send` stream (see [`Snapshot::tar_reader`]).
pub struct TarReader {
    pipe: io::PipeReader,
    writer: Option<JoinHandle<Result<u64, SnapshotError>>>,
}

impl Read for TarReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 && !buf.is_empty() {
            // End of pipe: the writer is done. Only now do we know whether
            // the stream is complete.
            if let Some(handle) = self.writer.take() {
                match handle.join() {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(io::Error::other(err)),
                    Err(_) => return Err(io::Error::other("the snapshot tar writer panicked")),
                }
            }
        }
        Ok(n)
    }
}

// Uploaders move the reader into a blocking task.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<TarReader>();
};
