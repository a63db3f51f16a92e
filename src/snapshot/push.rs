//! Git facts for the `:quire/push` table (DESIGN.md §2): which commit and ref
//! a run is for, what it is compared against, and who pushes.
//!
//! Plain data only; turning it into a Lua table is the runtime's job.

use std::path::Path;

use gix::bstr::ByteSlice;
use gix::ObjectId;

use super::{discover, tree, Snapshot, SnapshotError};

/// The `:quire/push` source table, minus the locals-only `:dirty`/`:tree`
/// (those come from the [`Snapshot`]). Serialises with the server's keys.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PushFacts {
    /// The commit pushed (HEAD for local runs); `None` before the first commit.
    pub sha: Option<String>,
    /// `refs/heads/<branch>`, `refs/tags/<tag>`, or `HEAD` when detached.
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    /// What the ref pointed to before: the upstream tracking branch for local
    /// runs, the remote's old sha for pushes; `None` for a new ref.
    pub previous_sha: Option<String>,
    /// Paths that differ from the comparison base, sorted.
    pub files_changed: Vec<String>,
    /// `user.name`.
    pub pusher: Option<String>,
    pub commit_message: Option<String>,
    /// When the push happened, RFC 3339 UTC with milliseconds (the server's
    /// `pushed-at`): when these facts were read for `run`/`watch`, when git
    /// ran the hook for a push (one instant for every ref of it).
    pub pushed_at: String,
}

impl PushFacts {
    /// The same facts as if pushed to `git_ref` (`--ref refs/tags/v1.2.0`
    /// rehearses a tag push): `ref`, `branch` and `tag` follow the new ref;
    /// everything else is kept.
    pub fn with_ref(mut self, git_ref: &str) -> PushFacts {
        self.branch = short_name(git_ref, "refs/heads/");
        self.tag = short_name(git_ref, "refs/tags/");
        self.git_ref = git_ref.to_owned();
        self
    }
}

/// Facts for `quire-ci run`/`watch` on the working tree `snapshot` was taken
/// of. `files-changed` compares the snapshot (so uncommitted and untracked
/// files count) with the upstream tracking branch; without an upstream, with
/// HEAD's tree; without commits, every file is changed.
pub fn push_facts_for_worktree(snapshot: &Snapshot) -> Result<PushFacts, SnapshotError> {
    let repo = snapshot.repo.to_thread_local();
    let mut head = repo.head().map_err(SnapshotError::git(&repo, "reading HEAD"))?;
    let head_commit = if head.is_unborn() {
        None
    } else {
        Some(head.peel_to_commit().map_err(SnapshotError::git(&repo, "peeling HEAD to a commit"))?.id)
    };
    let head_name = repo.head_name().map_err(SnapshotError::git(&repo, "reading HEAD's name"))?;
    let git_ref = head_name.as_ref().map_or_else(|| "HEAD".to_owned(), |n| n.as_bstr().to_str_lossy().into_owned());

    let upstream = match &head_name {
        None => None,
        Some(name) => match repo.branch_remote_tracking_ref_name(name.as_ref(), gix::remote::Direction::Fetch) {
            None => None,
            Some(tracking) => {
                let tracking =
                    tracking.map_err(SnapshotError::git(&repo, format!("finding the upstream of {git_ref}")))?;
                match repo
                    .try_find_reference(tracking.as_ref())
                    .map_err(SnapshotError::git(&repo, format!("reading {}", tracking.as_bstr())))?
                {
                    // Configured but never fetched: no previous sha.
                    None => None,
                    Some(mut r) => Some(
                        r.peel_to_id()
                            .map_err(SnapshotError::git(&repo, format!("peeling {}", tracking.as_bstr())))?
                            .detach(),
                    ),
                }
            }
        },
    };
    let base = upstream.or(head_commit).map(|id| id.to_string());
    let files_changed = snapshot.changed_since(base.as_deref())?;
    Ok(PushFacts {
        sha: head_commit.map(|id| id.to_string()),
        branch: short_name(&git_ref, "refs/heads/"),
        tag: short_name(&git_ref, "refs/tags/"),
        git_ref,
        previous_sha: upstream.map(|id| id.to_string()),
        files_changed,
        pusher: pusher(&repo),
        commit_message: head_commit.map(|id| commit_message(&repo, id)).transpose()?,
        pushed_at: crate::record::now_ts(),
    })
}

/// Facts for one line of a pre-push hook: `local_sha` is pushed to
/// `remote_ref`, which was at `remote_sha` (`None`, or all zeros, for a new
/// ref). For a new ref, `files-changed` is taken against the merge base with
/// the remote default branch (`default_branch_remote_sha`), or lists every
/// file when there is none.
pub fn push_facts_for_push(
    repo_dir: &Path,
    local_sha: &str,
    remote_ref: &str,
    remote_sha: Option<&str>,
    default_branch_remote_sha: Option<&str>,
) -> Result<PushFacts, SnapshotError> {
    push_facts_for_push_in(&discover(repo_dir)?, local_sha, remote_ref, remote_sha, default_branch_remote_sha)
}

