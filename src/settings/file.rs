//! One settings file: read, parsed as TOML (the `toml` crate's parser, which
//! keeps every key's and value's place), every key checked against
//! [`KEYS`](super::keys::KEYS) and every value against its kind. Paths are
//! made absolute here, relative to the file's directory.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::keys::{self, Key, Kind};
use crate::diagnostic::{Code, Problem};

/// Which layer a file is, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `$XDG_CONFIG_HOME/quire-ci/config.toml` (default `~/.config`).
    User,
    /// `.quire/quire-ci.toml`, committed with the repository.
    Repo,
    /// `<git-dir>/quire-ci.toml`: this clone's, never committed.
    Local,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::User => "user",
            Level::Repo => "repo",
            Level::Local => "local",
        }
    }
}

/// A value as the file gives it, ready for the flag's parser.
#[derive(Debug, Clone)]
pub enum Raw {
    Bool(bool),
    /// The flag's values, one per occurrence (`--skip a --skip b`).
    Args(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: &'static Key,
    pub raw: Raw,
    /// 1-based.
    pub line: usize,
    /// 0-based character columns of the value on its line.
    pub columns: (usize, usize),
}

#[derive(Debug, Clone)]
pub struct SettingsFile {
    pub level: Level,
    pub path: PathBuf,
    /// The name problems and `config` use: relative to the repository
    /// when inside it, else absolute.
    pub shown: String,
    pub text: String,
    pub entries: Vec<Entry>,
}

impl SettingsFile {
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key.name == name)
    }
}

/// Reads `path`: `Ok(None)` when there is no such file; every problem of
/// the file otherwise (all of them, not only the first).
pub fn read(level: Level, path: &Path, shown: String) -> Result<Option<SettingsFile>, (Vec<Problem>, String)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            let p = Problem::new(Code::Read, format!("cannot read the settings file {shown}: {e}"))
                .help("fix its permissions, or remove it");
            return Err((vec![p], String::new()));
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        let p = Problem::new(Code::NotUtf8, format!("the settings file {shown} is not UTF-8 text"))
            .help("TOML files are UTF-8; save it as UTF-8");
        return Err((vec![p], String::new()));
    };
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut file = SettingsFile { level, path: path.to_path_buf(), shown, text, entries: Vec::new() };
    let problems = parse(&mut file, &base);
    if problems.is_empty() {
        Ok(Some(file))
    } else {
        Err((problems, file.text))
    }
}

fn parse(file: &mut SettingsFile, base: &Path) -> Vec<Problem> {
    let text = file.text.clone();
    let table = match DeTable::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let (line, columns) = place(&text, span);
            let message = e.message().trim().to_string();
            return vec![Problem::new(Code::Settings, format!("{} is not valid TOML: {message}", file.shown))
                .at(&file.shown, line)
                .columns(Some(columns))
                .label(message)
                .help("see the settings files in docs/daily-use.md")];
        }
    };
    let mut problems = Vec::new();
    walk(file, base, &text, table.get_ref(), "", &mut problems);
    problems
}

fn walk(file: &mut SettingsFile, base: &Path, text: &str, table: &DeTable<'_>, prefix: &str, out: &mut Vec<Problem>) {
    for (k, v) in table.iter() {
        let name = format!("{prefix}{}", k.get_ref());
        let (line, columns) = place(text, k.span());
        if prefix.is_empty() && keys::SECTIONS.contains(&name.as_str()) {
            match v.get_ref() {
                DeValue::Table(inner) => walk(file, base, text, inner, &format!("{name}."), out),
                other => out.push(
                    Problem::new(
                        Code::SettingsValue,
                        format!("`{name}` in {} must be a table, not {}", file.shown, other.type_str()),
                    )
                    .at(&file.shown, line)
                    .columns(Some(columns))
                    .label("a table of settings")
                    .help(format!("write it as a [{name}] table")),
                ),
            }
            continue;
        }
        let Some(key) = keys::find(&name) else {
            let known = keys::KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
            let guess = keys::suggest(&name).map(|g| format!("did you mean `{g}`? ")).unwrap_or_default();
            out.push(
                Problem::new(Code::SettingsKey, format!("unknown setting `{name}` in {}", file.shown))
                    .at(&file.shown, line)
                    .columns(Some(columns))
                    .label("not a setting of quire-ci")
                    .help(format!("{guess}the settings are: {known} (docs/daily-use.md)")),
            );
            continue;
        };
        let (vline, vcolumns) = place(text, v.span());
        match raw(key, v, base) {
            Ok(raw) => file.entries.push(Entry { key, raw, line: vline, columns: vcolumns }),
            Err(why) => out.push(
                Problem::new(Code::SettingsValue, format!("`{name}` in {} {why}", file.shown))
                    .at(&file.shown, vline)
                    .columns(Some(vcolumns))
                    .label(format!("expected {}", key.kind.expected()))
                    .help(format!("give {} (the values {} takes)", key.kind.expected(), flag_or_env(key))),
            ),
        }
    }
}

fn flag_or_env(key: &Key) -> &'static str {
    if key.flag.is_empty() {
        key.env
    } else {
        key.flag
    }
}

