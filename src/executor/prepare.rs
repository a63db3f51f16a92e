//! Everything a run knows before its record exists: the snapshot and its
//! git facts, the evaluated pipeline, which jobs, the result-cache key.
//!
//! Owns: snapshot + evaluation for a run, job selection and `--skip`
//! checks, the `:quire/push` table, the cache lookup. Must not know about:
//! containers, the terminal.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::error::Error as _;
use std::path::PathBuf;
use std::rc::Rc;

use mlua::Value;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::outcome::UserError;
use super::phase::Phase;
use super::request::{outcome_settings, RunRequest};
use crate::cache::{self, CacheKey, ResultCache};
use crate::emitter::Emitter;
use crate::engine::{Engine, PullPolicy};
use crate::events::{EventKind, Level};
use crate::pipeline::{self, Invalid, Pipeline, RepoFiles};
use crate::record;
use crate::runtime;
use crate::snapshot::{PushFacts, Snapshot};

/// The files of a snapshot, for evaluating ci.fnl as it is in the snapshot.
struct SnapshotFiles(Rc<Snapshot>);

impl RepoFiles for SnapshotFiles {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.0.read_file(path).map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// A run before its record: what was snapshotted and evaluated.
pub(super) struct Prepared {
    pub snapshot: Rc<Snapshot>,
    pub tree: String,
    pub facts: PushFacts,
    pub evaluated: Result<Pipeline, Invalid>,
    pub runs_dir: PathBuf,
    pub git_ref: String,
    pub result_cache: ResultCache,
    /// The cache key without the image id (known once the image is).
    pub partial_key: Option<CacheKey>,
    /// Said while preparing; emitted once the run has started.
    pub notices: Vec<EventKind>,
}

impl Prepared {
    /// Snapshots the tree (or the pushed commit) and evaluates its ci.fnl.
    pub fn take(req: &RunRequest, events: &Rc<RefCell<Emitter>>) -> Result<Prepared, UserError> {
        let mut notices = Vec::new();
        // The tree and its git facts.
        let phase = Phase::start(events, "snapshot");
        let taken = snapshot_of(req, &mut notices).and_then(|snapshot| {
            let facts = match &req.pushed {
                Some(p) => Ok(p.facts.clone()),
                None => crate::snapshot::push_facts_for_worktree(&snapshot),
            }
            .map_err(|e| UserError::new("quire_ci::snapshot::git_facts", format!("cannot read git facts: {e}")))?;
            Ok((snapshot, facts))
        });
        phase.end(events);
        let (snapshot, facts) = taken?;
        let tree = snapshot.tree_id();
        let compile_cache =
            Rc::new(crate::compile_cache::CompileCache::at(crate::compile_cache::cache_dir(snapshot.git_dir())));
        // ci.fnl and its modules are compiled as they are required, while it
        // is evaluated: one phase.
        let phase = Phase::start(events, "evaluate");
        let evaluated =
            pipeline::evaluate_with(Rc::new(SnapshotFiles(snapshot.clone())), req.limits, Some(compile_cache.clone()));
        phase.end(events);
        if req.verbose {
            for line in compile_cache.report() {
                let kind =
                    EventKind::Notice { level: Level::Info, code: "compile-cache".into(), message: line, help: None };
                notices.push(kind);
            }
        }
        let runs_dir = req.runs_dir.clone().unwrap_or_else(|| record::runs_dir(snapshot.git_dir()));
        let git_ref = req.git_ref.clone().unwrap_or_else(|| facts.git_ref.clone());
        let result_cache = ResultCache::at(cache::cache_dir(snapshot.git_dir()));
        let mut p =
            Prepared { snapshot, tree, facts, evaluated, runs_dir, git_ref, result_cache, partial_key: None, notices };
        p.partial_key = p.cache_key(req);
        Ok(p)
    }

