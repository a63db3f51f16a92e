//! Where `(secret :NAME)` values come from (DESIGN.md §6): `--secret NAME`
//! (value from the environment variable NAME), `QUIRE_SECRET_NAME`, or
//! `--secrets-file PATH` (dotenv). All are resolved before the run starts,
//! so every value is known to the redactor before any output exists.
//!
//! Owns: resolution and the dotenv reader. Must not know about: Lua,
//! Docker, the terminal. Masking itself is `redact.rs`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

/// Later sources override earlier ones: file < `QUIRE_SECRET_*` < `--secret`.
/// `env` is the raw environment (`std::env::vars_os()`): variables that are
/// not UTF-8 are no concern unless a secret is read from one, which is an
/// error naming the variable.
pub fn resolve(
    named: &[String],
    file: Option<&Path>,
    env: impl Iterator<Item = (OsString, OsString)>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read --secrets-file {}: {e}", path.display()))?;
        for (n, (k, v)) in parse_dotenv(&text)
            .map_err(|(line, msg)| format!("{}:{line}: {msg}", path.display()))?
            .into_iter()
            .enumerate()
        {
            let _ = n;
            out.insert(k, v);
        }
    }
    let env: BTreeMap<String, OsString> = env.filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v))).collect();
    let text = |k: &str, v: &OsString| {
        v.clone()
            .into_string()
            .map_err(|_| format!("the environment variable {k} is not UTF-8 text; a secret's value must be"))
    };
    for (k, v) in &env {
        if let Some(name) = k.strip_prefix("QUIRE_SECRET_") {
            if !name.is_empty() {
                out.insert(name.to_string(), text(k, v)?);
            }
        }
    }
    for name in named {
        match env.get(name) {
            Some(v) => {
                out.insert(name.clone(), text(name, v)?);
            }
            None => return Err(format!("--secret {name}: the environment variable {name} is not set")),
        }
    }
    Ok(out)
}

/// `KEY=value` lines; `#` comments, blank lines, optional `export `, and
/// single- or double-quoted values (double quotes understand \n, \" and \\).
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err((i + 1, "expected KEY=value".into()));
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((i + 1, format!("{k:?} is not a valid name")));
        }
        let v = v.trim();
        let v = if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            let mut s = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(o) => s.push(o),
                        None => s.push('\\'),
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            inner.to_string()
        } else {
            // Unquoted: a trailing " # comment" is not part of the value.
            v.split(" #").next().unwrap_or(v).trim().to_string()
        };
        out.push((k.to_string(), v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_forms() {
        let parsed = parse_dotenv("# c\nA=1\nexport B = two # note\nC=\"x\\ny\"\nD='q # r'\n\n").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two".into()),
                ("C".into(), "x\ny".into()),
                ("D".into(), "q # r".into())
            ]
        );
        assert_eq!(parse_dotenv("nope").unwrap_err().0, 1);
    }

    #[test]
    fn precedence_and_missing() {
        let dir = std::env::temp_dir().join(format!("quire-secrets-{}", std::process::id()));
        std::fs::write(&dir, "TOKEN=file\nOTHER=o\n").unwrap();
        let env: Vec<(OsString, OsString)> =
            vec![("QUIRE_SECRET_TOKEN".into(), "env".into()), ("MINE".into(), "m".into())];
        let got = resolve(&["MINE".into()], Some(&dir), env.clone().into_iter()).unwrap();
        assert_eq!(got.get("TOKEN").unwrap(), "env");
        assert_eq!(got.get("OTHER").unwrap(), "o");
        assert_eq!(got.get("MINE").unwrap(), "m");
        let err = resolve(&["ABSENT".into()], None, env.into_iter()).unwrap_err();
        assert!(err.contains("ABSENT"), "{err}");
        std::fs::remove_file(dir).ok();
    }

    #[test]
    fn non_utf8_variables_matter_only_when_they_hold_a_secret() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(b"/tmp/caf\xe9".to_vec());
        let env = vec![(OsString::from("OLDPWD"), bad.clone()), (OsString::from_vec(b"K\xff".to_vec()), "v".into())];
        assert!(resolve(&[], None, env.clone().into_iter()).unwrap().is_empty());
        let err = resolve(&["OLDPWD".into()], None, env.into_iter()).unwrap_err();
        assert!(err.contains("OLDPWD") && err.contains("UTF-8"), "{err}");
        let err = resolve(&[], None, vec![(OsString::from("QUIRE_SECRET_X"), bad)].into_iter()).unwrap_err();
        assert!(err.contains("QUIRE_SECRET_X"), "{err}");
    }
}
