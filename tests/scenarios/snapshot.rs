//! Snapshots of real temp git repositories, checked against the git CLI: the
//! tree id must equal what `git add -A && git write-tree` gives on a scratch
//! index, and the tar must hold exactly the snapshot's files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::harness;

use quire_ci::snapshot::{
    push_facts_for_push, push_facts_for_worktree, tree_diff_paths, FileKind, Origin, Snapshot, SnapshotError,
};

/// The harness's repository, with what snapshot tests need on top: fixed
/// commit dates (so ids are stable), modes, symlinks, git's own tree id.
struct Repo(harness::Repo);

impl Repo {
    fn new() -> Repo {
        let repo = Repo(harness::Repo::new());
        repo.git(&["config", "user.name", "Ada Pusher"]);
        repo.git(&["config", "user.email", "ada@example.com"]);
        repo
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn git_in(dir: &Path, args: &[&str], envs: &[(&str, &Path)]) -> String {
        let mut cmd = Command::new("git");
        harness::scrub(&mut cmd);
        // The repo's own identity, not the harness's default.
        for k in ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"] {
            cmd.env_remove(k);
        }
        cmd.current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run git");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn git(&self, args: &[&str]) -> String {
        Self::git_in(self.path(), args, &[])
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parents");
        }
        std::fs::write(p, content).expect("write file");
    }

    fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path().join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn symlink(&self, target: &str, rel: &str) {
        std::os::unix::fs::symlink(target, self.path().join(rel)).expect("symlink");
    }

    fn commit_all(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// The tree id git gives the working tree, computed on a scratch copy of
    /// the index with new objects going to a scratch object dir, so neither the
    /// repo's index nor its object database changes.
    fn git_worktree_tree_id(&self) -> String {
        let scratch = tempfile::tempdir().expect("scratch dir");
        let index = scratch.path().join("index");
        let real_index = self.path().join(".git/index");
        if real_index.exists() {
            std::fs::copy(&real_index, &index).expect("copy index");
            // Keep the index's own mtime: git judges racily-clean entries by
            // it, and a copy made now would make git trust the stat of a file
            // edited in the same second as the real index was written (the
            // reference, not the snapshot, would then be wrong).
            let mtime = std::fs::metadata(&real_index).and_then(|m| m.modified()).expect("index mtime");
            std::fs::File::options().write(true).open(&index).and_then(|f| f.set_modified(mtime)).expect("set mtime");
        }
        let objects = scratch.path().join("objects");
        std::fs::create_dir(&objects).expect("mkdir objects");
        let alternates = self.path().join(".git/objects");
        let envs: [(&str, &Path); 3] = [
            ("GIT_INDEX_FILE", &index),
            ("GIT_OBJECT_DIRECTORY", &objects),
            ("GIT_ALTERNATE_OBJECT_DIRECTORIES", &alternates),
        ];
        Self::git_in(self.path(), &["add", "-A"], &envs);
        Self::git_in(self.path(), &["write-tree"], &envs)
    }

    fn loose_objects(&self) -> usize {
        let mut n = 0;
        for dir in std::fs::read_dir(self.path().join(".git/objects")).expect("objects dir") {
            let dir = dir.expect("dir entry");
            let name = dir.file_name();
            if name.len() == 2 {
                n += std::fs::read_dir(dir.path()).expect("fanout dir").count();
            }
        }
        n
    }

    fn index_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.path().join(".git/index")).ok()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum TarItem {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Link { target: String },
}

fn read_tar(bytes: &[u8]) -> BTreeMap<String, TarItem> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("tar path").to_string_lossy().into_owned();
        assert!(!path.starts_with('/'), "absolute path in tar: {path}");
        let header = entry.header();
        assert_eq!(header.mtime().expect("mtime"), 0, "mtime of {path}");
        assert_eq!(header.uid().expect("uid"), 0, "uid of {path}");
        let mode = header.mode().expect("mode");
        let item = match header.entry_type() {
            tar::EntryType::Directory => TarItem::Dir { mode },
            tar::EntryType::Symlink => TarItem::Link {
                target: entry
                    .link_name()
                    .expect("link name")
                    .expect("symlink has a target")
                    .to_string_lossy()
                    .into_owned(),
            },
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("tar data");
                TarItem::File { mode, data }
            }
            other => panic!("unexpected tar entry type {other:?} for {path}"),
        };
        let path = path.trim_end_matches('/').to_owned();
        assert!(out.insert(path.clone(), item).is_none(), "duplicate tar entry {path}");
    }
    out
}

