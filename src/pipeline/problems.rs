//! Problems found while evaluating: Fennel compile errors, Lua runtime
//! errors and tripped limits, turned into [`Problem`]s pointing at a line.
//!
//! Owns: the conversion of errors to problems, the "already reported"
//! marker. Must not know about: the job graph, Docker.

use crate::diagnostic::{Code, Problem};
use crate::fennel::{CompileError, CompileErrorKind};
use crate::sandbox;

/// A tripped evaluation limit (time, memory, instructions).
pub(super) fn limit_problem(msg: &str) -> Problem {
    Problem::new(Code::Limit, msg.to_string())
        .help("ci.fnl's top level should only declare jobs; move heavy work into a run-fn or into (sh ...)")
}

/// Strings and comments longer than this are named when the compiler runs
/// out of stack: Fennel's reader takes a stack frame per character of one
/// (Luau has no tail calls), and gives out near 20,000.
const LONG_LITERAL: usize = 10_000;

/// The longest string literal or comment in `text`: (its first line, its
/// length in characters, "string literal" or "comment").
fn longest_literal(text: &str) -> Option<(usize, usize, &'static str)> {
    let mut best: Option<(usize, usize, &'static str)> = None;
    let (mut line, mut chars) = (1usize, text.chars().peekable());
    while let Some(c) = chars.next() {
        let (what, start) = match c {
            '\n' => {
                line += 1;
                continue;
            }
            '"' => ("string literal", line),
            ';' => ("comment", line),
            _ => continue,
        };
        let mut len = 0usize;
        while let Some(c) = chars.next() {
            if c == '\n' {
                line += 1;
                if what == "comment" {
                    break;
                }
            }
            if what == "string literal" {
                if c == '\\' {
                    chars.next();
                    len += 1;
                } else if c == '"' {
                    break;
                }
            }
            len += 1;
        }
        if best.is_none_or(|b| len > b.1) {
            best = Some((start, len, what));
        }
    }
    best
}

/// Turns a Fennel compile error into a problem; `text` is the source of
/// `file`, the file being compiled (an error may be in a macro module).
pub fn compile_problem(e: CompileError, file: &str, text: &str) -> Problem {
    // Fennel notices a missing `)` only at the end of the file; the mistake
    // is where the form that never closes opens.
    if e.kind == CompileErrorKind::Parse && e.file == file && e.message.starts_with("expected closing delimiter") {
        if let Some((line, col, opener)) = unclosed_opener(text) {
            let closer = match opener {
                '[' => ']',
                '{' => '}',
                _ => ')',
            };
            return Problem::new(Code::Parse, format!("parse error in {}: this {opener} is never closed", e.file))
                .at(&e.file, line)
                .columns(Some((col, col + 1)))
                .label(format!("opened here, no {closer} before the end of the file"))
                .help(format!(
                    "add the missing {closer} where this form ends (Fennel only noticed at the end of the file)"
                ));
        }
    }
    let (code, what) = match e.kind {
        CompileErrorKind::Parse => (Code::Parse, "parse error"),
        CompileErrorKind::Compile => (Code::Compile, "compile error"),
        CompileErrorKind::Limit => return limit_problem(&e.message),
    };
    let mut p = Problem::new(code, format!("{what} in {}: {}", e.file, e.message)).label(e.message.clone());
    if let Some(line) = e.line {
        p = p.at(&e.file, line).columns(e.span);
    }
    if e.message.ends_with("stack overflow") {
        if let Some((line, len, what)) = longest_literal(text).filter(|l| l.1 > LONG_LITERAL) {
            return Problem::new(code, format!("a {what} of {len} characters in {} is more than the Fennel reader can take", e.file))
                .at(&e.file, line)
                .label(format!("{len} characters"))
                .help("keep strings and comments under about 20,000 characters: split a string with (.. \"part one\" \"part two\"), or keep the text in a file the job reads with (sh \"cat FILE\")");
        }
    }
    if e.message.contains("attempt to index nil with 'open'") && text.contains("(include") {
        return p.help("include is not available in ci.fnl: it reads files through io, which the sandbox does not have; load .quire/NAME.fnl with (require :NAME) instead");
    }
    let help = if e.message.ends_with("stack overflow") {
        "the Fennel compiler ran out of stack: forms nested thousands deep, or a macro that recurses without end"
            .to_string()
    } else if e.help.is_empty() {
        "fix the form at the marked place; docs/ci-fnl.md shows the ci.fnl surface".to_string()
    } else {
        // Fennel ends each suggestion with a full stop; joined, they read as one line.
        e.help.iter().map(|h| h.trim_end_matches('.')).collect::<Vec<_>>().join("; ")
    };
    p.help(help)
}

/// The outermost delimiter of `text` still open at its end: its 1-based
/// line, 0-based character column, and the character. Strings and `;`
/// comments are skipped as Fennel's reader skips them.
fn unclosed_opener(text: &str) -> Option<(usize, usize, char)> {
    let mut open: Vec<(usize, usize, char)> = Vec::new();
    let (mut in_string, mut escaped, mut in_comment) = (false, false, false);
    for (i, line) in text.split('\n').enumerate() {
        in_comment = false;
        for (col, c) in line.chars().enumerate() {
            if in_comment {
                break;
            }
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                ';' => in_comment = true,
                '(' | '[' | '{' => open.push((i + 1, col, c)),
                ')' | ']' | '}' => {
                    open.pop();
                }
                _ => {}
            }
        }
    }
    let _ = in_comment;
    open.first().copied()
}