/// The value in the shape its kind takes, or why not.
fn raw(key: &Key, v: &Spanned<DeValue<'_>>, base: &Path) -> Result<Raw, String> {
    let wrong = |v: &DeValue<'_>| format!("must be {}, not {}", key.kind.expected(), v.type_str());
    let int = |v: &DeValue<'_>| -> Option<String> {
        let i = v.as_integer()?;
        i128::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n.to_string())
    };
    let string = |v: &DeValue<'_>| v.as_str().map(str::to_string);
    let v = v.get_ref();
    let one = |s: Option<String>| s.map(|s| Raw::Args(vec![s])).ok_or_else(|| wrong(v));
    match key.kind {
        Kind::Text => one(string(v)),
        Kind::Size => one(string(v).or_else(|| int(v))),
        Kind::Int => one(int(v)),
        Kind::Seconds => one(int(v).or_else(|| v.as_float().map(|f| f.as_str().to_string()))),
        Kind::Bool => v.as_bool().map(Raw::Bool).ok_or_else(|| wrong(v)),
        Kind::Path => {
            let s = string(v).ok_or_else(|| wrong(v))?;
            Ok(Raw::Args(vec![absolute(&s, base).display().to_string()]))
        }
        Kind::List => {
            let items = v.as_array().ok_or_else(|| wrong(v))?;
            items.iter().map(|i| string(i.get_ref()).ok_or_else(|| wrong(v))).collect::<Result<_, _>>().map(Raw::Args)
        }
        Kind::ImageMap => {
            if let Some(t) = v.as_table() {
                let pairs = t.iter().map(|(from, to)| {
                    string(to.get_ref()).map(|to| format!("{}={to}", from.get_ref())).ok_or_else(|| wrong(v))
                });
                pairs.collect::<Result<_, _>>().map(Raw::Args)
            } else if let Some(items) = v.as_array() {
                items
                    .iter()
                    .map(|i| string(i.get_ref()).ok_or_else(|| wrong(v)))
                    .collect::<Result<_, _>>()
                    .map(Raw::Args)
            } else {
                Err(wrong(v))
            }
        }
    }
}

/// A path written in a file: `~/…` is under `$HOME`, a relative one under
/// the file's directory.
fn absolute(s: &str, base: &Path) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(home).join(rest);
        }
    }
    let p = PathBuf::from(s);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

/// The 1-based line and the 0-based character columns (on that line) of a
/// byte span.
pub fn place(text: &str, span: std::ops::Range<usize>) -> (usize, (usize, usize)) {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..start].matches('\n').count() + 1;
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let end = span.end.clamp(start, line_end);
    let col = |b: usize| text[line_start..b.max(line_start)].chars().count();
    (line, (col(start), col(end).max(col(start) + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<SettingsFile, Vec<Problem>> {
        let mut f = SettingsFile {
            level: Level::Repo,
            path: PathBuf::from("/r/.quire/quire-ci.toml"),
            shown: ".quire/quire-ci.toml".into(),
            text: text.into(),
            entries: Vec::new(),
        };
        let problems = parse(&mut f, Path::new("/r/.quire"));
        if problems.is_empty() {
            Ok(f)
        } else {
            Err(problems)
        }
    }

    fn args(f: &SettingsFile, name: &str) -> Vec<String> {
        match &f.get(name).unwrap_or_else(|| panic!("no {name}")).raw {
            Raw::Args(a) => a.clone(),
            Raw::Bool(b) => panic!("{name} is the bool {b}"),
        }
    }

    #[test]
    fn values_of_every_kind() {
        let f = parsed(
            "image = \"alpine:3\"\nmemory = 536870912\nout = \"../runs\"\nskip = [\"a\", \"b\"]\n\
             eval-timeout = 2.5\nexcerpt-lines = 0x10\ncache-volume = true\n\
             image-map = { \"python:3\" = \"mirror/python:3\" }\n[watch]\ndebounce = 50\n[hook]\nskip = [\"publish\"]\n",
        )
        .unwrap();
        assert_eq!(args(&f, "image"), ["alpine:3"]);
        assert_eq!(args(&f, "memory"), ["536870912"]);
        assert_eq!(args(&f, "out"), ["/r/.quire/../runs"]);
        assert_eq!(args(&f, "skip"), ["a", "b"]);
        assert_eq!(args(&f, "eval-timeout"), ["2.5"]);
        assert_eq!(args(&f, "excerpt-lines"), ["16"]);
        assert_eq!(args(&f, "image-map"), ["python:3=mirror/python:3"]);
        assert_eq!(args(&f, "watch.debounce"), ["50"]);
        assert_eq!(args(&f, "hook.skip"), ["publish"]);
        assert!(matches!(f.get("cache-volume").unwrap().raw, Raw::Bool(true)));
        assert_eq!(f.get("memory").unwrap().line, 2);
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_toml_name_their_line() {
        let p = parsed("image = \"x\"\nimgae = \"y\"\n[watch]\nclear = 1\nfoo = 2\n").unwrap_err();
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!((p[0].code, p[0].line()), (Code::SettingsKey, Some(2)));
        assert!(p[0].help.as_deref().unwrap().contains("did you mean `image`?"), "{:?}", p[0].help);
        assert_eq!((p[1].code, p[1].line()), (Code::SettingsValue, Some(4)));
        assert!(p[1].message.contains("`watch.clear`") && p[1].message.contains("not integer"), "{}", p[1].message);
        assert_eq!((p[2].code, p[2].line()), (Code::SettingsKey, Some(5)));
        let p = parsed("image = \"x\"\nmemory = \n").unwrap_err();
        assert_eq!((p[0].code, p[0].line()), (Code::Settings, Some(2)));
        let p = parsed("watch = 3\n").unwrap_err();
        assert_eq!(p[0].code, Code::SettingsValue);
    }

    #[test]
    fn places() {
        assert_eq!(place("a = 1\nbb = 22\n", 11..13), (2, (5, 7)));
        assert_eq!(place("", 0..0), (1, (0, 1)));
    }
}
