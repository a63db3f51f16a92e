//! The opt-in minimal `.git` for `/work` (`--with-git`): git-aware tools
//! (setuptools-scm, hatch-vcs, `git describe`, `npm pack` with
//! `npmignore --auto`) find a repository holding the snapshot's commit.
//!
//! What it holds, and no more: the commit (a pushed commit, or HEAD for a
//! working-tree run) as a shallow root, every tree below it, the tags that
//! point at it (annotated tag objects included), a branch ref when the run
//! is for a branch, and an index of the commit's tree, so `git status` shows
//! the working-tree run's uncommitted edits as changes. No blobs (a
//! snapshot's files are in `/work` already; `git show HEAD:file` and
//! `git archive` fail) and no history (`git describe` finds only tags on the
//! commit itself). See docs/snapshot.md.

use std::path::Path;

use gix::bstr::ByteSlice;
use gix::objs::Write as _;
use gix::ObjectId;

use super::{Origin, Snapshot, SnapshotError};

impl Snapshot {
    /// The commit a `.git` for this snapshot holds: the pushed commit, or
    /// HEAD for a working-tree snapshot (`None` before the first commit).
    pub fn dotgit_commit(&self) -> Option<String> {
        match &self.origin {
            Origin::Commit(sha) => Some(sha.clone()),
            Origin::Worktree => {
                let repo = self.repo.to_thread_local();
                repo.head_id().ok().map(|id| id.detach().to_string())
            }
        }
    }

    /// A tar of the minimal `.git/` directory, built in `scratch` (created,
    /// then removed). `branch`: the branch the run is for, if any.
    pub fn dotgit_tar(&self, scratch: &Path, branch: Option<&str>) -> Result<Vec<u8>, SnapshotError> {
        let result = self.build_dotgit(scratch, branch);
        let _ = std::fs::remove_dir_all(scratch);
        result
    }

    fn build_dotgit(&self, scratch: &Path, branch: Option<&str>) -> Result<Vec<u8>, SnapshotError> {
        let repo = self.repo.to_thread_local();
        let io = |source| SnapshotError::Read { path: scratch.to_owned(), source };
        let git = scratch.join(".git");
        let _ = std::fs::remove_dir_all(scratch);
        for dir in ["objects", "refs/heads", "refs/tags", "info"] {
            std::fs::create_dir_all(git.join(dir)).map_err(io)?;
        }
        std::fs::write(
            git.join("config"),
            "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = false\n",
        )
        .map_err(io)?;
        let branch = branch.filter(|b| gix::validate::reference::name_partial(b.as_bytes().as_bstr()).is_ok());
        let head = match branch {
            Some(b) => format!("ref: refs/heads/{b}\n"),
            None => match self.dotgit_commit() {
                Some(sha) => format!("{sha}\n"),
                None => "ref: refs/heads/main\n".to_string(),
            },
        };
        std::fs::write(git.join("HEAD"), head).map_err(io)?;

        if let Some(sha) = self.dotgit_commit() {
            let commit_id = ObjectId::from_hex(sha.as_bytes())
                .map_err(|e| SnapshotError::git(&repo, "parsing the commit id")(gix::Error::from_error(e)))?;
            let store = gix::odb::loose::Store::at(git.join("objects"), repo.object_hash());
            let copy = |id: ObjectId| -> Result<(), SnapshotError> {
                let object = repo.find_object(id).map_err(SnapshotError::git(&repo, format!("reading {id}")))?;
                store.write_buf(object.kind, &object.data).map_err(|e| {
                    SnapshotError::git(&repo, format!("writing {id} for .git"))(gix::Error::from_error(e))
                })?;
                Ok(())
            };
            copy(commit_id)?;
            let commit = repo.find_commit(commit_id).map_err(SnapshotError::git(&repo, "reading the commit"))?;
            let tree = commit.tree_id().map_err(SnapshotError::git(&repo, "reading the commit's tree"))?.detach();
            copy(tree)?;
            let mut recorder = gix::traverse::tree::Recorder::default();
            repo.find_tree(tree)
                .map_err(SnapshotError::git(&repo, "reading the tree"))?
                .traverse()
                .breadthfirst(&mut recorder)
                .map_err(SnapshotError::git(&repo, "walking the tree"))?;
            for e in recorder.records.iter().filter(|e| e.mode.is_tree()) {
                copy(e.oid)?;
            }
            // The parents are not there: a shallow repository says so.
            std::fs::write(git.join("shallow"), format!("{sha}\n")).map_err(io)?;
            if let Some(b) = branch {
                let path = git.join("refs/heads").join(b);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(path, format!("{sha}\n")).map_err(io)?;
            }
            if let Ok(refs) = repo.references() {
                if let Ok(tags) = refs.tags() {
                    for mut tag in tags.flatten() {
                        let target = tag.id().detach();
                        let Ok(peeled) = tag.peel_to_id() else { continue };
                        if peeled.detach() != commit_id {
                            continue;
                        }
                        if target != commit_id {
                            copy(target)?;
                        }
                        let name = tag.name().as_bstr().to_str_lossy().into_owned();
                        let path = git.join(&name);
                        if let Some(parent) = path.parent() {
                            std::fs::create_dir_all(parent).map_err(io)?;
                        }
                        std::fs::write(path, format!("{target}\n")).map_err(io)?;
                    }
                }
            }
            let index =
                repo.index_from_tree(&tree).map_err(SnapshotError::git(&repo, "building an index of the commit"))?;
            let mut bytes = Vec::new();
            index
                .write_to(&mut bytes, gix::index::write::Options::default())
                .map_err(SnapshotError::git(&repo, "encoding the index"))?;
            std::fs::write(git.join("index"), bytes).map_err(io)?;
        }

        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        builder.append_dir_all(".git", &git).map_err(|source| SnapshotError::Tar { source })?;
        builder.into_inner().map_err(|source| SnapshotError::Tar { source })
    }
}
