//! Tree ids computed in memory, and flat views of trees for diffs.
//!
//! The snapshot's id is the id git would give the tree, so it is built with
//! git's own encoding (`gix::objs`) and hashed, never written: the user's
//! object database stays untouched.

use std::collections::BTreeMap;

use gix::bstr::{BStr, BString, ByteSlice};
use gix::objs::tree::EntryKind;
use gix::objs::WriteTo;
use gix::ObjectId;

use super::{Entry, FileKind, SnapshotError};

/// path → (kind, id): a tree flattened to its leaves.
pub(super) type FlatTree = BTreeMap<BString, (FileKind, ObjectId)>;

#[derive(Default)]
struct Dir<'a> {
    leaves: BTreeMap<&'a BStr, (FileKind, ObjectId)>,
    dirs: BTreeMap<&'a BStr, Dir<'a>>,
}

/// The id of the tree that holds `entries`, as `git write-tree` would compute it.
pub(super) fn tree_id(repo: &gix::Repository, entries: &[Entry]) -> Result<ObjectId, SnapshotError> {
    let mut root = Dir::default();
    for entry in entries {
        let (parent, name) = match entry.path.rfind_byte(b'/') {
            Some(slash) => (Some(entry.path[..slash].as_bstr()), entry.path[slash + 1..].as_bstr()),
            None => (None, entry.path.as_bstr()),
        };
        let mut dir = &mut root;
        for component in parent.into_iter().flat_map(|p| p.split_str("/")) {
            dir = dir.dirs.entry(component.as_bstr()).or_default();
        }
        dir.leaves.insert(name, (entry.kind, entry.id));
    }
    let mut buf = Vec::new();
    encode_dir(repo, &root, &mut buf)
}

fn encode_dir(repo: &gix::Repository, dir: &Dir<'_>, buf: &mut Vec<u8>) -> Result<ObjectId, SnapshotError> {
    let mut tree = gix::objs::Tree::empty();
    for (name, sub) in &dir.dirs {
        tree.entries.push(gix::objs::tree::Entry {
            mode: EntryKind::Tree.into(),
            filename: (*name).to_owned(),
            oid: encode_dir(repo, sub, buf)?,
        });
    }
    for (name, (kind, id)) in &dir.leaves {
        // A name can't be both a file and a directory on disk; should the
        // inputs ever say so, the directory (the deeper paths) wins.
        if dir.dirs.contains_key(name) {
            continue;
        }
        tree.entries.push(gix::objs::tree::Entry {
            mode: entry_kind(*kind).into(),
            filename: (*name).to_owned(),
            oid: *id,
        });
    }
    // Git orders tree entries as if directory names ended in '/'.
    tree.entries.sort();
    buf.clear();
    tree.write_to(&mut *buf).map_err(|err| SnapshotError::Git {
        repo: super::repo_display_path(repo),
        what: "encoding a tree".into(),
        source: gix::Error::from_error(err),
    })?;
    gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Tree, buf).map_err(|err| SnapshotError::Git {
        repo: super::repo_display_path(repo),
        what: "hashing a tree".into(),
        source: gix::Error::from_error(err),
    })
}

fn entry_kind(kind: FileKind) -> EntryKind {
    match kind {
        FileKind::File => EntryKind::Blob,
        FileKind::Executable => EntryKind::BlobExecutable,
        FileKind::Symlink => EntryKind::Link,
        FileKind::Submodule => EntryKind::Commit,
    }
}

/// All leaves of the tree `tree` in the object database.
pub(super) fn flatten(repo: &gix::Repository, tree: ObjectId) -> Result<FlatTree, SnapshotError> {
    let tree_obj = repo.find_tree(tree).map_err(SnapshotError::git(repo, format!("reading tree {tree}")))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree_obj
        .traverse()
        .breadthfirst(&mut recorder)
        .map_err(SnapshotError::git(repo, format!("walking tree {tree}")))?;
    let mut flat = FlatTree::new();
    for e in recorder.records {
        let kind = match e.mode.kind() {
            EntryKind::Tree => continue,
            EntryKind::Blob => FileKind::File,
            EntryKind::BlobExecutable => FileKind::Executable,
            EntryKind::Link => FileKind::Symlink,
            EntryKind::Commit => FileKind::Submodule,
        };
        flat.insert(e.filepath, (kind, e.oid));
    }
    Ok(flat)
}

/// Paths present in only one of `a` and `b`, or present in both with another
/// kind or content; sorted.
pub(super) fn diff_paths(a: &FlatTree, b: &FlatTree) -> Vec<String> {
    let mut out: Vec<String> = a
        .iter()
        .filter(|(path, leaf)| b.get(*path) != Some(leaf))
        .chain(b.iter().filter(|(path, _)| !a.contains_key(*path)))
        .map(|(path, _)| path.to_str_lossy().into_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(items: &[(&str, FileKind, u8)]) -> FlatTree {
        items
            .iter()
            .map(|(path, kind, id)| {
                let mut bytes = [0u8; 20];
                bytes[0] = *id;
                (BString::from(*path), (*kind, ObjectId::from_bytes_or_panic(&bytes)))
            })
            .collect()
    }

    #[test]
    fn diff_paths_reports_added_removed_changed_and_mode_changes() {
        let a = flat(&[
            ("same", FileKind::File, 1),
            ("edited", FileKind::File, 2),
            ("removed", FileKind::File, 3),
            ("chmod", FileKind::File, 4),
        ]);
        let b = flat(&[
            ("same", FileKind::File, 1),
            ("edited", FileKind::File, 9),
            ("added", FileKind::File, 5),
            ("chmod", FileKind::Executable, 4),
        ]);
        assert_eq!(diff_paths(&a, &b), ["added", "chmod", "edited", "removed"]);
        assert!(diff_paths(&a, &a).is_empty());
    }
}
