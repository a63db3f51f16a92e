//! The run's input tree: which files make up a run, the tar stream that carries
//! them into the container, the content id (a git tree id) that names them, and
//! the git facts for the `:quire/push` table.
//!
//! Owns everything that reads the user's repository through gix. It never
//! writes to the repository (no objects, no index refresh) and must not know
//! about Lua, Docker or the terminal: callers get bytes, ids and plain facts.
//!
//! Layout: `worktree` decides which files a working-tree snapshot holds,
//! `tree` computes the tree id in memory, `archive` streams the tar, `push`
//! gathers the push facts. See docs/snapshot.md for the rules.

mod archive;
mod dotgit;
mod push;
mod times;
mod tree;
mod worktree;

use std::path::{Path, PathBuf};

use gix::bstr::{BString, ByteSlice};
use gix::ObjectId;

pub use archive::TarReader;
pub use push::{push_facts_for_push, push_facts_for_push_in, push_facts_for_worktree, tree_diff_paths, PushFacts};
pub use times::{mtime_ledger_path, StampReport};

/// What a snapshot entry is, in the terms a tar and a git tree share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file, mode 0644.
    File,
    /// A regular file with the executable bit, mode 0755.
    Executable,
    /// A symbolic link; its blob is the link target.
    Symlink,
    /// A submodule (gitlink). Part of the tree id, but its files are not in the
    /// tar: only an empty directory marks where it sits.
    Submodule,
}

impl FileKind {
    /// The git tree-entry mode, e.g. `0o100644`.
    pub fn git_mode(self) -> u32 {
        match self {
            FileKind::File => 0o100644,
            FileKind::Executable => 0o100755,
            FileKind::Symlink => 0o120000,
            FileKind::Submodule => 0o160000,
        }
    }
}

/// One entry of a snapshot, as shown to callers (tests, docs, the compiler
/// looking for `.quire/*.fnl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Repository-relative, `/`-separated; lossily UTF-8 for display.
    pub path: String,
    pub kind: FileKind,
    /// The git blob id (commit id for a submodule), hex.
    pub id: String,
}

/// Where the bytes of an entry come from when the tar is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Read the file (or link) from the working tree at tar time.
    Worktree,
    /// Read the blob from the object database (commit snapshots, and
    /// skip-worktree entries of a sparse checkout, which have no file on disk).
    Object,
}

#[derive(Clone, Debug)]
struct Entry {
    path: BString,
    kind: FileKind,
    id: ObjectId,
    source: Source,
}

/// What the snapshot was taken of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The working tree as `git add -A` would stage it.
    Worktree,
    /// A commit's tree (pre-push runs); the commit id in hex.
    Commit(String),
}

/// The input tree of one run. Cheap to clone relative to taking it (the
/// entry list is copied, no file is read).
#[derive(Clone)]
pub struct Snapshot {
    repo: gix::ThreadSafeRepository,
    workdir: Option<PathBuf>,
    origin: Origin,
    /// Sorted by path bytes, unique paths.
    entries: Vec<Entry>,
    tree: ObjectId,
    head_tree: Option<ObjectId>,
    /// The committer time (Unix seconds) of the commit a commit snapshot was
    /// taken of, or of HEAD for a working-tree snapshot; `None` before the
    /// first commit.
    commit_time: Option<i64>,
    /// The mtimes the tar gives its entries, once [`Snapshot::stamp_times`]
    /// decided them; without it every entry has mtime 0.
    stamps: Option<std::sync::Arc<times::Stamps>>,
}

