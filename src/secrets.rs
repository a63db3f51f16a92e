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

/// A secret shorter than this is warned about: it is masked wherever its
/// characters occur, which hides unrelated text.
pub const SHORT: usize = 4;

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
        let pairs =
            parse_dotenv(&text).map_err(|(line, msg)| format!("--secrets-file {}:{line}: {msg}", path.display()))?;
        out.extend(pairs);
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
    for name in named.iter().filter(|n| !n.is_empty()) {
        match env.get(name) {
            Some(v) => {
                out.insert(name.clone(), text(name, v)?);
            }
            None => return Err(format!("--secret {name}: the environment variable {name} is not set")),
        }
    }
    Ok(out)
}

/// A dotenv file, read by the `dotenvy` crate (docs/running.md, "Secrets"):
/// `KEY=value` lines, `#` comments (a ` #` after a value too), an optional
/// `export ` prefix, single quotes (literal), double quotes (`\n`, `\"`,
/// `\\`, `\$` escapes; may span lines, e.g. a PEM key), and `$NAME` /
/// `${NAME}` expanded — outside single quotes — from the environment, else
/// from a key earlier in the file, else to nothing. A later key of the
/// same name wins.
///
/// An error gives the line number only: the text of a line that does not
/// parse may be a secret.
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((k, v)) => out.push((k, v)),
            Err(dotenvy::Error::LineParse(line, _)) => {
                return Err((line_of(text, &line), "not a KEY=value line (is a quote left open?)".to_string()))
            }
            Err(e) => return Err((0, e.to_string())),
        }
    }
    Ok(out)
}

/// The 1-based line on which `entry` (one logical line of the file, as
/// the parser saw it) starts.
fn line_of(text: &str, entry: &str) -> usize {
    let first = entry.lines().next().unwrap_or(entry).trim();
    let at = if first.is_empty() { None } else { text.find(first) };
    at.map_or_else(|| text.lines().count().max(1), |i| text[..i].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_forms() {
        let parsed = parse_dotenv(
            "# c\nA=1\nexport B=two # note\nC=\"x\\ny\"\nD='q # r'\n\nQ=\"quoted\" # comment\nE='$NOPE_NOT_SET'\nF=${A}b\n",
        )
        .unwrap();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two"),
            ("C", "x\ny"),
            ("D", "q # r"),
            ("Q", "quoted"),
            ("E", "$NOPE_NOT_SET"),
            ("F", "1b"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(parsed, want);
        assert_eq!(parse_dotenv("nope").unwrap_err().0, 1);
        assert_eq!(parse_dotenv("A=1\n\nB=\"open\n").unwrap_err().0, 3);
    }

    #[test]
    fn a_multi_line_pem_key() {
        let pem =
            "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----";
        let parsed = parse_dotenv(&format!("# the deploy key\nexport KEY=\"{pem}\"\nAFTER=1\n")).unwrap();
        assert_eq!(parsed[0], ("KEY".to_string(), pem.to_string()));
        assert_eq!(parsed[1], ("AFTER".to_string(), "1".to_string()));
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
