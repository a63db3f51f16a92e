//! Which files a working-tree snapshot holds, and their blob ids.
//!
//! One `index ↔ worktree` status pass (gix, the same machinery as `git
//! status`) tells us which tracked files changed: entries whose stat data
//! still matches keep the index's blob id without being read; changed ones
//! are hashed by the status pass itself (`HashEq`). The same pass walks the
//! directories for untracked, non-ignored files, which we hash here. Nothing
//! is written: the index is only read, so its stat cache is not refreshed.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::{BStr, BString, ByteSlice};
use gix::dir::entry::{Kind as DiskKind, Status as DirStatus};
use gix::index::entry::{Flags, Mode, Stage};
use gix::status::plumbing::index_as_worktree::traits::{HashEq, SubmoduleStatus};
use gix::status::plumbing::index_as_worktree::{Change, EntryStatus};
use gix::status::plumbing::index_as_worktree_with_renames::{Entry as StatusEntry, Recorder};
use gix::ObjectId;

use super::{rela_path, Entry, FileKind, SnapshotError, Source};

/// Submodules are never descended into: their gitlink is taken from the
/// index as recorded (see docs/snapshot.md), so their status is never asked.
#[derive(Clone)]
struct SkipSubmodules;

impl SubmoduleStatus for SkipSubmodules {
    type Output = ();
    fn status(&mut self, _entry: &gix::index::Entry, _rela_path: &BStr) -> gix::Result<Option<()>> {
        Ok(None)
    }
}

/// What the status pass said about one tracked path.
enum Verdict {
    /// Gone from the worktree: not in the snapshot.
    Removed,
    /// Content and/or exec bit changed; `id` is `None` when only the mode did.
    Modified { exec_flipped: bool, id: Option<ObjectId> },
    /// Type change, conflict or intent-to-add: look at the disk afresh.
    Rehash,
}