/// Everything that can go wrong while taking, reading or streaming a snapshot.
/// Each variant names the repository, revision or file involved.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SnapshotError {
    #[error("{path} is not inside a git repository")]
    #[diagnostic(
        code(quire_ci::snapshot::not_a_repository),
        help("run quire-ci inside a git work tree, or point at one with -C DIR")
    )]
    NotARepository {
        path: PathBuf,
        #[source]
        source: gix::Error,
    },
    #[error("the repository at {path} has no working tree (bare repository)")]
    #[diagnostic(
        code(quire_ci::snapshot::no_worktree),
        help("run quire-ci in a clone with a working tree (`git clone` without --bare)")
    )]
    NoWorktree { path: PathBuf },
    #[error("could not resolve revision {rev:?} in {repo} to a commit")]
    #[diagnostic(code(quire_ci::snapshot::bad_revision), help("check the commit exists here (`git rev-parse REV`)"))]
    BadRevision {
        rev: String,
        repo: PathBuf,
        #[source]
        source: gix::Error,
    },
    #[error("git operation failed in {repo}: {what}")]
    #[diagnostic(code(quire_ci::snapshot::git), help("check the repository with `git status` and `git fsck`"))]
    Git {
        repo: PathBuf,
        what: String,
        #[source]
        source: gix::Error,
    },
    #[error("could not read {path}")]
    #[diagnostic(code(quire_ci::snapshot::read), help("check the file exists and is readable by you"))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while it was being archived (expected {expected} bytes)")]
    #[diagnostic(
        code(quire_ci::snapshot::changed),
        help("a file changed while quire-ci read it; run again once writes have settled")
    )]
    ChangedWhileArchiving { path: PathBuf, expected: u64 },
    #[error("the index of {repo} is a sparse index, which snapshots do not support yet; run `git sparse-checkout disable` or set index.sparse=false")]
    #[diagnostic(
        code(quire_ci::snapshot::sparse_index),
        help("`git sparse-checkout disable`, or `git config index.sparse false`")
    )]
    SparseIndex { repo: PathBuf },
    #[error("a thread hashing untracked files panicked")]
    #[diagnostic(
        code(quire_ci::snapshot::hasher),
        help("this is a bug in quire-ci; please report it with the repository layout")
    )]
    HasherPanicked,
    #[error("cannot keep the file-time ledger {path}")]
    #[diagnostic(
        code(quire_ci::snapshot::ledger),
        help("check the git directory is writable (quire-ci keeps file times in it)")
    )]
    Ledger {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the snapshot tar failed")]
    #[diagnostic(code(quire_ci::snapshot::tar), help("check the disk is not full and the files are readable"))]
    Tar {
        #[source]
        source: std::io::Error,
    },
}

impl SnapshotError {
    fn git(repo: &gix::Repository, what: impl Into<String>) -> impl FnOnce(gix::Error) -> SnapshotError {
        let repo = repo_display_path(repo);
        let what = what.into();
        move |source| SnapshotError::Git { repo, what, source }
    }
}

/// True when the relative link `target` at `path` leaves the directory tree
/// it is in: more `..` than the directories above it (absolute targets stay
/// inside, the engine takes them relative to the container's root).
fn climbs_out(path: &[u8], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return false;
    }
    let mut depth = path.iter().filter(|&&b| b == b'/').count() as i64;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// `dir` relative to `workdir` when it lies strictly inside it, comparing
/// canonical paths (of `dir`'s nearest existing ancestor, when it does not
/// exist yet).
fn relative_inside(workdir: &Path, dir: &Path) -> Option<PathBuf> {
    let root = workdir.canonicalize().ok()?;
    let full = canonical_even_if_missing(dir)?;
    let rel = full.strip_prefix(&root).ok()?;
    (!rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

/// `path` made canonical through its nearest existing ancestor (the rest
/// appended as given), so a directory not made yet compares like one made.
pub fn canonical_even_if_missing(path: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return Some(rest.iter().rev().fold(c, |p: PathBuf, part| p.join(part)));
        }
        rest.push(cur.file_name()?.to_owned());
        cur = cur.parent()?.to_path_buf();
    }
}

fn repo_display_path(repo: &gix::Repository) -> PathBuf {
    repo.workdir().unwrap_or_else(|| repo.git_dir()).to_owned()
}

