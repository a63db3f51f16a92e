//! The settings a file may hold: each one's key, the flag and environment
//! variable that set it too, and the shape its value takes in TOML.

use crate::cli::WatchArgs;

/// The TOML shape of a value. Every value goes through the flag's own
/// parser (clap's), so a file, `QUIRE_CI_*` and the flag accept the same
/// values and say the same thing about a bad one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A string such as "512m", or a number of bytes.
    Size,
    /// An integer.
    Int,
    /// A number of seconds (integer or float).
    Seconds,
    /// `true` or `false`.
    Bool,
    /// An array of strings.
    List,
    /// A path: relative to the directory of the file it is written in.
    Path,
    /// A table `{ "FROM" = "TO" }`, or an array of "FROM=TO" strings.
    ImageMap,
}

impl Kind {
    /// What a value of this kind looks like, for messages.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Text => "a string",
            Kind::Size => "a size such as \"512m\" or \"2g\", or a number of bytes",
            Kind::Int => "an integer",
            Kind::Seconds => "a number of seconds",
            Kind::Bool => "true or false",
            Kind::List => "an array of strings, e.g. [\"a\", \"b\"]",
            Kind::Path => "a path (a string)",
            Kind::ImageMap => "a table { \"FROM\" = \"TO\" } or an array of \"FROM=TO\" strings",
        }
    }
}

/// One setting.
#[derive(Debug)]
pub struct Key {
    /// As written in a file; `watch.` and `hook.` keys live in those tables.
    pub name: &'static str,
    /// clap's id of the flag (a field of [`WatchArgs`] or its `run`), empty
    /// for a setting no flag has.
    pub id: &'static str,
    /// The flag, e.g. `--image` (empty when there is none).
    pub flag: &'static str,
    pub env: &'static str,
    pub kind: Kind,
}

const fn key(name: &'static str, id: &'static str, flag: &'static str, env: &'static str, kind: Kind) -> Key {
    Key { name, id, flag, env, kind }
}

/// Every setting, in the order `quire-ci config` lists them. The
/// invocation's own flags (`JOB...`, `--ref`, `--event`, `--json`,
/// `--shell-on-failure`) are not settings: they say what this one run is.
pub const KEYS: &[Key] = &[
    key("image", "image", "--image", "QUIRE_CI_IMAGE", Kind::Text),
    key("image-map", "image_map", "--image-map", "QUIRE_CI_IMAGE_MAP", Kind::ImageMap),
    key("pull", "pull", "--pull", "QUIRE_CI_PULL", Kind::Text),
    key("memory", "memory", "--memory", "QUIRE_CI_MEMORY", Kind::Size),
    key("network", "network", "--network", "QUIRE_CI_NETWORK", Kind::Text),
    key("jobs", "parallel", "--jobs", "QUIRE_CI_JOBS", Kind::Int),
    key("fail-fast", "fail_fast", "--fail-fast", "QUIRE_CI_FAIL_FAST", Kind::Bool),
    key("cache-volume", "cache_volume", "--cache-volume", "QUIRE_CI_CACHE_VOLUME", Kind::Bool),
    key("secrets-file", "secrets_file", "--secrets-file", "QUIRE_CI_SECRETS_FILE", Kind::Path),
    key("secrets", "secrets", "--secret", "QUIRE_CI_SECRETS", Kind::List),
    key("out", "out", "--out", "QUIRE_CI_OUT", Kind::Path),
    key("keep-runs", "keep_runs", "--keep-runs", "QUIRE_CI_KEEP_RUNS", Kind::Int),
    key("skip", "skip", "--skip", "QUIRE_CI_SKIP_JOBS", Kind::List),
    key("artifacts", "artifacts", "--artifact", "QUIRE_CI_ARTIFACTS", Kind::List),
    key("artifacts-dir", "artifacts_dir", "--artifacts-dir", "QUIRE_CI_ARTIFACTS_DIR", Kind::Path),
    key("with-git", "with_git", "--with-git", "QUIRE_CI_WITH_GIT", Kind::Bool),
    key("no-cache", "no_cache", "--no-cache", "QUIRE_CI_NO_CACHE", Kind::Bool),
    key("keep", "keep", "--keep", "QUIRE_CI_KEEP", Kind::Bool),
    key("excerpt-lines", "excerpt_lines", "--excerpt-lines", "QUIRE_CI_EXCERPT_LINES", Kind::Int),
    key("lua-memory", "lua_memory", "--lua-memory", "QUIRE_CI_LUA_MEMORY", Kind::Int),
    key("eval-timeout", "eval_timeout", "--eval-timeout", "QUIRE_CI_EVAL_TIMEOUT", Kind::Seconds),
    key("job-lua-timeout", "job_lua_timeout", "--job-lua-timeout", "QUIRE_CI_JOB_LUA_TIMEOUT", Kind::Seconds),
    key("watch.debounce", "debounce", "--debounce", "QUIRE_CI_WATCH_DEBOUNCE", Kind::Int),
    key("watch.clear", "clear", "--clear", "QUIRE_CI_WATCH_CLEAR", Kind::Bool),
    key("hook.skip", "", "", "QUIRE_CI_HOOK_SKIP_JOBS", Kind::List),
];