/// Marks an error that was already recorded as a problem, so the top-level
/// error it causes is not reported a second time.
pub(super) const REPORTED: &str = "quire-ci: already reported: ";

/// Turns a Lua runtime error into a problem pointing at its line.
pub fn runtime_problem(e: &mlua::Error, code: Code, what: &str) -> Option<Problem> {
    let text = crate::fennel::root_message(e);
    if text.contains(REPORTED) {
        return None;
    }
    if let Some(limit) = sandbox::limit_message(&text) {
        return Some(limit_problem(&limit));
    }
    if sandbox::is_memory_error(e) {
        return Some(
            Problem::new(Code::Limit, "ci.fnl exceeded its memory cap (raise it with --lua-memory)")
                .help("ci.fnl's top level should only declare jobs; build big strings inside (sh ...)"),
        );
    }
    let (loc, msg) = split_location(&text);
    let mut p = Problem::new(code, format!("{what}: {msg}")).label(msg.clone());
    if let Some((file, line)) = loc {
        p = p.at(&file, line);
    }
    Some(p.help(runtime_help(&msg)))
}

fn runtime_help(msg: &str) -> String {
    if msg.contains("outside a run-fn") {
        "the top level only declares jobs; call it inside a run-fn: (ci.job :id [:quire/push] (fn [] (runtime.sh ...)))"
            .into()
    } else if msg.contains("not available in ci.fnl") {
        "ci.fnl runs in a sandbox: (sh ...) is the only way to touch files or run processes, inside the run's container; see docs/sandbox.md".into()
    } else if msg.contains("readonly") || msg.contains("read-only") {
        "library tables are shared and read-only in ci.fnl; build your own table instead".into()
    } else if msg.contains("stack overflow") {
        "a function recursed without end".into()
    } else {
        "see the marked line".into()
    }
}

/// Splits `file.fnl:LINE: message` into its location and message.
pub fn split_location(text: &str) -> (Option<(String, usize)>, String) {
    let first = text.lines().next().unwrap_or("").trim();
    // Fennel's own runtime errors may lead with "runtime error: ".
    let first = first.strip_prefix("runtime error: ").unwrap_or(first);
    if let Some(idx) = first.find(".fnl:") {
        let file = &first[..idx + 4];
        let rest = &first[idx + 5..];
        if let Some(colon) = rest.find(':') {
            if let Ok(line) = rest[..colon].parse::<usize>() {
                let msg = rest[colon + 1..].trim().to_string();
                return (Some((file.to_string(), line)), msg);
            }
        }
    }
    (None, first.to_string())
}

#[cfg(test)]
mod tests {
    use super::{longest_literal, unclosed_opener};

    #[test]
    fn the_longest_string_or_comment_is_found_with_its_line() {
        let text = format!("(local a \"x\\\"y\")\n;; short\n(local b \"{}\")\n", "z".repeat(50));
        assert_eq!(longest_literal(&text), Some((3, 50, "string literal")));
        let text = format!("(x)\n;{}\n(y \"ab\")", "c".repeat(30));
        assert_eq!(longest_literal(&text), Some((2, 30, "comment")));
    }

    #[test]
    fn the_outermost_form_left_open_is_found_past_strings_and_comments() {
        let text = "(local ci (require :quire.ci))\n; a ( in a comment\n(ci.job :a [:quire/push]\n  (fn [] (print \"(\")\n    {})\n(ci.job :b [:a] (fn [] {}))\n";
        assert_eq!(unclosed_opener(text), Some((3, 0, '(')));
        assert_eq!(unclosed_opener("(a [b] {c})\n"), None);
        assert_eq!(unclosed_opener("(a\n  [b \"x\\\"]\" c\n"), Some((1, 0, '(')));
    }
}