    fn cache_key(&self, req: &RunRequest) -> Option<CacheKey> {
        let p = self.evaluated.as_ref().ok()?;
        let jobs = select_jobs(p, &req.selected).ok()?;
        Some(CacheKey {
            tree: self.tree.clone(),
            ci_fnl_hash: p.source_hash.clone(),
            image_id: String::new(),
            // A run that skipped a job does not vouch for it.
            jobs: jobs.into_iter().filter(|j| !req.skip.contains_key(j)).collect(),
            git_ref: self.git_ref.clone(),
            event: req.event.as_ref().map(|e| Json::Object(e.clone()).to_string()),
            secret_names: req.secrets.keys().cloned().collect(),
            settings: outcome_settings(req),
        })
    }

    /// The id of a green run with the same inputs, if the result cache has
    /// one whose record is still there. A run that is to copy artifacts
    /// into a directory the user named must run: a cached green run would
    /// copy nothing there.
    pub fn cached_green(
        &self,
        rt: &tokio::runtime::Handle,
        engine: Option<Engine>,
        req: &RunRequest,
    ) -> Option<String> {
        if req.no_cache || req.keep || req.artifacts_dir.is_some() || req.pull == PullPolicy::Always {
            return None;
        }
        let (key, p) = (self.partial_key.as_ref()?, self.evaluated.as_ref().ok()?);
        let (name, _) = super::image::image_choice(req, p, &self.snapshot);
        let image_id = rt.block_on(engine?.image_id(&name)).ok().flatten()?;
        let key = CacheKey { image_id, ..key.clone() };
        self.result_cache.lookup(&key).filter(|id| self.runs_dir.join(id).is_dir())
    }

    /// A job name that is not in ci.fnl (`run biuld`, `--skip pubish`) is
    /// bad usage, like a mistyped flag: said before anything is recorded.
    pub fn selected(&self, req: &RunRequest) -> Result<Vec<String>, UserError> {
        let Ok(p) = &self.evaluated else { return Ok(vec![]) };
        select_jobs(p, &req.selected).and_then(|s| check_skips(p, &req.skip).map(|()| s)).map_err(|m| {
            UserError::new("quire_ci::executor::unknown_job", m)
                .help("`quire-ci list` shows the jobs; names are the ids ci.fnl gives them, without the colon")
        })
    }