fn tar_of(snapshot: &Snapshot) -> BTreeMap<String, TarItem> {
    let mut bytes = Vec::new();
    let written = snapshot.write_tar(&mut bytes).expect("write tar");
    assert_eq!(written, bytes.len() as u64, "write_tar's byte count");
    read_tar(&bytes)
}

/// The snapshot's id equals git's, the tar holds exactly the snapshot's
/// non-directory entries with the worktree's bytes and modes, and taking it
/// wrote nothing into the repository.
fn check_against_git(repo: &Repo) -> Snapshot {
    let objects_before = repo.loose_objects();
    let index_before = repo.index_bytes();
    let snapshot = Snapshot::of_worktree(repo.path()).expect("snapshot");
    let tar = tar_of(&snapshot);
    assert_eq!(repo.loose_objects(), objects_before, "snapshot wrote objects into the repo");
    assert_eq!(repo.index_bytes(), index_before, "snapshot touched the index");

    assert_eq!(snapshot.tree_id(), repo.git_worktree_tree_id(), "tree id vs git");

    let files = snapshot.files();
    let tar_leaves: Vec<&String> =
        tar.iter().filter(|(_, item)| !matches!(item, TarItem::Dir { .. })).map(|(p, _)| p).collect();
    let file_paths: Vec<&String> = files.iter().filter(|f| f.kind != FileKind::Submodule).map(|f| &f.path).collect();
    assert_eq!(tar_leaves, file_paths, "tar entries vs snapshot files");
    for f in &files {
        let on_disk = repo.path().join(&f.path);
        match (&f.kind, &tar[&f.path]) {
            (FileKind::File, TarItem::File { mode, data }) => {
                assert_eq!(*mode, 0o644, "{}", f.path);
                assert_eq!(data, &std::fs::read(&on_disk).expect("read"), "{}", f.path);
            }
            (FileKind::Executable, TarItem::File { mode, data }) => {
                assert_eq!(*mode, 0o755, "{}", f.path);
                assert_eq!(data, &std::fs::read(&on_disk).expect("read"), "{}", f.path);
            }
            (FileKind::Symlink, TarItem::Link { target }) => {
                let want = std::fs::read_link(&on_disk).expect("readlink");
                assert_eq!(Path::new(target), want, "{}", f.path);
            }
            (FileKind::Submodule, TarItem::Dir { .. }) => {}
            (kind, item) => panic!("{}: snapshot says {kind:?}, tar has {item:?}", f.path),
        }
    }
    for (path, item) in &tar {
        if let TarItem::Dir { mode } = item {
            assert_eq!(*mode, 0o755, "dir {path}");
        }
    }
    snapshot
}

fn paths(snapshot: &Snapshot) -> Vec<String> {
    snapshot.files().into_iter().map(|f| f.path).collect()
}

fn base_repo() -> Repo {
    let repo = Repo::new();
    repo.write("README.md", "hello\n");
    repo.write("src/main.rs", "fn main() {}\n");
    repo.write(".quire/ci.fnl", "(local ci (require :quire.ci))\n");
    repo.write(".gitignore", "*.log\ntarget/\n");
    repo.commit_all("initial commit\n\nwith a body");
    repo
}

#[test]
fn clean_repo_matches_head_tree() {
    let repo = base_repo();
    let snapshot = check_against_git(&repo);
    assert_eq!(snapshot.tree_id(), repo.git(&["rev-parse", "HEAD^{tree}"]));
    assert!(!snapshot.dirty(), "a clean worktree is not dirty");
    assert_eq!(snapshot.origin(), &Origin::Worktree);
    assert_eq!(paths(&snapshot), [".gitignore", ".quire/ci.fnl", "README.md", "src/main.rs"]);
    let tar = tar_of(&snapshot);
    assert_eq!(tar.get("src"), Some(&TarItem::Dir { mode: 0o755 }), "explicit dir entries");
    assert!(!tar.keys().any(|p| p.starts_with(".git/") || p == ".git"), "no .git in tar");
}