pub(super) fn collect(repo: &gix::Repository, workdir: &Path) -> Result<Vec<Entry>, SnapshotError> {
    let index = repo.index_or_empty().map_err(SnapshotError::git(repo, "reading the index"))?;
    let state: &gix::index::State = &index;
    if state.is_sparse() {
        return Err(SnapshotError::SparseIndex { repo: workdir.to_owned() });
    }
    let dirwalk = repo
        .dirwalk_options()
        .map_err(SnapshotError::git(repo, "reading directory-walk settings"))?
        .emit_untracked(gix::dir::walk::EmissionMode::Matching)
        .emit_ignored(None)
        .emit_tracked(false)
        .emit_pruned(false)
        .emit_empty_directories(false)
        .recurse_repositories(false);
    let mut recorder = Recorder::<ObjectId, ()> { records: Vec::new() };
    let interrupt = AtomicBool::new(false);
    repo.index_worktree_status(
        state,
        Vec::<BString>::new(),
        &mut recorder,
        HashEq,
        SkipSubmodules,
        &mut gix::progress::Discard,
        &interrupt,
        gix::status::index_worktree::Options {
            sorting: None,
            dirwalk_options: Some(dirwalk),
            rewrites: None,
            thread_limit: None,
        },
    )
    .map_err(SnapshotError::git(repo, "comparing the index with the working tree"))?;

    let mut verdicts: HashMap<BString, Verdict> = HashMap::new();
    let mut untracked: Vec<(BString, Option<DiskKind>)> = Vec::new();
    for record in recorder.records {
        match record {
            StatusEntry::Modification { rela_path, status, .. } => {
                let verdict = match status {
                    EntryStatus::Change(Change::Removed) => Verdict::Removed,
                    EntryStatus::Change(Change::Modification { executable_bit_changed, content_change, .. }) => {
                        Verdict::Modified { exec_flipped: executable_bit_changed, id: content_change }
                    }
                    EntryStatus::Change(Change::Type { .. })
                    | EntryStatus::Conflict { .. }
                    | EntryStatus::IntentToAdd => Verdict::Rehash,
                    EntryStatus::Change(Change::SubmoduleModification(())) | EntryStatus::NeedsUpdate(_) => continue,
                };
                verdicts.insert(rela_path.to_owned(), verdict);
            }
            StatusEntry::DirectoryContents { entry, .. } => {
                if entry.status == DirStatus::Untracked {
                    untracked.push((entry.rela_path, entry.disk_kind));
                }
            }
            // Rename tracking is off, so this never comes; should it, the
            // destination is an untracked file and the source is gone.
            StatusEntry::Rewrite { source, dirwalk_entry, .. } => {
                verdicts.insert(source.rela_path().to_owned(), Verdict::Removed);
                untracked.push((dirwalk_entry.rela_path, dirwalk_entry.disk_kind));
            }
        }
    }

    let trust_exec_bit =
        repo.filesystem_options().map_err(SnapshotError::git(repo, "reading core.fileMode"))?.executable_bit;
    let mut hasher = Hasher::new(repo, workdir, state, trust_exec_bit)?;

    let mut entries: Vec<Entry> = Vec::with_capacity(state.entries().len() + untracked.len());
    let mut seen_conflicts: HashSet<BString> = HashSet::new();
    for e in state.entries() {
        let path = e.path(state);
        let index_kind = match e.mode {
            Mode::FILE => FileKind::File,
            Mode::FILE_EXECUTABLE => FileKind::Executable,
            Mode::SYMLINK => FileKind::Symlink,
            Mode::COMMIT => FileKind::Submodule,
            _ => continue,
        };
        if e.stage() != Stage::Unconflicted {
            // All stages of a conflicted path collapse into what is on disk,
            // as `git add -A` would resolve it.
            if seen_conflicts.insert(path.to_owned()) {
                if let Some((kind, id)) = hasher.hash_path(path, Some(index_kind))? {
                    entries.push(worktree_entry(path, kind, id));
                }
            }
            continue;
        }
        match verdicts.get(path) {
            None => {
                let source = if e.flags.contains(Flags::SKIP_WORKTREE) { Source::Object } else { Source::Worktree };
                entries.push(Entry { path: path.to_owned(), kind: index_kind, id: e.id, source });
            }
            Some(Verdict::Removed) => {}
            Some(Verdict::Modified { exec_flipped, id }) => {
                let kind = match (index_kind, exec_flipped) {
                    (FileKind::File, true) => FileKind::Executable,
                    (FileKind::Executable, true) => FileKind::File,
                    (kind, _) => kind,
                };
                entries.push(worktree_entry(path, kind, id.unwrap_or(e.id)));
            }
            Some(Verdict::Rehash) => {
                if let Some((kind, id)) = hasher.hash_path(path, Some(index_kind))? {
                    entries.push(worktree_entry(path, kind, id));
                }
            }
        }
    }
    entries.extend(hash_untracked(repo, hasher, &untracked)?);
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|later, earlier| later.path == earlier.path);
    Ok(entries)
}

/// Below this many untracked files, threads cost more than they save.
const PARALLEL_HASH_MIN_FILES: usize = 64;

/// Untracked files have no index entry to reuse: every one is read and
/// hashed. A fresh repository (or a big untracked directory) can hold
/// thousands, so they are split over up to four threads, each with its own
/// repository handle and filter pipeline; contiguous chunks keep each
/// thread's attribute lookups within a few directories.
fn hash_untracked(
    repo: &gix::Repository,
    mut hasher: Hasher<'_, '_>,
    untracked: &[(BString, Option<DiskKind>)],
) -> Result<Vec<Entry>, SnapshotError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if threads < 2 || untracked.len() < PARALLEL_HASH_MIN_FILES {
        return hasher.hash_all(untracked);
    }
    let (workdir, state, trust_exec_bit) = (hasher.workdir, hasher.state, hasher.trust_exec_bit);
    drop(hasher);
    let shared = repo.clone().into_sync();
    let chunk = untracked.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = untracked
            .chunks(chunk)
            .map(|part| {
                let shared = &shared;
                scope.spawn(move || {
                    let repo = shared.to_thread_local();
                    Hasher::new(&repo, workdir, state, trust_exec_bit)?.hash_all(part)
                })
            })
            .collect();
        let mut out = Vec::with_capacity(untracked.len());
        for worker in workers {
            out.extend(worker.join().map_err(|_| SnapshotError::HasherPanicked)??);
        }
        Ok(out)
    })
}

fn worktree_entry(path: &BStr, kind: FileKind, id: ObjectId) -> Entry {
    Entry { path: path.to_owned(), kind, id, source: Source::Worktree }
}