fn discover(repo_dir: &Path) -> Result<gix::Repository, SnapshotError> {
    gix::discover(repo_dir).map_err(|source| SnapshotError::NotARepository { path: repo_dir.to_owned(), source })
}

/// HEAD's tree, or `None` when HEAD is unborn (no commits yet).
fn head_tree(repo: &gix::Repository) -> Result<Option<ObjectId>, SnapshotError> {
    let mut head = repo.head().map_err(SnapshotError::git(repo, "reading HEAD"))?;
    if head.is_unborn() {
        return Ok(None);
    }
    let commit = head.peel_to_commit().map_err(SnapshotError::git(repo, "peeling HEAD to a commit"))?;
    let tree = commit.tree_id().map_err(SnapshotError::git(repo, "reading HEAD's tree"))?;
    Ok(Some(tree.detach()))
}

/// HEAD's committer time, when HEAD is a readable commit.
fn head_commit_time(repo: &gix::Repository) -> Option<i64> {
    let mut head = repo.head().ok()?;
    if head.is_unborn() {
        return None;
    }
    head.peel_to_commit().ok()?.time().ok().map(|t| t.seconds)
}

impl Snapshot {
    /// The working tree of the repository containing `repo_dir`, as `git add -A`
    /// would stage it: tracked files with their edits (deleted ones absent),
    /// untracked files that are not ignored, never ignored files or `.git`.
    pub fn of_worktree(repo_dir: &Path) -> Result<Snapshot, SnapshotError> {
        let repo = discover(repo_dir)?;
        let workdir = repo.workdir().ok_or_else(|| SnapshotError::NoWorktree { path: repo_dir.to_owned() })?.to_owned();
        let entries = worktree::collect(&repo, &workdir)?;
        let tree = tree::tree_id(&repo, &entries)?;
        let head_tree = head_tree(&repo)?;
        let commit_time = head_commit_time(&repo);
        Ok(Snapshot {
            repo: repo.into_sync(),
            workdir: Some(workdir),
            origin: Origin::Worktree,
            entries,
            tree,
            head_tree,
            commit_time,
            stamps: None,
        })
    }

    /// This snapshot without whatever lies under `dir` (a run directory
    /// given with `--out` inside the working tree: a run's own record is
    /// never part of what it, or the next run, sees). `dir` need not exist;
    /// outside the working tree it changes nothing.
    pub fn excluding(mut self, dir: &Path) -> Result<Snapshot, SnapshotError> {
        let Some(workdir) = &self.workdir else { return Ok(self) };
        let Some(rel) = relative_inside(workdir, dir) else { return Ok(self) };
        let Ok(rel) = gix::path::into_bstr(rel).map(|r| r.into_owned()) else { return Ok(self) };
        let before = self.entries.len();
        self.entries.retain(|e| {
            !(e.path.starts_with(rel.as_slice()) && (e.path.len() == rel.len() || e.path[rel.len()] == b'/'))
        });
        if self.entries.len() != before {
            let repo = self.repo.to_thread_local();
            self.tree = tree::tree_id(&repo, &self.entries)?;
        }
        Ok(self)
    }

    /// The tree of the commit `rev` resolves to (pre-push runs). Every byte of
    /// the tar comes from the object database.
    pub fn of_commit(repo_dir: &Path, rev: &str) -> Result<Snapshot, SnapshotError> {
        Snapshot::of_commit_in(discover(repo_dir)?, rev)
    }