#[test]
fn modified_tracked_file_is_snapshotted_as_edited() {
    let repo = base_repo();
    repo.write("src/main.rs", "fn main() { println!(\"edited\"); }\n");
    // Same size as the committed content: only the content check can see it.
    repo.write("README.md", "HELLO\n");
    let snapshot = check_against_git(&repo);
    assert!(snapshot.dirty());
    assert_ne!(snapshot.tree_id(), repo.git(&["rev-parse", "HEAD^{tree}"]));
    assert_eq!(snapshot.read_file("README.md").expect("read"), Some(b"HELLO\n".to_vec()));
}

#[test]
fn deleted_tracked_file_is_absent() {
    let repo = base_repo();
    std::fs::remove_file(repo.path().join("src/main.rs")).expect("rm");
    let snapshot = check_against_git(&repo);
    assert_eq!(paths(&snapshot), [".gitignore", ".quire/ci.fnl", "README.md"]);
    assert!(!tar_of(&snapshot).contains_key("src"), "no directory left for a deleted file");
    assert_eq!(snapshot.read_file("src/main.rs").expect("read"), None);
}

#[test]
fn untracked_file_is_included_and_ignored_files_are_not() {
    let repo = base_repo();
    repo.write("notes/todo.txt", "untracked\n");
    repo.write("build.log", "ignored\n");
    repo.write("target/debug/app", "ignored dir\n");
    // Larger than what the tar reader holds in memory: streamed instead.
    repo.write("assets/big.txt", &"0123456789abcdef\n".repeat(20_000));
    let snapshot = check_against_git(&repo);
    let p = paths(&snapshot);
    assert!(p.contains(&"notes/todo.txt".to_owned()), "{p:?}");
    assert!(!p.iter().any(|p| p.ends_with(".log") || p.starts_with("target")), "{p:?}");
    assert!(snapshot.dirty(), "an untracked file makes the snapshot differ from HEAD");
}

#[test]
fn nested_gitignore_applies_to_its_directory_only() {
    let repo = base_repo();
    repo.write("sub/.gitignore", "secret.txt\n");
    repo.write("sub/secret.txt", "hidden\n");
    repo.write("sub/deeper/secret.txt", "hidden too\n");
    repo.write("secret.txt", "visible at the root\n");
    let snapshot = check_against_git(&repo);
    let p = paths(&snapshot);
    assert!(p.contains(&"secret.txt".to_owned()), "{p:?}");
    assert!(p.contains(&"sub/.gitignore".to_owned()), "{p:?}");
    assert!(!p.iter().any(|p| p.starts_with("sub/") && p.ends_with("secret.txt")), "{p:?}");
}

#[test]
fn exec_bits_are_kept() {
    let repo = base_repo();
    repo.write("run.sh", "#!/bin/sh\necho hi\n");
    repo.chmod("run.sh", 0o755);
    repo.commit_all("script");
    // A mode-only change of a tracked file, and a new executable.
    repo.chmod("README.md", 0o755);
    repo.chmod("run.sh", 0o644);
    repo.write("tools/new.sh", "#!/bin/sh\n");
    repo.chmod("tools/new.sh", 0o755);
    let snapshot = check_against_git(&repo);
    let kinds: BTreeMap<String, FileKind> = snapshot.files().into_iter().map(|f| (f.path, f.kind)).collect();
    assert_eq!(kinds["README.md"], FileKind::Executable);
    assert_eq!(kinds["run.sh"], FileKind::File);
    assert_eq!(kinds["tools/new.sh"], FileKind::Executable);
}

#[test]
fn symlinks_are_stored_as_symlinks() {
    let repo = base_repo();
    repo.symlink("README.md", "tracked-link");
    repo.symlink("src", "dir-link");
    repo.commit_all("links");
    repo.symlink("../README.md", "src/untracked-link");
    repo.symlink("does/not/exist", "dangling");
    // A tracked file turned into a symlink (type change).
    std::fs::remove_file(repo.path().join("src/main.rs")).expect("rm");
    repo.symlink("../README.md", "src/main.rs");
    let snapshot = check_against_git(&repo);
    let tar = tar_of(&snapshot);
    assert_eq!(tar["dir-link"], TarItem::Link { target: "src".into() });
    assert_eq!(tar["src/main.rs"], TarItem::Link { target: "../README.md".into() });
    assert_eq!(tar["dangling"], TarItem::Link { target: "does/not/exist".into() });
    assert!(!tar.contains_key("dir-link/main.rs"), "a symlinked dir is not descended into");
    assert_eq!(snapshot.read_file("tracked-link").expect("read"), None, "read_file is for regular files");
}