/// [`push_facts_for_push`] in a repository already open (the pre-push hook
/// opens it once for everything it reads).
pub fn push_facts_for_push_in(
    repo: &gix::Repository,
    local_sha: &str,
    remote_ref: &str,
    remote_sha: Option<&str>,
    default_branch_remote_sha: Option<&str>,
) -> Result<PushFacts, SnapshotError> {
    let local = resolve_commit(repo, local_sha)?;
    let remote_sha = remote_sha.filter(|s| !is_null_sha(s));
    // The remote's old commit may be unknown locally (someone else pushed);
    // then fall back to the merge base, as for a new branch.
    let old = remote_sha.and_then(|s| resolve_commit(repo, s).ok());
    let base = match old {
        Some(id) => Some(id),
        None => match default_branch_remote_sha.and_then(|s| resolve_commit(repo, s).ok()) {
            None => None,
            Some(default) => repo
                .merge_base(local, default)
                .map_err(SnapshotError::git(repo, format!("finding the merge base of {local} and {default}")))?
                .map(|id| id.detach()),
        },
    };
    let base_tree = base.map(|id| tree_of(repo, id)).transpose()?;
    let files_changed = diff_trees(repo, base_tree, tree_of(repo, local)?)?;
    Ok(PushFacts {
        sha: Some(local.to_string()),
        git_ref: remote_ref.to_owned(),
        branch: short_name(remote_ref, "refs/heads/"),
        tag: short_name(remote_ref, "refs/tags/"),
        previous_sha: remote_sha.map(str::to_owned),
        files_changed,
        pusher: pusher(repo),
        commit_message: Some(commit_message(repo, local)?),
        pushed_at: crate::record::now_ts(),
    })
}

/// Paths that differ between two trees (hex tree or commit ids, or any
/// revision); `tree_a = None` means the empty tree.
pub fn tree_diff_paths(repo_dir: &Path, tree_a: Option<&str>, tree_b: &str) -> Result<Vec<String>, SnapshotError> {
    let repo = discover(repo_dir)?;
    let a = tree_a.map(|rev| resolve_tree(&repo, rev)).transpose()?;
    let b = resolve_tree(&repo, tree_b)?;
    diff_trees(&repo, a, b)
}

fn diff_trees(repo: &gix::Repository, a: Option<ObjectId>, b: ObjectId) -> Result<Vec<String>, SnapshotError> {
    let a = match a {
        Some(a) => tree::flatten(repo, a)?,
        None => Default::default(),
    };
    Ok(tree::diff_paths(&a, &tree::flatten(repo, b)?))
}

/// The tree a revision (commit, tag or tree id) names.
pub(super) fn resolve_tree(repo: &gix::Repository, rev: &str) -> Result<ObjectId, SnapshotError> {
    resolve(repo, rev, |o| Ok(o.peel_to_tree()?.id))
}

fn resolve_commit(repo: &gix::Repository, rev: &str) -> Result<ObjectId, SnapshotError> {
    resolve(repo, rev, |o| Ok(o.peel_to_commit()?.id))
}

/// Parses `rev` and peels what it names with `peel`; every failure names
/// the revision and the repository.
fn resolve(
    repo: &gix::Repository,
    rev: &str,
    peel: impl FnOnce(gix::Object<'_>) -> Result<ObjectId, gix::Error>,
) -> Result<ObjectId, SnapshotError> {
    let bad_rev =
        |source| SnapshotError::BadRevision { rev: rev.to_owned(), repo: super::repo_display_path(repo), source };
    let object = repo.rev_parse_single(rev).map_err(bad_rev)?.object().map_err(bad_rev)?;
    peel(object).map_err(bad_rev)
}

fn tree_of(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId, SnapshotError> {
    let commit = repo.find_commit(commit).map_err(SnapshotError::git(repo, format!("reading commit {commit}")))?;
    Ok(commit.tree_id().map_err(SnapshotError::git(repo, format!("reading the tree of {}", commit.id)))?.detach())
}

fn commit_message(repo: &gix::Repository, commit: ObjectId) -> Result<String, SnapshotError> {
    let commit = repo.find_commit(commit).map_err(SnapshotError::git(repo, format!("reading commit {commit}")))?;
    let message =
        commit.message_raw().map_err(SnapshotError::git(repo, format!("reading the message of {}", commit.id)))?;
    Ok(message.to_str_lossy().trim_end().to_owned())
}

fn pusher(repo: &gix::Repository) -> Option<String> {
    repo.config_snapshot().string("user.name").map(|name| name.to_str_lossy().into_owned())
}

fn short_name(full: &str, prefix: &str) -> Option<String> {
    full.strip_prefix(prefix).map(str::to_owned)
}

fn is_null_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_ref_moves_branch_and_tag_together() {
        let facts = PushFacts {
            sha: Some("abc".into()),
            git_ref: "refs/heads/main".into(),
            branch: Some("main".into()),
            tag: None,
            previous_sha: None,
            files_changed: vec!["a".into()],
            pusher: None,
            commit_message: None,
            pushed_at: "2026-12-01T11:00:00.000Z".into(),
        };
        let tag = facts.clone().with_ref("refs/tags/v1.2.0");
        assert_eq!((tag.branch.as_deref(), tag.tag.as_deref()), (None, Some("v1.2.0")));
        assert_eq!(tag.git_ref, "refs/tags/v1.2.0");
        assert_eq!(tag.files_changed, facts.files_changed);
        let other = facts.with_ref("refs/heads/release/2");
        assert_eq!((other.branch.as_deref(), other.tag), (Some("release/2"), None));
    }

    #[test]
    fn only_all_zero_shas_are_null() {
        assert!(is_null_sha(&"0".repeat(40)));
        assert!(!is_null_sha(""));
        assert!(!is_null_sha("0000001"));
    }
}