    /// sha256 of the ci.fnl that ran (also when it did not evaluate).
    pub fn ci_hash(&self) -> String {
        match &self.evaluated {
            Ok(p) => p.source_hash.clone(),
            Err(_) => self
                .snapshot
                .read_file(pipeline::CI_FNL)
                .ok()
                .flatten()
                .map(|b| format!("{:x}", Sha256::digest(&b)))
                .unwrap_or_default(),
        }
    }
}

fn snapshot_of(req: &RunRequest, notices: &mut Vec<EventKind>) -> Result<Rc<Snapshot>, UserError> {
    let snapshot = match &req.pushed {
        // An `--out` inside the working tree is never part of the snapshot.
        None => Snapshot::of_worktree(&req.repo_dir).and_then(|s| match &req.runs_dir {
            Some(out) => s.excluding(out),
            None => Ok(s),
        }),
        Some(p) => match &p.repo {
            Some(repo) => Snapshot::of_commit_in(repo.to_thread_local(), &p.sha),
            None => Snapshot::of_commit(&req.repo_dir, &p.sha),
        },
    };
    match snapshot {
        Ok(mut s) => {
            stamp_times(&mut s, notices);
            Ok(Rc::new(s))
        }
        Err(e) => Err(UserError::from_diagnostic(&e, Some(&format!("cannot snapshot {}", req.repo_dir.display())))),
    }
}

/// Gives the snapshot's files times that move when their content moves (see
/// src/snapshot/times.rs), so mtime-deciding builds in a kept /cache rebuild
/// what changed. Without a usable ledger, natural times still apply.
fn stamp_times(snapshot: &mut Snapshot, notices: &mut Vec<EventKind>) {
    let ledger = crate::snapshot::mtime_ledger_path(snapshot.git_dir());
    let now = std::time::SystemTime::now();
    if let Err(e) = snapshot.stamp_times(Some(&ledger), now) {
        notices.push(EventKind::Notice {
            level: Level::Warning,
            code: "mtime-ledger".into(),
            message: format!(
                "{e}: {}; files get their own times this run",
                e.source().map(|s| s.to_string()).unwrap_or_default()
            ),
            help: None,
        });
        let _ = snapshot.stamp_times(None, now);
    }
}

/// The selected jobs plus their ancestors, in run order. Unknown names are
/// a usage error listing what exists.
pub fn select_jobs(p: &Pipeline, wanted: &[String]) -> Result<Vec<String>, String> {
    if wanted.is_empty() {
        return Ok(p.jobs.iter().map(|j| j.id.clone()).collect());
    }
    let unknown: Vec<&String> = wanted.iter().filter(|w| p.job(w).is_none()).collect();
    if !unknown.is_empty() {
        let have: Vec<String> = p.jobs.iter().map(|j| j.id.clone()).collect();
        let names: Vec<String> = unknown.iter().map(|u| format!("{u:?}")).collect();
        return Err(format!("no job named {} in .quire/ci.fnl (jobs: {})", names.join(", "), have.join(", ")));
    }
    let mut keep: HashSet<String> = wanted.iter().cloned().collect();
    for w in wanted {
        keep.extend(p.ancestors(w));
    }
    Ok(p.jobs.iter().filter(|j| keep.contains(&j.id)).map(|j| j.id.clone()).collect())
}

/// Every job named to skip must exist: a misspelt `--skip` would otherwise
/// run the very job it was meant to keep off this machine.
pub(super) fn check_skips(p: &Pipeline, skip: &BTreeMap<String, String>) -> Result<(), String> {
    let unknown: Vec<String> =
        skip.iter().filter(|(j, _)| p.job(j).is_none()).map(|(j, from)| format!("{j:?} (from {from})")).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let have: Vec<String> = p.jobs.iter().map(|j| j.id.clone()).collect();
    Err(format!("cannot skip {}: no such job in .quire/ci.fnl (jobs: {})", unknown.join(", "), have.join(", ")))
}

/// The `:quire/push` table: the server's keys plus the locals' `:dirty` and
/// `:tree`, then `--ref` and `--event` applied.
pub(super) fn push_table(
    lua: &mlua::Lua,
    facts: &PushFacts,
    git_ref: &str,
    overridden: bool,
    tree: &str,
    dirty: bool,
    event: Option<&serde_json::Map<String, Json>>,
) -> mlua::Result<mlua::Table> {
    let (branch, tag) = if overridden {
        (
            git_ref.strip_prefix("refs/heads/").map(str::to_string),
            git_ref.strip_prefix("refs/tags/").map(str::to_string),
        )
    } else {
        (facts.branch.clone(), facts.tag.clone())
    };
    let mut m = serde_json::Map::new();
    m.insert("sha".into(), facts.sha.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("ref".into(), Json::String(git_ref.to_string()));
    m.insert("branch".into(), branch.map(Json::String).unwrap_or(Json::Null));
    m.insert("tag".into(), tag.map(Json::String).unwrap_or(Json::Null));
    m.insert("previous-sha".into(), facts.previous_sha.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("files-changed".into(), Json::Array(facts.files_changed.iter().cloned().map(Json::String).collect()));
    m.insert("pusher".into(), facts.pusher.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("commit-message".into(), facts.commit_message.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("pushed-at".into(), Json::String(facts.pushed_at.clone()));
    m.insert("dirty".into(), Json::Bool(dirty));
    m.insert("tree".into(), Json::String(tree.to_string()));
    if let Some(ev) = event {
        for (k, v) in ev {
            m.insert(k.clone(), v.clone());
        }
    }
    match runtime::json_to_lua(lua, &Json::Object(m))? {
        Value::Table(t) => Ok(t),
        _ => lua.create_table(),
    }
}