#[test]
fn names_with_spaces_and_non_ascii_work() {
    let repo = base_repo();
    repo.write("dir with space/ünï.txt", "ü\n");
    repo.commit_all("unicode");
    repo.write("dir with space/ünï.txt", "changed ü\n");
    repo.write("dir with space/新しい file.txt", "new\n");
    let long = format!("{}/{}.txt", "d".repeat(80), "long-name-".repeat(12));
    repo.write(&long, "long path needs a GNU long-name record\n");
    let snapshot = check_against_git(&repo);
    let p = paths(&snapshot);
    assert!(p.contains(&"dir with space/ünï.txt".to_owned()), "{p:?}");
    assert!(p.contains(&"dir with space/新しい file.txt".to_owned()), "{p:?}");
    assert!(p.contains(&long), "{p:?}");
    assert_eq!(snapshot.read_file("dir with space/ünï.txt").expect("read"), Some("changed ü\n".as_bytes().to_vec()));
}

#[test]
fn repo_with_no_commits_snapshots_everything_untracked() {
    let repo = Repo::new();
    repo.write("a.txt", "a\n");
    repo.write("b/c.txt", "c\n");
    repo.write(".gitignore", "*.tmp\n");
    repo.write("x.tmp", "ignored\n");
    let snapshot = check_against_git(&repo);
    assert_eq!(paths(&snapshot), [".gitignore", "a.txt", "b/c.txt"]);
    assert!(snapshot.dirty(), "no HEAD means dirty");
    let facts = push_facts_for_worktree(&snapshot).expect("facts");
    assert_eq!(facts.sha, None);
    assert_eq!(facts.git_ref, "refs/heads/main");
    assert_eq!(facts.branch.as_deref(), Some("main"));
    assert_eq!(facts.previous_sha, None);
    assert_eq!(facts.commit_message, None);
    assert_eq!(facts.files_changed, [".gitignore", "a.txt", "b/c.txt"]);
}