/// The tables a file may have.
pub const SECTIONS: &[&str] = &["watch", "hook"];

pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Moves the value of setting `id` from `from` (a parse of that one
/// setting) into `to`.
pub fn take(to: &mut WatchArgs, from: WatchArgs, id: &str) {
    let (t, f) = (&mut to.run, from.run);
    match id {
        "image" => t.image = f.image,
        "image_map" => t.image_map = f.image_map,
        "pull" => t.pull = f.pull,
        "memory" => t.memory = f.memory,
        "network" => t.network = f.network,
        "parallel" => t.parallel = f.parallel,
        "fail_fast" => t.fail_fast = f.fail_fast,
        "cache_volume" => t.cache_volume = f.cache_volume,
        "secrets_file" => t.secrets_file = f.secrets_file,
        "secrets" => t.secrets = f.secrets,
        "out" => t.out = f.out,
        "keep_runs" => t.keep_runs = f.keep_runs,
        "skip" => t.skip = f.skip,
        "artifacts" => t.artifacts = f.artifacts,
        "artifacts_dir" => t.artifacts_dir = f.artifacts_dir,
        "with_git" => t.with_git = f.with_git,
        "no_cache" => t.no_cache = f.no_cache,
        "keep" => t.keep = f.keep,
        "excerpt_lines" => t.excerpt_lines = f.excerpt_lines,
        "lua_memory" => t.eval.lua_memory = f.eval.lua_memory,
        "eval_timeout" => t.eval.eval_timeout = f.eval.eval_timeout,
        "job_lua_timeout" => t.eval.job_lua_timeout = f.eval.job_lua_timeout,
        "debounce" => to.debounce = from.debounce,
        "clear" => to.clear = from.clear,
        other => unreachable!("no setting has the id {other:?}"),
    }
}

/// The effective value of a setting, as JSON (and, compactly, as `config`
/// prints it: close to how it is written in TOML).
pub fn value_of(key: &Key, args: &WatchArgs, hook_skip: &[String]) -> serde_json::Value {
    use serde_json::{json, Value};
    let a = &args.run;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map_or(Value::Null, |p| json!(p.display().to_string()));
    match key.name {
        "image" => json!(a.image),
        "image-map" => json!(a.image_map.iter().map(|(f, t)| (f.clone(), json!(t))).collect::<serde_json::Map<_, _>>()),
        "pull" => json!(format!("{:?}", a.pull).to_ascii_lowercase()),
        "memory" => a.memory.map_or(Value::Null, |b| json!(size_text(b))),
        "network" => json!(a.network),
        "jobs" => json!(a.parallel),
        "fail-fast" => json!(a.fail_fast),
        "cache-volume" => json!(a.cache_volume),
        "secrets-file" => path(&a.secrets_file),
        "secrets" => json!(a.secrets),
        "out" => path(&a.out),
        "keep-runs" => json!(a.keep_runs),
        "skip" => json!(a.skip),
        "artifacts" => json!(a.artifacts),
        "artifacts-dir" => path(&a.artifacts_dir),
        "with-git" => json!(a.with_git),
        "no-cache" => json!(a.no_cache),
        "keep" => json!(a.keep),
        "excerpt-lines" => json!(a.excerpt_lines),
        "lua-memory" => json!(a.eval.lua_memory),
        "eval-timeout" => json!(a.eval.eval_timeout),
        "job-lua-timeout" => json!(a.eval.job_lua_timeout),
        "watch.debounce" => json!(args.debounce),
        "watch.clear" => json!(args.clear),
        "hook.skip" => json!(hook_skip),
        other => unreachable!("no setting is named {other:?}"),
    }
}

/// Bytes as `--memory` takes them: `512m` when whole MiB, and so on.
fn size_text(bytes: i64) -> String {
    for (unit, shift) in [("g", 30), ("m", 20), ("k", 10)] {
        if bytes % (1i64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// The setting `name` most likely meant (one or two edits away).
pub fn suggest(name: &str) -> Option<&'static str> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    KEYS.iter().map(|k| (edits(&last(name), &last(k.name)), k.name)).filter(|(d, _)| *d <= 2).min().map(|(_, n)| n)
}

/// Levenshtein distance, for suggestions.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_with_a_flag_names_an_argument_of_watch() {
        use clap::Args;
        let cmd = WatchArgs::augment_args(clap::Command::new("t"));
        for k in KEYS.iter().filter(|k| !k.id.is_empty()) {
            let arg = cmd.get_arguments().find(|a| a.get_id() == k.id);
            let arg = arg.unwrap_or_else(|| panic!("{} names no argument", k.id));
            assert_eq!(format!("--{}", arg.get_long().unwrap_or_default()), k.flag, "{}", k.name);
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(k.env), "{}", k.name);
        }
    }

    #[test]
    fn suggestions_and_sizes() {
        assert_eq!(suggest("imgae"), Some("image"));
        assert_eq!(suggest("memroy"), Some("memory"));
        assert_eq!(suggest("watch.debunce"), Some("watch.debounce"));
        assert_eq!(suggest("something-else"), None);
        assert_eq!(size_text(512 << 20), "512m");
        assert_eq!(size_text(2 << 30), "2g");
        assert_eq!(size_text(6_000_001), "6000001");
    }
}
