//! `quire-ci doctor`: checks what a run needs — the engine, the Fennel
//! compiler, the repository and its ci.fnl, the image, the pre-push hook —
//! and prints one ok/warn/fail line per check, with the fix.
//!
//! Exit: 0 when nothing failed; 3 when an infrastructure check failed
//! (engine, image); else 2 when the repository or ci.fnl is bad.

use std::path::{Path, PathBuf};
use std::time::Duration;

use console::Style;

use super::{evaluate_worktree, exit, find_repo_root, Context};
use crate::cli::DoctorArgs;
use crate::engine::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub level: Level,
    pub what: &'static str,
    pub detail: String,
    /// How to fix it (warn and fail only).
    pub fix: Option<String>,
    /// A failure of the machine (exit 3) rather than of the repository (exit 2).
    pub infra: bool,
}

impl Check {
    fn ok(what: &'static str, detail: impl Into<String>) -> Check {
        Check { level: Level::Ok, what, detail: detail.into(), fix: None, infra: false }
    }
    fn warn(what: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { level: Level::Warn, what, detail: detail.into(), fix: Some(fix.into()), infra: false }
    }
    fn fail(what: &'static str, detail: impl Into<String>, fix: impl Into<String>, infra: bool) -> Check {
        Check { level: Level::Fail, what, detail: detail.into(), fix: Some(fix.into()), infra }
    }
}

pub fn run(ctx: &Context, args: &DoctorArgs) -> i32 {
    let checks = checks(ctx, args);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json_report(&checks)).unwrap_or_default());
        return exit_code(&checks);
    }
    let color = ctx.color_stdout;
    let paint = |s: Style| if color { s.force_styling(true) } else { Style::new() };
    for c in &checks {
        let word = match c.level {
            Level::Ok => paint(Style::new().green()).apply_to("ok  "),
            Level::Warn => paint(Style::new().yellow()).apply_to("warn"),
            Level::Fail => paint(Style::new().red().bold()).apply_to("fail"),
        };
        println!("{word}  {:<8} {}", c.what, c.detail);
        if let Some(fix) = &c.fix {
            println!("      {:<8} {}", "", paint(Style::new().dim()).apply_to(format!("fix: {fix}")));
        }
    }
    exit_code(&checks)
}

/// `doctor --json`: every check in order, and the exit code it leads to.
pub fn json_report(checks: &[Check]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.what,
                "status": match c.level { Level::Ok => "ok", Level::Warn => "warn", Level::Fail => "fail" },
                "detail": c.detail,
                "fix": c.fix,
                "infra": c.infra,
            })
        })
        .collect();
    let code = exit_code(checks);
    serde_json::json!({"ok": code == exit::OK, "exit": code, "checks": list})
}

pub fn exit_code(checks: &[Check]) -> i32 {
    let failed: Vec<&Check> = checks.iter().filter(|c| c.level == Level::Fail).collect();
    if failed.is_empty() {
        exit::OK
    } else if failed.iter().any(|c| c.infra) {
        exit::INFRA
    } else {
        exit::BAD_INPUT
    }
}