#[test]
fn empty_repo_and_empty_dirs_give_the_empty_tree() {
    let repo = Repo::new();
    std::fs::create_dir_all(repo.path().join("empty/nested")).expect("mkdir");
    let snapshot = check_against_git(&repo);
    assert_eq!(snapshot.tree_id(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    assert!(tar_of(&snapshot).is_empty(), "empty dirs are not in the tar");
}

#[test]
fn staged_then_modified_takes_the_worktree_version() {
    let repo = base_repo();
    repo.write("README.md", "staged version\n");
    repo.git(&["add", "README.md"]);
    repo.write("README.md", "worktree version, longer\n");
    repo.write("new.txt", "staged new file\n");
    repo.git(&["add", "new.txt"]);
    std::fs::remove_file(repo.path().join("new.txt")).expect("rm");
    let snapshot = check_against_git(&repo);
    assert_eq!(snapshot.read_file("README.md").expect("read"), Some(b"worktree version, longer\n".to_vec()));
    assert!(!paths(&snapshot).contains(&"new.txt".to_owned()), "staged then deleted is absent");
}

#[test]
fn snapshot_from_a_subdirectory_covers_the_whole_worktree() {
    let repo = base_repo();
    let from_sub = Snapshot::of_worktree(&repo.path().join("src")).expect("snapshot");
    assert_eq!(from_sub.tree_id(), repo.git(&["rev-parse", "HEAD^{tree}"]));
    assert_eq!(
        from_sub.workdir().map(Path::to_owned),
        Some(std::fs::canonicalize(repo.path()).unwrap_or(repo.path().to_owned()))
    );
}

#[test]
fn tar_is_deterministic_and_the_reader_streams_the_same_bytes() {
    let repo = base_repo();
    repo.write("untracked.txt", "u\n");
    let snapshot = Snapshot::of_worktree(repo.path()).expect("snapshot");
    let mut first = Vec::new();
    snapshot.write_tar(&mut first).expect("tar");
    let again = Snapshot::of_worktree(repo.path()).expect("snapshot");
    let mut second = Vec::new();
    again.write_tar(&mut second).expect("tar");
    assert_eq!(first, second, "same snapshot, same tar bytes");
    let mut streamed = Vec::new();
    snapshot.tar_reader().expect("reader").read_to_end(&mut streamed).expect("read stream");
    assert_eq!(first, streamed);
}

#[test]
fn tar_reader_reports_a_file_deleted_after_the_snapshot() {
    let repo = base_repo();
    let snapshot = Snapshot::of_worktree(repo.path()).expect("snapshot");
    std::fs::remove_file(repo.path().join("src/main.rs")).expect("rm");
    let mut sink = Vec::new();
    let err = snapshot.write_tar(&mut sink).expect_err("a vanished file must fail the tar");
    assert!(matches!(&err, SnapshotError::Read { path, .. } if path.ends_with("src/main.rs")), "{err}");
    let err = snapshot
        .tar_reader()
        .expect("reader")
        .read_to_end(&mut Vec::new())
        .expect_err("the stream must not end cleanly");
    assert!(err.to_string().contains("src/main.rs"), "{err}");
}

#[test]
fn of_commit_uses_the_commit_tree_and_the_object_database() {
    let repo = base_repo();
    let first = repo.git(&["rev-parse", "HEAD"]);
    repo.write("README.md", "second\n");
    repo.write("bin/tool", "#!/bin/sh\n");
    repo.chmod("bin/tool", 0o755);
    repo.symlink("README.md", "link");
    let second = repo.commit_all("second");
    // Worktree edits after the commit must not leak into a commit snapshot.
    repo.write("README.md", "uncommitted\n");
    std::fs::remove_file(repo.path().join("bin/tool")).expect("rm");

    let objects_before = repo.loose_objects();
    let snapshot = Snapshot::of_commit(repo.path(), "HEAD").expect("of_commit");
    assert_eq!(snapshot.tree_id(), repo.git(&["rev-parse", "HEAD^{tree}"]));
    assert_eq!(snapshot.origin(), &Origin::Commit(second.clone()));
    let tar = tar_of(&snapshot);
    assert_eq!(repo.loose_objects(), objects_before);
    assert_eq!(tar["README.md"], TarItem::File { mode: 0o644, data: b"second\n".to_vec() });
    assert_eq!(tar["bin/tool"], TarItem::File { mode: 0o755, data: b"#!/bin/sh\n".to_vec() });
    assert_eq!(tar["link"], TarItem::Link { target: "README.md".into() });
    assert_eq!(snapshot.read_file("README.md").expect("read"), Some(b"second\n".to_vec()));

    let old = Snapshot::of_commit(repo.path(), &first).expect("of_commit first");
    assert_eq!(old.tree_id(), repo.git(&["rev-parse", &format!("{first}^{{tree}}")]));
    assert!(old.dirty(), "an older commit differs from HEAD");

    let err = Snapshot::of_commit(repo.path(), "no-such-branch").err().expect("bad rev fails");
    assert!(err.to_string().contains("no-such-branch"), "{err}");
}

#[test]
fn push_facts_with_an_upstream() {
    let repo = base_repo();
    let remote = repo.0.scratch().join("remote.git");
    Repo::git_in(repo.0.scratch(), &["init", "-q", "--bare", "remote.git"], &[]);
    repo.git(&["remote", "add", "origin", remote.to_str().expect("utf-8 temp path")]);
    repo.git(&["push", "-q", "-u", "origin", "main"]);
    let pushed = repo.git(&["rev-parse", "HEAD"]);
    repo.write("src/lib.rs", "pub fn f() {}\n");
    let head = repo.commit_all("add lib\n\nbody line");
    repo.write("README.md", "edited in the worktree\n");
    repo.write("scratch.txt", "untracked\n");

    let snapshot = Snapshot::of_worktree(repo.path()).expect("snapshot");
    let facts = push_facts_for_worktree(&snapshot).expect("facts");
    assert_eq!(facts.sha.as_deref(), Some(head.as_str()));
    assert_eq!(facts.git_ref, "refs/heads/main");
    assert_eq!(facts.branch.as_deref(), Some("main"));
    assert_eq!(facts.tag, None);
    assert_eq!(facts.previous_sha.as_deref(), Some(pushed.as_str()));
    assert_eq!(facts.files_changed, ["README.md", "scratch.txt", "src/lib.rs"]);
    assert_eq!(facts.pusher.as_deref(), Some("Ada Pusher"));
    assert_eq!(facts.commit_message.as_deref(), Some("add lib\n\nbody line"));

    let json = serde_json::to_value(&facts).expect("json");
    assert_eq!(json["ref"], "refs/heads/main");
    assert_eq!(json["previous-sha"], pushed.as_str());
    assert!(json.get("files-changed").is_some(), "{json}");
}

#[test]
fn push_facts_without_an_upstream_compare_with_head() {
    let repo = base_repo();
    repo.write("README.md", "edited\n");
    repo.write("new.txt", "untracked\n");
    let snapshot = Snapshot::of_worktree(repo.path()).expect("snapshot");
    let facts = push_facts_for_worktree(&snapshot).expect("facts");
    assert_eq!(facts.previous_sha, None);
    assert_eq!(facts.files_changed, ["README.md", "new.txt"]);
    assert_eq!(facts.commit_message.as_deref(), Some("initial commit\n\nwith a body"));

    repo.git(&["checkout", "-q", "--detach"]);
    let facts = push_facts_for_worktree(&Snapshot::of_worktree(repo.path()).expect("snapshot")).expect("facts");
    assert_eq!(facts.git_ref, "HEAD");
    assert_eq!(facts.branch, None);
}

#[test]
fn push_facts_for_a_pre_push_line() {
    let repo = base_repo();
    let main = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("feature.txt", "f\n");
    let f1 = repo.commit_all("feature one");
    repo.write("src/main.rs", "fn main() { /* two */ }\n");
    let f2 = repo.commit_all("feature two");

    // Existing remote ref at f1: compare with it.
    let facts = push_facts_for_push(repo.path(), &f2, "refs/heads/feature", Some(&f1), Some(&main)).expect("facts");
    assert_eq!(facts.sha.as_deref(), Some(f2.as_str()));
    assert_eq!(facts.git_ref, "refs/heads/feature");
    assert_eq!(facts.branch.as_deref(), Some("feature"));
    assert_eq!(facts.previous_sha.as_deref(), Some(f1.as_str()));
    assert_eq!(facts.files_changed, ["src/main.rs"]);
    assert_eq!(facts.commit_message.as_deref(), Some("feature two"));

    // New ref (all-zero remote sha): previous-sha nil, compare with the merge base.
    let zeros = "0".repeat(40);
    let facts = push_facts_for_push(repo.path(), &f2, "refs/heads/feature", Some(&zeros), Some(&main)).expect("facts");
    assert_eq!(facts.previous_sha, None);
    assert_eq!(facts.files_changed, ["feature.txt", "src/main.rs"]);

    // A new tag with no default branch known: every file is changed.
    let facts = push_facts_for_push(repo.path(), &f2, "refs/tags/v1.0.0", None, None).expect("facts");
    assert_eq!(facts.tag.as_deref(), Some("v1.0.0"));
    assert_eq!(facts.branch, None);
    assert_eq!(facts.files_changed.len(), 5, "{:?}", facts.files_changed);

    assert_eq!(tree_diff_paths(repo.path(), Some(&main), &f2).expect("diff"), ["feature.txt", "src/main.rs"]);
}

#[test]
fn submodule_gitlink_counts_for_the_id_but_its_files_are_not_archived() {
    let sub = Repo::new();
    sub.write("inside.txt", "submodule content\n");
    sub.commit_all("sub");
    let repo = base_repo();
    repo.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        sub.path().to_str().expect("utf-8 temp path"),
        "vendor/sub",
    ]);
    repo.commit_all("add submodule");
    let snapshot = check_against_git(&repo);
    let kinds: BTreeMap<String, FileKind> = snapshot.files().into_iter().map(|f| (f.path, f.kind)).collect();
    assert_eq!(kinds.get("vendor/sub"), Some(&FileKind::Submodule));
    let tar = tar_of(&snapshot);
    assert_eq!(tar.get("vendor/sub"), Some(&TarItem::Dir { mode: 0o755 }));
    assert!(!tar.contains_key("vendor/sub/inside.txt"), "submodule files are not archived");
    assert!(tar.contains_key(".gitmodules"));
}