    /// [`Snapshot::of_commit`] in a repository already open (the pre-push
    /// hook opens it once for everything it reads).
    pub fn of_commit_in(repo: gix::Repository, rev: &str) -> Result<Snapshot, SnapshotError> {
        let bad_rev =
            |source| SnapshotError::BadRevision { rev: rev.to_owned(), repo: repo_display_path(&repo), source };
        let (commit_id, tree, commit_time) = {
            let commit = repo
                .rev_parse_single(rev)
                .map_err(bad_rev)?
                .object()
                .map_err(bad_rev)?
                .peel_to_commit()
                .map_err(bad_rev)?;
            let time = commit.time().ok().map(|t| t.seconds);
            (commit.id, commit.tree_id().map_err(bad_rev)?.detach(), time)
        };
        let entries = tree::flatten(&repo, tree)?
            .into_iter()
            .map(|(path, (kind, id))| Entry { path, kind, id, source: Source::Object })
            .collect();
        let head_tree = head_tree(&repo)?;
        let workdir = repo.workdir().map(Path::to_owned);
        Ok(Snapshot {
            repo: repo.into_sync(),
            workdir,
            origin: Origin::Commit(commit_id.to_string()),
            entries,
            tree,
            head_tree,
            commit_time,
            stamps: None,
        })
    }

    /// The content id: the git tree id `git add -A && git write-tree` would
    /// print for this snapshot (hex).
    pub fn tree_id(&self) -> String {
        self.tree.to_string()
    }

    /// What this snapshot was taken of.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The repository's working tree root, if it has one.
    pub fn workdir(&self) -> Option<&Path> {
        self.workdir.as_deref()
    }

    /// The repository's git dir (where run records live).
    pub fn git_dir(&self) -> &Path {
        self.repo.git_dir()
    }

    /// True when the snapshot differs from HEAD's tree, or there is no HEAD.
    pub fn dirty(&self) -> bool {
        self.head_tree != Some(self.tree)
    }

    /// Every entry, sorted by path.
    pub fn files(&self) -> Vec<SnapshotFile> {
        self.entries
            .iter()
            .map(|e| SnapshotFile { path: e.path.to_str_lossy().into_owned(), kind: e.kind, id: e.id.to_string() })
            .collect()
    }

    /// The bytes of the regular file at `path` (repo-relative, `/`-separated)
    /// as the snapshot holds it: from the working tree for worktree snapshots,
    /// from the object database for commit snapshots. `None` when the snapshot
    /// has no regular file there (absent, ignored, a symlink or a submodule).
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SnapshotError> {
        let Some(entry) = self.entry(path.as_bytes()) else {
            return Ok(None);
        };
        if !matches!(entry.kind, FileKind::File | FileKind::Executable) {
            return Ok(None);
        }
        match entry.source {
            Source::Worktree => {
                let full = self.worktree_path(&entry.path)?;
                std::fs::read(&full).map(Some).map_err(|source| SnapshotError::Read { path: full, source })
            }
            Source::Object => {
                let repo = self.repo.to_thread_local();
                let blob = repo
                    .find_object(entry.id)
                    .map_err(SnapshotError::git(&repo, format!("reading blob for {path}")))?;
                Ok(Some(blob.detach().data))
            }
        }
    }

    /// Symbolic links whose relative target climbs above the repository root
    /// from the link's directory (`docs/x -> ../../shared/x`), as (path,
    /// target). git stores them as any link; the engine's archive upload
    /// refuses them, so the run makes them in the container itself.
    pub fn links_out_of_tree(&self) -> Result<Vec<(String, Vec<u8>)>, SnapshotError> {
        let mut out = Vec::new();
        for entry in self.entries.iter().filter(|e| e.kind == FileKind::Symlink) {
            let target = match entry.source {
                Source::Worktree => {
                    let full = self.worktree_path(&entry.path)?;
                    let t = std::fs::read_link(&full).map_err(|source| SnapshotError::Read { path: full, source })?;
                    gix::path::into_bstr(t).map(|b| b.to_vec()).unwrap_or_default()
                }
                Source::Object => {
                    let repo = self.repo.to_thread_local();
                    let blob = repo
                        .find_object(entry.id)
                        .map_err(SnapshotError::git(&repo, format!("reading the link {}", entry.path)))?;
                    blob.detach().data
                }
            };
            if climbs_out(&entry.path, &target) {
                out.push((entry.path.to_str_lossy().into_owned(), target));
            }
        }
        Ok(out)
    }

