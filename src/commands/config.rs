//! `quire-ci config`: the settings a run here would use and where each
//! came from, like `git config --list --show-origin`: one line per setting,
//! `ORIGIN<TAB>KEY = VALUE`, the value written as TOML writes it.

use super::{exit, Context};
use crate::cli::ConfigArgs;
use crate::settings::{Origin, Settings};

pub fn run(ctx: &Context, args: &ConfigArgs) -> i32 {
    // Outside a repository only the environment and the user's file count.
    let repo = super::find_repo_root(&ctx.cwd).ok();
    let settings = match super::settings_without_flags(ctx, repo.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if args.json {
        println!("{}", json(&settings));
    } else {
        for (key, value, origin) in settings.effective() {
            let shown = if value.is_null() { "(unset)".to_string() } else { value.to_string() };
            println!("{}\t{} = {shown}", origin.describe(), key.name);
        }
        if ctx.verbose {
            for f in &settings.files {
                let state = if f.found { "read" } else { "not present" };
                eprintln!("quire-ci: {} settings file {}: {state}", f.level.as_str(), f.path.display());
            }
        }
    }
    exit::OK
}

fn json(settings: &Settings) -> serde_json::Value {
    use serde_json::json;
    let entries: Vec<serde_json::Value> = settings
        .effective()
        .into_iter()
        .map(|(key, value, origin)| {
            let origin = match origin {
                Origin::Flag(f) => json!({"kind": "flag", "flag": f}),
                Origin::Env(v) => json!({"kind": "env", "variable": v}),
                Origin::File { file, line, level } => {
                    json!({"kind": "file", "level": level.as_str(), "file": file, "line": line})
                }
                Origin::Default => json!({"kind": "default"}),
            };
            json!({"key": key.name, "value": value, "origin": origin, "flag": key.flag, "env": key.env})
        })
        .collect();
    let files: Vec<serde_json::Value> = settings
        .files
        .iter()
        .map(|f| json!({"level": f.level.as_str(), "path": f.path.display().to_string(), "exists": f.found}))
        .collect();
    json!({"settings": entries, "files": files})
}