#[test]
fn not_a_repository_is_a_named_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = Snapshot::of_worktree(dir.path()).err().expect("must fail outside a repo");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn info_exclude_is_honoured() {
    let repo = base_repo();
    std::fs::write(repo.path().join(".git/info/exclude"), "local-only/\n").expect("write exclude");
    repo.write("local-only/notes.txt", "mine\n");
    repo.write("shared.txt", "theirs\n");
    let snapshot = check_against_git(&repo);
    let p = paths(&snapshot);
    assert!(p.contains(&"shared.txt".to_owned()), "{p:?}");
    assert!(!p.iter().any(|p| p.starts_with("local-only")), "{p:?}");
}

#[test]
fn eol_normalisation_is_applied_to_the_id_but_not_the_tar() {
    let repo = base_repo();
    repo.write(".gitattributes", "*.txt text eol=lf\n");
    repo.write("tracked.txt", "one\ntwo\n");
    repo.commit_all("attributes");
    // git add would store these with LF; the id must say so too.
    repo.write("tracked.txt", "one\r\ntwo\r\nthree\r\n");
    repo.write("untracked.txt", "a\r\nb\r\n");
    let snapshot = check_against_git(&repo);
    let tar = tar_of(&snapshot);
    assert_eq!(
        tar["untracked.txt"],
        TarItem::File { mode: 0o644, data: b"a\r\nb\r\n".to_vec() },
        "the tar carries the bytes on disk"
    );
}

