//! The pre-push hook (DESIGN.md §7): where git looks for hooks, the hook
//! script quire-ci installs and removes, and reading git's pre-push lines.
//!
//! Owns: the hooks directory (honouring `core.hooksPath`), the script and
//! its marker, chaining a foreign hook kept with `--force`, parsing the
//! `<local ref> <local sha> <remote ref> <remote sha>` lines, and finding the
//! remote's default branch. Must not know about: how a run works inside
//! (commands/hook.rs hands each pushed ref to the executor).

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The line that marks a hook as ours. Uninstall removes only files with it.
pub const MARKER: &str = "# installed by quire-ci";
/// Present when the hook chains a foreign hook that `install --force` kept.
pub const CHAIN_MARKER: &str = "# quire-ci chains: pre-push.local";
/// What a foreign hook is renamed to when `--force` keeps it.
pub const LOCAL_HOOK: &str = "pre-push.local";

#[derive(Debug, Error, miette::Diagnostic)]
pub enum HookError {
    #[error("{path} is not inside a git repository: {reason}")]
    #[diagnostic(
        code(quire_ci::hook::not_a_repository),
        help("run `quire-ci hook` inside a git work tree, or point at one with -C DIR")
    )]
    NotARepository { path: PathBuf, reason: String },
    #[error("reading core.hooksPath in {repo}: {reason}")]
    #[diagnostic(code(quire_ci::hook::config), help("check `git config core.hooksPath`"))]
    Config { repo: PathBuf, reason: String },
    #[error("{path} already exists and was not installed by quire-ci; not replacing it (use `quire-ci hook install --force` to keep it as {LOCAL_HOOK} and run it before quire-ci)")]
    #[diagnostic(
        code(quire_ci::hook::foreign),
        help("`quire-ci hook install --force` keeps it as pre-push.local and runs it first")
    )]
    Foreign { path: PathBuf },
    #[error("cannot keep the existing hook {hook}: {local} already exists; move one of them away first")]
    #[diagnostic(code(quire_ci::hook::local_exists), help("move pre-push or pre-push.local away, then install again"))]
    LocalExists { hook: PathBuf, local: PathBuf },
    #[error("{path} was not installed by quire-ci; leaving it alone")]
    #[diagnostic(code(quire_ci::hook::not_ours), help("remove it yourself if you no longer want it"))]
    NotOurs { path: PathBuf },
    #[error("{what} {path}: {source}")]
    #[diagnostic(code(quire_ci::hook::io), help("check the hooks directory exists and is writable"))]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

impl HookError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HookError {
        let path = path.to_path_buf();
        move |source| HookError::Io { what, path, source }
    }
}

/// The hooks directory git uses for the repository containing `repo_dir`:
/// `core.hooksPath` (a relative value is relative to the work tree root,
/// where git runs hooks), else `<common-dir>/hooks` (linked worktrees share
/// the main repository's hooks).
pub fn hooks_dir(repo_dir: &Path) -> Result<PathBuf, HookError> {
    let repo = gix::discover(repo_dir)
        .map_err(|e| HookError::NotARepository { path: repo_dir.to_path_buf(), reason: e.to_string() })?;
    let configured = repo
        .config_snapshot()
        .trusted_path("core.hooksPath")
        .map_err(|e| HookError::Config { repo: repo_dir.to_path_buf(), reason: e.to_string() })?;
    Ok(match configured {
        Some(p) if p.is_absolute() => p,
        Some(p) => repo.workdir().unwrap_or_else(|| repo.git_dir()).join(p),
        None => repo.common_dir().join("hooks"),
    })
}

/// `s` as one single-quoted sh word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The hook script. `binary` is the absolute path of this quire-ci; the
/// script falls back to `quire-ci` on PATH when that file is gone (a
/// rebuilt or moved binary should not make every push fail).
pub fn hook_script(binary: &str, chain: bool) -> String {
    let q = sh_quote(binary);
    let mut s = format!(
        "#!/bin/sh\n{MARKER}\n\
         # Runs .quire/ci.fnl on what is pushed; a failing run refuses the push.\n\
         # Skip it with QUIRE_CI_SKIP=1 git push, or git push --no-verify.\n\
         # Remove it with: quire-ci hook uninstall\n"
    );
    if chain {
        s.push_str(CHAIN_MARKER);
        s.push('\n');
    }
    s.push_str(&format!(
        "if [ \"${{QUIRE_CI_SKIP:-}}\" = 1 ]; then cat >/dev/null; exit 0; fi\n\
         quire_ci={q}\n\
         [ -x \"$quire_ci\" ] || quire_ci=quire-ci\n"
    ));
    if chain {
        // git writes the ref lines once; both hooks need them, so keep a copy.
        s.push_str(
            "refs=$(mktemp \"${TMPDIR:-/tmp}/quire-ci-pre-push.XXXXXX\") || exit 1\n\
             trap 'rm -f \"$refs\"' EXIT\n\
             cat >\"$refs\"\n\
             hookdir=$(dirname \"$0\")\n\
             if ! \"$hookdir/pre-push.local\" \"$@\" <\"$refs\"; then\n\
             \x20 echo \"quire-ci: the chained hook $hookdir/pre-push.local failed; push refused\" >&2\n\
             \x20 exit 1\n\
             fi\n\
             \"$quire_ci\" hook pre-push \"$@\" <\"$refs\"\n",
        );
    } else {
        s.push_str("exec \"$quire_ci\" hook pre-push \"$@\"\n");
    }
    s
}

