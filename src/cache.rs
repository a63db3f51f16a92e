//! The result cache (DESIGN.md §7): a run whose inputs match a run that
//! already succeeded is not repeated.
//!
//! Owns: what the cache key is made of, and the entries under
//! `<git-dir>/quire-ci/cache/` (one small file per key, named by the key's
//! sha256, holding the run id of the green run). Must not know about: how a
//! run is executed, the engine, Lua, or the terminal — the executor computes
//! the key's parts and decides when to look up and when to store.
//!
//! The key covers everything that can change a run's outcome and that the
//! local machine can know cheaply:
//! * the snapshot's tree id (the exact content the jobs see),
//! * the ci.fnl hash (`Pipeline::source_hash`, which covers the repo-local
//!   `.quire/*.fnl` modules it loaded),
//! * the resolved image id (`sha256:...`, so a moved tag is a miss),
//! * the selected jobs (after adding their ancestors),
//! * the ref the run is for (`:quire/push` `ref`, hence `branch`/`tag`;
//!   pipelines commonly branch on it),
//! * the `--event` overrides, and the *names* of the secrets provided
//!   (never their values: the key is on disk),
//! * the quire-ci version,
//! * every run setting that can change a result (`settings`): the
//!   container's `--memory`, `--cache-volume`, and the Lua limits
//!   (`--lua-memory`, `--eval-timeout`, `--job-lua-timeout`) — a green run
//!   under 1 GiB says nothing about a run under 8 MiB.
//!
//! Deliberately not in the key: `previous-sha`, `files-changed`, `pusher`,
//! `commit-message`, `pushed-at` and `sha` — the same tree pushed from another commit or
//! against another base is the same code; counting them would make
//! `quire-ci run` followed by `git push` always miss (the pre-push run has a
//! different `previous-sha` than the local one). Secret *values* are not in
//! the key either (it is on disk, and a hash of a short secret is a guess
//! away from it): after rotating a secret, `--no-cache` runs for real.
//! See docs/daily-use.md.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The inputs of a run that decide its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub tree: String,
    pub ci_fnl_hash: String,
    pub image_id: String,
    pub jobs: Vec<String>,
    pub git_ref: String,
    /// `--event` overrides as canonical JSON, if any.
    pub event: Option<String>,
    pub secret_names: Vec<String>,
    /// Run settings that can change the outcome, as (name, value) pairs
    /// (see `run::outcome_settings`); a setting at its default is still
    /// listed, so the key does not depend on how it was given.
    pub settings: Vec<(String, String)>,
}

impl CacheKey {
    /// The entry's file name: sha256 over every part, each length-prefixed
    /// so no two different keys can concatenate to the same bytes.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        let mut part = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        };
        part("version", env!("CARGO_PKG_VERSION"));
        part("tree", &self.tree);
        part("ci-fnl", &self.ci_fnl_hash);
        part("image", &self.image_id);
        for j in &self.jobs {
            part("job", j);
        }
        part("ref", &self.git_ref);
        if let Some(e) = &self.event {
            part("event", e);
        }
        let mut names = self.secret_names.clone();
        names.sort();
        for n in &names {
            part("secret", n);
        }
        for (name, value) in &self.settings {
            part("setting", name);
            part("value", value);
        }
        format!("{:x}", h.finalize())
    }
}

/// The cache of one repository.
#[derive(Debug, Clone)]
pub struct ResultCache {
    dir: PathBuf,
}

/// `<git-dir>/quire-ci/cache`: inside `.git`, so never snapshotted or watched.
pub fn cache_dir(git_dir: &Path) -> PathBuf {
    git_dir.join("quire-ci").join("cache")
}

impl ResultCache {
    pub fn at(dir: impl Into<PathBuf>) -> ResultCache {
        ResultCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run id of a green run with this key, if one was recorded. A
    /// missing, unreadable or malformed entry is a miss, never an error:
    /// the worst a broken cache may cost is a run.
    pub fn lookup(&self, key: &CacheKey) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(key.digest())).ok()?;
        let id = text.trim();
        crate::record::is_run_id(id).then(|| id.to_string())
    }

    /// Records that the run `run_id` with this key succeeded. Written to a
    /// temporary file and renamed, so a reader never sees half an entry.
    pub fn store(&self, key: &CacheKey, run_id: &str) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", self.dir.display())))?;
        let digest = key.digest();
        let tmp = self.dir.join(format!(".{digest}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, format!("{run_id}\n"))
            .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", tmp.display())))?;
        let path = self.dir.join(&digest);
        std::fs::rename(&tmp, &path)
            .map_err(|e| io::Error::new(e.kind(), format!("renaming {} to {}: {e}", tmp.display(), path.display())))
    }
}

impl ResultCache {
    /// Removes entries whose run `keep` rejects (e.g. its record was
    /// pruned), so the directory does not grow without bound. Returns how
    /// many were removed; unreadable entries are removed too.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> io::Result<usize> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io::Error::new(e.kind(), format!("reading {}: {e}", self.dir.display()))),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Only our entries: 64 hex digits. Temp files of a concurrent
            // store are left alone.
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let id = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if !keep(id.trim()) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            tree: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
            ci_fnl_hash: "abc".into(),
            image_id: "sha256:0123".into(),
            jobs: vec!["a".into(), "b".into()],
            git_ref: "refs/heads/main".into(),
            event: None,
            secret_names: vec![],
            settings: vec![("memory".into(), "none".into())],
        }
    }

    #[test]
    fn every_part_changes_the_digest() {
        let base = key().digest();
        type Change = Box<dyn Fn(&mut CacheKey)>;
        let variants: Vec<Change> = vec![
            Box::new(|k| k.tree = "other".into()),
            Box::new(|k| k.ci_fnl_hash = "other".into()),
            Box::new(|k| k.image_id = "sha256:other".into()),
            Box::new(|k| k.jobs = vec!["a".into()]),
            Box::new(|k| k.git_ref = "refs/tags/v1".into()),
            Box::new(|k| k.event = Some("{}".into())),
            Box::new(|k| k.secret_names = vec!["TOKEN".into()]),
            Box::new(|k| k.settings = vec![("memory".into(), "8388608".into())]),
        ];
        for change in variants {
            let mut k = key();
            change(&mut k);
            assert_ne!(k.digest(), base, "{k:?}");
        }
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        let mut a = key();
        a.jobs = vec!["ab".into()];
        let mut b = key();
        b.jobs = vec!["a".into(), "b".into()];
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn store_then_lookup_round_trips_and_garbage_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ResultCache::at(dir.path().join("cache"));
        assert_eq!(cache.lookup(&key()), None);
        let id = crate::record::new_run_id();
        cache.store(&key(), &id).expect("store");
        assert_eq!(cache.lookup(&key()), Some(id));
        std::fs::write(cache.dir().join(key().digest()), "not a run id").expect("write");
        assert_eq!(cache.lookup(&key()), None);
    }

    #[test]
    fn retain_drops_entries_of_runs_that_are_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ResultCache::at(dir.path());
        let (mut other, gone, live) = (key(), crate::record::new_run_id(), "20261124T214338.123Z-a3f9");
        other.tree = "other".into();
        cache.store(&key(), &gone).expect("store");
        cache.store(&other, live).expect("store");
        std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
        assert_eq!(cache.retain(|id| id == live).expect("retain"), 1);
        assert_eq!(cache.lookup(&key()), None);
        assert_eq!(cache.lookup(&other).as_deref(), Some(live));
        assert!(dir.path().join("notes.txt").exists());
    }
}