#[test]
fn conflicted_paths_are_taken_from_disk() {
    let repo = base_repo();
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.write("README.md", "other side\n");
    repo.commit_all("other");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("README.md", "main side\n");
    repo.commit_all("main");
    let merge = Command::new("git")
        .current_dir(repo.path())
        .args(["merge", "-q", "other"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git merge");
    assert!(!merge.status.success(), "the merge must conflict for this test");
    let snapshot = check_against_git(&repo);
    let readme = snapshot.read_file("README.md").expect("read").expect("present");
    assert!(String::from_utf8_lossy(&readme).contains("<<<<<<<"), "conflict markers from disk");
    assert_eq!(paths(&snapshot).iter().filter(|p| *p == "README.md").count(), 1);
}

#[test]
fn gnu_tar_extracts_the_stream_faithfully() {
    let repo = base_repo();
    let long = format!("{}/{}.txt", "deep".repeat(20), "x".repeat(110));
    repo.write(&long, "long\n");
    repo.write("dir with space/ünï.txt", "ü\n");
    repo.write("bin/run", "#!/bin/sh\n");
    repo.chmod("bin/run", 0o755);
    repo.symlink("../README.md", "bin/readme-link");
    let snapshot = Snapshot::of_worktree(repo.path()).expect("snapshot");
    let out = tempfile::tempdir().expect("tmp");
    let mut tar = Command::new("tar")
        .args(["-x", "-f", "-", "-C"])
        .arg(out.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tar");
    let mut stdin = tar.stdin.take().expect("tar stdin");
    std::io::copy(&mut snapshot.tar_reader().expect("reader"), &mut stdin).expect("stream into tar");
    drop(stdin);
    assert!(tar.wait().expect("wait tar").success(), "tar -x failed");

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::read_to_string(out.path().join(&long)).expect("long"), "long\n");
    assert_eq!(std::fs::read_to_string(out.path().join("dir with space/ünï.txt")).expect("unicode"), "ü\n");
    let mode = std::fs::metadata(out.path().join("bin/run")).expect("run").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(std::fs::read_link(out.path().join("bin/readme-link")).expect("link"), Path::new("../README.md"));
    assert!(!out.path().join(".git").exists());
}

#[test]
fn many_untracked_files_match_git() {
    // Enough untracked files for the hashing to be split over threads.
    let repo = Repo::new();
    for i in 0..300 {
        repo.write(&format!("d{}/f{i}.txt", i % 7), &format!("file {i}\n"));
    }
    repo.write("d1/tool.sh", "#!/bin/sh\n");
    repo.chmod("d1/tool.sh", 0o755);
    let snapshot = check_against_git(&repo);
    assert_eq!(snapshot.files().len(), 301);
}

#[test]
fn tree_entry_order_matches_git_for_tricky_names() {
    // Git sorts a directory `a` as if it were `a/`: after `a.txt` and `a-b`,
    // before `a0`.
    let repo = Repo::new();
    for name in ["a.txt", "a-b", "a/b", "a0", "a/c/d", "A", "b", "a b"] {
        repo.write(name, name);
    }
    repo.commit_all("order");
    let snapshot = check_against_git(&repo);
    assert_eq!(snapshot.tree_id(), repo.git(&["rev-parse", "HEAD^{tree}"]));
    repo.write("a/c/e", "new");
    check_against_git(&repo);
}

#[test]
fn clean_worktree_and_head_commit_give_the_same_id_and_tar() {
    // The pre-push result cache relies on this: `run` on a clean tree and a
    // push of that commit are the same input.
    let repo = base_repo();
    repo.write("bin/x", "#!/bin/sh\n");
    repo.chmod("bin/x", 0o755);
    repo.symlink("README.md", "link");
    repo.commit_all("more");
    let worktree = Snapshot::of_worktree(repo.path()).expect("worktree");
    let commit = Snapshot::of_commit(repo.path(), "HEAD").expect("commit");
    assert_eq!(worktree.tree_id(), commit.tree_id());
    assert_eq!(worktree.files(), commit.files());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    worktree.write_tar(&mut a).expect("tar");
    commit.write_tar(&mut b).expect("tar");
    assert!(a == b, "worktree and commit tars differ");
}

#[test]
fn bare_repository_has_no_worktree_to_snapshot() {
    let repo = base_repo();
    let bare = repo.0.scratch().join("bare.git");
    Repo::git_in(repo.0.scratch(), &["clone", "-q", "--bare", repo.path().to_str().expect("utf-8"), "bare.git"], &[]);
    let err = Snapshot::of_worktree(&bare).err().expect("bare repos have no worktree");
    assert!(matches!(err, SnapshotError::NoWorktree { .. }), "{err}");
    let from_bare = Snapshot::of_commit(&bare, "main").expect("of_commit works in a bare repo");
    assert_eq!(from_bare.tree_id(), repo.git(&["rev-parse", "HEAD^{tree}"]));
    assert_eq!(from_bare.read_file("README.md").expect("read"), Some(b"hello\n".to_vec()));
}

/// (path, mtime) of every file and link of a tar.
fn file_times(snapshot: &Snapshot) -> BTreeMap<String, u64> {
    let mut bytes = Vec::new();
    snapshot.write_tar(&mut bytes).expect("write tar");
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("tar entries") {
        let entry = entry.expect("tar entry");
        if entry.header().entry_type() != tar::EntryType::Directory {
            let path = entry.path().expect("tar path").to_string_lossy().into_owned();
            out.insert(path, entry.header().mtime().expect("mtime"));
        }
    }
    out
}

#[test]
fn a_part_or_a_trimmed_copy_keeps_each_files_own_stamped_time() {
    // Stamped times are kept beside the entries by index: a copy with fewer
    // entries (the links left to `ln -s`, the parts for unpackers side by
    // side) must carry each file's own time, not its neighbour's.
    let repo = Repo::new();
    for (i, name) in ["a", "b/x", "b/y", "c", "d/z", "e"].iter().enumerate() {
        repo.write(name, &format!("{name}\n"));
        let stamp = format!("@{}", 1_700_000_000 + i * 1000);
        harness::sh_ok(Command::new("touch").args(["-d", &stamp]).arg(repo.path().join(name)));
    }
    let mut snapshot = Snapshot::of_worktree(repo.path()).expect("snapshot");
    snapshot.stamp_times(None, std::time::SystemTime::now()).expect("stamp");
    let whole = file_times(&snapshot);
    assert_eq!(whole["b/y"], 1_700_002_000, "{whole:?}");
    let trimmed = file_times(&snapshot.without_paths(&["b/x".to_string()]));
    assert_eq!(trimmed.len(), whole.len() - 1);
    let parts = snapshot.parts(3, 2).expect("three parts of two");
    assert_eq!(parts.len(), 3);
    let mut joined = BTreeMap::new();
    for part in &parts {
        let times = file_times(part);
        assert_eq!(times.len(), 2, "{times:?}");
        joined.extend(times);
    }
    for (path, time) in trimmed.iter().chain(&joined) {
        assert_eq!(whole.get(path), Some(time), "{path}");
    }
    assert_eq!(joined, whole);
    assert!(snapshot.parts(3, 4).is_none(), "six entries make one part of at least four");
}