/// What `install` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    /// No pre-push hook was there.
    Fresh(PathBuf),
    /// Ours was there; rewritten (e.g. the binary moved).
    Updated(PathBuf),
    /// A foreign hook was renamed to `pre-push.local` and is run first.
    Chained { hook: PathBuf, local: PathBuf },
}

fn is_ours(path: &Path) -> Result<Option<bool>, HookError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).lines().any(|l| l.trim() == MARKER))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HookError::io("reading", path)(e)),
    }
}

fn chains(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.lines().any(|l| l.trim() == CHAIN_MARKER))
}

fn write_executable(path: &Path, text: &str) -> Result<(), HookError> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("quire-ci-tmp");
    std::fs::write(&tmp, text).map_err(HookError::io("writing", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(HookError::io("making executable", &tmp))?;
    std::fs::rename(&tmp, path).map_err(HookError::io("installing", path))
}

/// Writes the pre-push hook into `hooks_dir`. A hook that is not ours is
/// never replaced: without `force` this refuses; with it the hook is kept as
/// `pre-push.local` and run first.
pub fn install(hooks_dir: &Path, binary: &str, force: bool) -> Result<Installed, HookError> {
    std::fs::create_dir_all(hooks_dir).map_err(HookError::io("creating", hooks_dir))?;
    let hook = hooks_dir.join("pre-push");
    let local = hooks_dir.join(LOCAL_HOOK);
    // A dangling symlink is still someone's hook: look at the link itself.
    let exists = std::fs::symlink_metadata(&hook).is_ok();
    match is_ours(&hook)? {
        Some(true) => {
            let chain = chains(&hook) && local.exists();
            write_executable(&hook, &hook_script(binary, chain))?;
            Ok(Installed::Updated(hook))
        }
        None if !exists => {
            write_executable(&hook, &hook_script(binary, false))?;
            Ok(Installed::Fresh(hook))
        }
        _ if !force => Err(HookError::Foreign { path: hook }),
        _ => {
            if std::fs::symlink_metadata(&local).is_ok() {
                return Err(HookError::LocalExists { hook, local });
            }
            std::fs::rename(&hook, &local).map_err(HookError::io("renaming the existing hook", &hook))?;
            if let Err(e) = write_executable(&hook, &hook_script(binary, true)) {
                // Put the user's hook back rather than leave no hook at all.
                let _ = std::fs::rename(&local, &hook);
                return Err(e);
            }
            Ok(Installed::Chained { hook, local })
        }
    }
}

/// What `uninstall` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Uninstalled {
    Removed(PathBuf),
    /// Ours removed and the chained foreign hook moved back to `pre-push`.
    Restored(PathBuf),
    NotInstalled,
}

/// Removes only what `install` wrote.
pub fn uninstall(hooks_dir: &Path) -> Result<Uninstalled, HookError> {
    let hook = hooks_dir.join("pre-push");
    let local = hooks_dir.join(LOCAL_HOOK);
    match is_ours(&hook)? {
        None if std::fs::symlink_metadata(&hook).is_err() => Ok(Uninstalled::NotInstalled),
        Some(true) => {
            let chained = chains(&hook);
            if chained && std::fs::symlink_metadata(&local).is_ok() {
                std::fs::rename(&local, &hook).map_err(HookError::io("restoring the chained hook", &local))?;
                Ok(Uninstalled::Restored(hook))
            } else {
                std::fs::remove_file(&hook).map_err(HookError::io("removing", &hook))?;
                Ok(Uninstalled::Removed(hook))
            }
        }
        _ => Err(HookError::NotOurs { path: hook }),
    }
}

/// One updated ref from git's pre-push stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    pub local_ref: String,
    pub local_sha: String,
    pub remote_ref: String,
    /// `None` for a ref the remote does not have yet.
    pub remote_sha: Option<String>,
}

fn is_null_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b == b'0')
}