/// Hashes files found on disk the way `git add` would: through the to-git
/// filter pipeline (eol conversion, clean filters), in memory only.
struct Hasher<'a, 'repo> {
    repo: &'repo gix::Repository,
    workdir: &'a Path,
    state: &'a gix::index::State,
    pipeline: gix::filter::Pipeline<'repo>,
    trust_exec_bit: bool,
    buf: Vec<u8>,
}

impl<'a, 'repo> Hasher<'a, 'repo> {
    fn new(
        repo: &'repo gix::Repository,
        workdir: &'a Path,
        state: &'a gix::index::State,
        trust_exec_bit: bool,
    ) -> Result<Self, SnapshotError> {
        let (pipeline, _) =
            repo.filter_pipeline(None).map_err(SnapshotError::git(repo, "setting up the to-git filters"))?;
        Ok(Hasher { repo, workdir, state, pipeline, trust_exec_bit, buf: Vec::new() })
    }

    fn hash_all(&mut self, untracked: &[(BString, Option<DiskKind>)]) -> Result<Vec<Entry>, SnapshotError> {
        let mut out = Vec::with_capacity(untracked.len());
        for (path, disk_kind) in untracked {
            let found = match disk_kind {
                Some(DiskKind::Repository) => self.nested_repository(path.as_bstr()),
                _ => self.hash_path(path.as_bstr(), None)?,
            };
            if let Some((kind, id)) = found {
                out.push(worktree_entry(path.as_bstr(), kind, id));
            }
        }
        Ok(out)
    }

    /// The kind and blob id of what sits at `rela` now; `None` when nothing a
    /// tree can hold is there (missing, a directory, a fifo...).
    fn hash_path(
        &mut self,
        rela: &BStr,
        index_kind: Option<FileKind>,
    ) -> Result<Option<(FileKind, ObjectId)>, SnapshotError> {
        let full = self.workdir.join(rela_path(rela));
        let read_err = |source| SnapshotError::Read { path: full.clone(), source };
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(read_err(err)),
        };
        let hash_kind = self.repo.object_hash();
        let git_err = |what: &str| SnapshotError::git(self.repo, format!("{what} {}", full.display()));
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full).map_err(read_err)?;
            let bytes = target.as_os_str().as_encoded_bytes();
            let id = gix::objs::compute_hash(hash_kind, gix::objs::Kind::Blob, bytes)
                .map_err(|e| git_err("hashing link")(gix::Error::from_error(e)))?;
            return Ok(Some((FileKind::Symlink, id)));
        }
        if !meta.is_file() {
            return Ok(None);
        }
        let kind = if self.trust_exec_bit {
            if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 != 0 {
                FileKind::Executable
            } else {
                FileKind::File
            }
        } else {
            // Like git with core.fileMode=false: keep what the index says,
            // new files are plain.
            match index_kind {
                Some(FileKind::Executable) => FileKind::Executable,
                _ => FileKind::File,
            }
        };
        let file = std::fs::File::open(&full).map_err(read_err)?;
        let outcome = self.pipeline.convert_to_git(file, rela_path(rela), self.state).map_err(git_err("filtering"))?;
        let id = match outcome {
            gix::filter::plumbing::pipeline::convert::ToGitOutcome::Unchanged(mut file) => {
                // No filter applies: stream it, so a huge file is never held in memory.
                gix::objs::compute_stream_hash(
                    hash_kind,
                    gix::objs::Kind::Blob,
                    &mut file,
                    meta.len(),
                    &mut gix::progress::Discard,
                    &AtomicBool::new(false),
                )
                .map_err(|e| git_err("hashing")(gix::Error::from_error(e)))?
            }
            other => {
                self.buf.clear();
                let mut other = other;
                std::io::Read::read_to_end(&mut other, &mut self.buf).map_err(read_err)?;
                gix::objs::compute_hash(hash_kind, gix::objs::Kind::Blob, &self.buf)
                    .map_err(|e| git_err("hashing")(gix::Error::from_error(e)))?
            }
        };
        Ok(Some((kind, id)))
    }

    /// An untracked directory holding its own repository: `git add -A` records
    /// it as a gitlink to its HEAD (and skips it when it has no commit).
    fn nested_repository(&self, rela: &BStr) -> Option<(FileKind, ObjectId)> {
        let nested = gix::open(self.workdir.join(rela_path(rela))).ok()?;
        let head = nested.head_id().ok()?;
        Some((FileKind::Submodule, head.detach()))
    }
}