pub fn checks(ctx: &Context, args: &DoctorArgs) -> Vec<Check> {
    let mut out = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let engine = match &rt {
        Err(e) => {
            out.push(Check::fail(
                "engine",
                format!("cannot start the async runtime: {e}"),
                "report this as a bug",
                true,
            ));
            None
        }
        Ok(rt) => match rt.block_on(Engine::connect()) {
            Err(e) => {
                out.push(Check::fail(
                    "engine",
                    e.to_string(),
                    "start the Docker daemon (or Podman's socket), or choose another engine: DOCKER_HOST, DOCKER_CONTEXT or `docker context use` (docs/engine.md)",
                    true,
                ));
                None
            }
            Ok(engine) => {
                match rt.block_on(engine.version()) {
                    Ok(v) => out.push(Check::ok(
                        "engine",
                        format!(
                            "{} {} (API {}, speaking {}) via {}",
                            v.product,
                            v.server,
                            v.api,
                            v.negotiated_api,
                            engine.chosen().describe()
                        ),
                    )),
                    Err(e) => out.push(Check::warn(
                        "engine",
                        format!("reachable via {} but: {e}", engine.chosen().describe()),
                        "check the daemon's logs",
                    )),
                }
                Some(engine)
            }
        },
    };
    out.push(Check::ok("fennel", format!("Fennel {} (embedded)", crate::fennel::FENNEL_VERSION)));

    let root = match find_repo_root(&ctx.cwd) {
        Ok(r) => {
            out.push(Check::ok("repo", r.display().to_string()));
            r
        }
        Err(p) => {
            out.push(Check::fail(
                "repo",
                p.message.clone(),
                "run quire-ci inside a git work tree, or use -C DIR",
                false,
            ));
            return out;
        }
    };

    // The settings a run here would use (settings/): a bad file is a failure.
    let settings = match crate::settings::resolve_without_flags(Some(&root)) {
        Ok(s) => {
            let read: Vec<&str> = s.files.iter().filter(|f| f.found).map(|f| f.shown.as_str()).collect();
            let detail = if read.is_empty() { "no settings files".to_string() } else { read.join(", ") };
            out.push(Check::ok("settings", detail));
            s.args.run
        }
        Err(inv) => {
            let first = inv.problems.first().map(|p| p.message.clone()).unwrap_or_default();
            out.push(Check::fail("settings", first, "run `quire-ci config` for the details", false));
            crate::settings::defaults().run
        }
    };
    let ci = root.join(crate::pipeline::CI_FNL);
    let mut declared_image = None;
    // Anything at the path (a FIFO, a link) is the evaluation's to judge:
    // only nothing at all is "not found".
    if std::fs::symlink_metadata(&ci).is_err() {
        out.push(Check::fail(
            "ci.fnl",
            format!("{} not found", ci.display()),
            "run `quire-ci init` to write a starter",
            false,
        ));
    } else {
        match evaluate_worktree(ctx, None, &settings.eval) {
            Ok(p) => {
                let n = p.jobs.len();
                out.push(Check::ok("ci.fnl", format!("valid, {n} job{}", if n == 1 { "" } else { "s" })));
                declared_image = p.image.as_ref().map(|i| i.name.clone());
            }
            Err(inv) => {
                let first = inv.problems.first().map(|p| p.message.clone()).unwrap_or_default();
                out.push(Check::fail(
                    "ci.fnl",
                    format!("{} problem(s): {first}", inv.problems.len()),
                    "run `quire-ci validate` for the details",
                    false,
                ));
            }
        }
    }

    let image = args.image.clone().or(settings.image.clone());
    out.push(image_check(&root, declared_image, image, &settings.image_map, engine.as_ref(), rt.as_ref().ok()));
    out.push(hook_check(&root));
    out
}

/// A `.quire/Dockerfile`: whether its image (the tag a run of the working
/// tree would build) exists yet, and whether each `FROM` image is there to
/// build from.
fn dockerfile_check(
    root: &Path,
    map: &[(String, String)],
    engine: Option<&Engine>,
    rt: Option<&tokio::runtime::Runtime>,
) -> Check {
    let (Some(engine), Some(rt)) = (engine, rt) else {
        return Check::warn("image", "built from .quire/Dockerfile: not checked (no engine)", "fix the engine first");
    };
    let Ok(dockerfile) = std::fs::read(root.join(".quire/Dockerfile")) else {
        return Check::fail("image", ".quire/Dockerfile cannot be read", "check its permissions", false);
    };
    // The mapping a run would apply (image-map, QUIRE_CI_IMAGE_MAP).
    let dockerfile = crate::executor::map_dockerfile(map, &dockerfile).map(String::into_bytes).unwrap_or(dockerfile);
    let tree = crate::snapshot::Snapshot::of_worktree(root).map(|s| s.tree_id()).unwrap_or_default();
    let tag = crate::executor::dockerfile_tag(root, &dockerfile, &tree);
    if let Ok(Some(_)) = rt.block_on(engine.image_id(&tag)) {
        return Check::ok("image", format!("built from .quire/Dockerfile: {tag} is present (reused by the next run)"));
    }
    let text = String::from_utf8_lossy(&dockerfile);
    let stages: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if !w.first().is_some_and(|f| f.eq_ignore_ascii_case("FROM")) {
                return None;
            }
            let alias =
                w.iter().position(|x| x.eq_ignore_ascii_case("AS")).and_then(|i| w.get(i + 1)).map(|a| a.to_string());
            alias
        })
        .collect();
    let froms: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if !w.first().is_some_and(|f| f.eq_ignore_ascii_case("FROM")) {
                return None;
            }
            w.iter().skip(1).find(|x| !x.starts_with("--")).map(|x| x.to_string())
        })
        .filter(|f| f != "scratch" && !stages.contains(f) && !f.contains('$'))
        .collect();
    let mut missing = Vec::new();
    for from in &froms {
        if let Ok(Some(_)) = rt.block_on(engine.image_id(from)) {
            continue;
        }
        let reference = crate::engine::with_default_tag(from);
        let asked = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), engine.docker().inspect_registry_image(&reference, None))
                .await
        });
        if !matches!(asked, Ok(Ok(_))) {
            missing.push(from.clone());
        }
    }
    if missing.is_empty() {
        Check::ok(
            "image",
            format!("built from .quire/Dockerfile on the next run as {tag} (its FROM images are present or pullable)"),
        )
    } else {
        Check::fail(
            "image",
            format!("built from .quire/Dockerfile, but FROM {} is neither present nor pullable", missing.join(", ")),
            format!(
                "`docker pull` it from a mirror and map it: --image-map {}=MIRROR/IMAGE (or QUIRE_CI_IMAGE_MAP)",
                missing[0]
            ),
            true,
        )
    }
}