/// Parses git's pre-push lines. Deletions (local ref `(delete)`, or an
/// all-zero local sha, SHA-1 or SHA-256) are left out: nothing is pushed.
/// A malformed line is an error naming it.
pub fn parse_pre_push(stdin: &str) -> Result<Vec<PushedRef>, String> {
    let mut refs = Vec::new();
    for (i, line) in stdin.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [local_ref, local_sha, remote_ref, remote_sha] = fields[..] else {
            return Err(format!(
                "pre-push line {}: expected `<local ref> <local sha> <remote ref> <remote sha>`, got {line:?}",
                i + 1
            ));
        };
        let hex = |s: &str| (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(local_sha) || !hex(remote_sha) {
            return Err(format!("pre-push line {}: not an object id in {line:?}", i + 1));
        }
        if local_ref == "(delete)" || is_null_sha(local_sha) {
            continue;
        }
        refs.push(PushedRef {
            local_ref: local_ref.to_string(),
            local_sha: local_sha.to_string(),
            remote_ref: remote_ref.to_string(),
            remote_sha: (!is_null_sha(remote_sha)).then(|| remote_sha.to_string()),
        });
    }
    Ok(refs)
}

/// The commit the remote's default branch points at, as far as `repo`
/// knows: `refs/remotes/<remote>/HEAD`, else `<remote>/main`, else
/// `<remote>/master`. `None` when pushing to a bare URL or nothing was
/// fetched; a new branch is then compared with the empty tree.
pub fn remote_default_sha(repo: &gix::Repository, remote: &str) -> Option<String> {
    ["HEAD", "main", "master"].iter().find_map(|b| {
        let mut r = repo.try_find_reference(format!("refs/remotes/{remote}/{b}").as_str()).ok()??;
        Some(r.peel_to_id().ok()?.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn parses_every_ref_and_skips_deletions() {
        let z64 = "0".repeat(64);
        let b64 = "b".repeat(64);
        let input = format!(
            "refs/heads/main {A} refs/heads/main {A}\n\
             refs/heads/new {A} refs/heads/new {Z}\n\
             (delete) {Z} refs/heads/gone {A}\n\
             refs/heads/x {z64} refs/heads/x {b64}\n\
             refs/tags/v1 {b64} refs/tags/v1 {z64}\n"
        );
        let refs = parse_pre_push(&input).expect("parses");
        let names: Vec<&str> = refs.iter().map(|r| r.remote_ref.as_str()).collect();
        assert_eq!(names, ["refs/heads/main", "refs/heads/new", "refs/tags/v1"]);
        assert_eq!(refs[0].remote_sha.as_deref(), Some(A));
        assert_eq!(refs[1].remote_sha, None);
        assert_eq!(refs[2].remote_sha, None);
    }

    #[test]
    fn empty_input_is_no_refs_and_garbage_is_an_error() {
        assert_eq!(parse_pre_push(""), Ok(vec![]));
        let err = parse_pre_push("refs/heads/main main").expect_err("malformed");
        assert!(err.contains("line 1"), "{err}");
        assert!(parse_pre_push(&format!("a zz b {A}")).is_err());
    }

    #[test]
    fn install_refuses_a_foreign_hook_and_force_chains_it_and_uninstall_restores() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hooks = dir.path().join("hooks");
        std::fs::create_dir_all(&hooks).expect("mkdir");
        let foreign = "#!/bin/sh\necho mine\n";
        std::fs::write(hooks.join("pre-push"), foreign).expect("write");
        let err = install(&hooks, "/bin/quire-ci", false).expect_err("refuses");
        assert!(matches!(err, HookError::Foreign { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(hooks.join("pre-push")).expect("read"), foreign);

        let done = install(&hooks, "/bin/quire-ci", true).expect("force");
        assert!(matches!(done, Installed::Chained { .. }), "{done:?}");
        assert_eq!(std::fs::read_to_string(hooks.join(LOCAL_HOOK)).expect("read"), foreign);
        let script = std::fs::read_to_string(hooks.join("pre-push")).expect("read");
        assert!(script.contains(MARKER) && script.contains(CHAIN_MARKER), "{script}");
        // Re-installing keeps the chain.
        assert!(matches!(install(&hooks, "/bin/quire-ci", false), Ok(Installed::Updated(_))));
        assert!(std::fs::read_to_string(hooks.join("pre-push")).expect("read").contains(CHAIN_MARKER));

        assert!(matches!(uninstall(&hooks), Ok(Uninstalled::Restored(_))));
        assert_eq!(std::fs::read_to_string(hooks.join("pre-push")).expect("read"), foreign);
        assert!(!hooks.join(LOCAL_HOOK).exists());
        assert!(matches!(uninstall(&hooks), Err(HookError::NotOurs { .. })));
    }

    #[test]
    fn fresh_install_then_uninstall_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hooks = dir.path().join("hooks");
        assert!(matches!(install(&hooks, "/opt/it's/quire-ci", false), Ok(Installed::Fresh(_))));
        let script = std::fs::read_to_string(hooks.join("pre-push")).expect("read");
        assert!(script.contains(r"'/opt/it'\''s/quire-ci'"), "{script}");
        assert!(!script.contains(CHAIN_MARKER));
        assert_eq!(uninstall(&hooks).expect("uninstall"), Uninstalled::Removed(hooks.join("pre-push")));
        assert!(!hooks.join("pre-push").exists());
        assert_eq!(uninstall(&hooks).expect("again"), Uninstalled::NotInstalled);
    }
}