    /// A copy without the entries at `paths`, for an upload that leaves them
    /// to another step. The tree id stays: it names the run's input.
    pub fn without_paths(&self, paths: &[String]) -> Snapshot {
        self.subset(|_, e| !paths.iter().any(|p| e.path == p.as_bytes()))
    }

    /// How many entries (files, links, submodule dirs) it holds.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// The snapshot cut into parts of consecutive paths, for unpackers that
    /// work side by side: at most `most` parts, each of at least `least`
    /// entries; `None` when that leaves one part, the whole. Each part's
    /// tar makes the directories its own entries need; the files keep the
    /// times they have in the whole.
    pub fn parts(&self, most: usize, least: usize) -> Option<Vec<Snapshot>> {
        let (len, n) = (self.entries.len(), (self.entries.len() / least.max(1)).min(most));
        (n > 1).then(|| (0..n).map(|k| self.subset(|i, _| (k * len / n..(k + 1) * len / n).contains(&i))).collect())
    }

    /// A copy holding the entries `keep` takes (by index and entry), with
    /// their stamped times. The tree id stays: it names the run's input.
    fn subset(&self, keep: impl Fn(usize, &Entry) -> bool) -> Snapshot {
        let kept: Vec<usize> = (0..self.entries.len()).filter(|&i| keep(i, &self.entries[i])).collect();
        Snapshot {
            repo: self.repo.clone(),
            workdir: self.workdir.clone(),
            origin: self.origin.clone(),
            entries: kept.iter().map(|&i| self.entries[i].clone()).collect(),
            tree: self.tree,
            head_tree: self.head_tree,
            commit_time: self.commit_time,
            stamps: self.stamps.as_ref().map(|st| {
                std::sync::Arc::new(times::Stamps {
                    files: kept.iter().filter_map(|&i| st.files.get(i).copied()).collect(),
                    dirs: st.dirs,
                })
            }),
        }
    }

    /// Paths that differ between the tree `base` (hex tree or commit id; `None`
    /// means the empty tree) and this snapshot.
    pub fn changed_since(&self, base: Option<&str>) -> Result<Vec<String>, SnapshotError> {
        let repo = self.repo.to_thread_local();
        let base = match base {
            None => Default::default(),
            Some(rev) => tree::flatten(&repo, push::resolve_tree(&repo, rev)?)?,
        };
        let ours = self.entries.iter().map(|e| (e.path.clone(), (e.kind, e.id))).collect();
        Ok(tree::diff_paths(&base, &ours))
    }

    fn entry(&self, path: &[u8]) -> Option<&Entry> {
        self.entries.binary_search_by(|e| e.path.as_slice().cmp(path)).ok().map(|i| &self.entries[i])
    }

    fn worktree_path(&self, rela: &[u8]) -> Result<PathBuf, SnapshotError> {
        let root = self
            .workdir
            .as_deref()
            .ok_or_else(|| SnapshotError::NoWorktree { path: self.repo.git_dir().to_owned() })?;
        Ok(root.join(rela_path(rela)))
    }
}

/// A repo-relative git path as a filesystem path (git paths are bytes; on
/// Unix, so are file names).
fn rela_path(rela: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(rela))
}

#[cfg(test)]
mod link_tests {
    use super::climbs_out;

    #[test]
    fn only_relative_links_above_the_root_climb_out() {
        assert!(climbs_out(b"docs/CONTRIBUTING.md", b"../../shared/CONTRIBUTING.md"));
        assert!(climbs_out(b"top", b".."));
        assert!(climbs_out(b"a/b", b"c/../../../x"));
        assert!(!climbs_out(b"docs/x", b"../README.md"));
        assert!(!climbs_out(b"docs/x", b"./y/../z"));
        assert!(!climbs_out(b"docs/x", b"/etc/hostname"));
    }
}