/// The image a run would use (same order as the executor) and whether the
/// engine has it or can get it.
fn image_check(
    root: &Path,
    declared: Option<String>,
    flag: Option<String>,
    map: &[(String, String)],
    engine: Option<&Engine>,
    rt: Option<&tokio::runtime::Runtime>,
) -> Check {
    let name = match declared {
        Some(n) => n,
        None if root.join(".quire/Dockerfile").is_file() => return dockerfile_check(root, map, engine, rt),
        None => flag.filter(|s| !s.is_empty()).unwrap_or_else(|| crate::executor::DEFAULT_IMAGE.to_string()),
    };
    let (Some(engine), Some(rt)) = (engine, rt) else {
        return Check::warn("image", format!("{name}: not checked (no engine)"), "fix the engine first");
    };
    match rt.block_on(engine.image_id(&name)) {
        Ok(Some(id)) => Check::ok("image", format!("{name} is present ({})", id.chars().take(19).collect::<String>())),
        Ok(None) => {
            let reference = crate::engine::with_default_tag(&name);
            let asked = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), engine.docker().inspect_registry_image(&reference, None))
                    .await
            });
            match asked {
                Ok(Ok(_)) => Check::ok(
                    "image",
                    format!("{name} is not present but its registry has it (pulled on the first run)"),
                ),
                Ok(Err(e)) => Check::fail(
                    "image",
                    format!("{name} is not present and cannot be pulled: {e}"),
                    format!("`docker pull {name}` or build it, or pick another with ci.image / --image"),
                    true,
                ),
                Err(_) => Check::fail(
                    "image",
                    format!("{name} is not present and its registry did not answer within 10s"),
                    format!("check the network, `docker pull {name}`, or pick another with ci.image / --image"),
                    true,
                ),
            }
        }
        Err(e) => Check::fail("image", format!("{name}: {e}"), "check the engine", true),
    }
}

/// Whether a pre-push hook that runs quire-ci is installed.
fn hook_check(root: &Path) -> Check {
    let dir = hooks_dir(root);
    let hook = dir.join("pre-push");
    match std::fs::read_to_string(&hook) {
        Ok(text) if text.contains("quire-ci") => Check::ok("hook", format!("{} runs quire-ci", hook.display())),
        Ok(_) => Check::warn(
            "hook",
            format!("{} exists but does not run quire-ci", hook.display()),
            "call `quire-ci hook run` from it, or move it aside and run `quire-ci hook install`",
        ),
        Err(_) => {
            Check::warn("hook", "no pre-push hook: `git push` does not run CI first", "run `quire-ci hook install`")
        }
    }
}

/// `git rev-parse --git-path hooks` honours core.hooksPath; fall back to
/// `.git/hooks` when git is not at hand.
fn hooks_dir(root: &Path) -> PathBuf {
    let asked =
        std::process::Command::new("git").arg("-C").arg(root).args(["rev-parse", "--git-path", "hooks"]).output();
    if let Ok(o) = asked {
        if o.status.success() {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            return if p.is_absolute() { p } else { root.join(p) };
        }
    }
    root.join(".git").join("hooks")
}
