//! Secret masking (DESIGN.md §6): every byte that belongs to an occurrence
//! of a secret value is replaced, each maximal masked stretch by one `***`,
//! in output streams (also across chunk boundaries), strings and JSON.
//! Redaction happens where events are made, so no sink can leak.
//!
//! Owns: which bytes are secret and how they are masked. Must not know
//! about: where secrets come from, the terminal, Docker, Lua, files.
//!
//! Masking by coverage, not by greedy replacement, matters when secrets
//! overlap: with secrets `abc` and `bcd`, `abcd` becomes `***`, not
//! `***d` with a piece of the second secret left readable.

use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

// Every line quire-ci prints itself passes the process's redactor: these
// shadow std's printing macros in every module declared after this one in
// lib.rs (macro_rules' textual scope), so a message that quotes an engine
// error, a file or a path cannot carry a secret to the terminal, whoever
// wrote the line. Rendered events are masked where they are made; this is
// for the rest (warnings, the final `quire-ci: …` line of an error).
macro_rules! eprintln {
    () => { ::std::eprintln!() };
    ($($arg:tt)*) => { ::std::eprintln!("{}", $crate::redact::for_output(&::std::format!($($arg)*))) };
}
macro_rules! eprint {
    ($($arg:tt)*) => { ::std::eprint!("{}", $crate::redact::for_output(&::std::format!($($arg)*))) };
}
macro_rules! println {
    () => { ::std::println!() };
    ($($arg:tt)*) => { ::std::println!("{}", $crate::redact::for_output(&::std::format!($($arg)*))) };
}
macro_rules! print {
    ($($arg:tt)*) => { ::std::print!("{}", $crate::redact::for_output(&::std::format!($($arg)*))) };
}

/// Every secret value this process has resolved (all runs of a `watch`,
/// all refs of a push), for what is printed outside the event stream.
static PROCESS_SECRETS: RwLock<Option<(Vec<String>, Redactor)>> = RwLock::new(None);

/// Adds values to the process's redactor (kept for the process's life: a
/// value rotated between two runs of `watch` stays masked).
pub fn add_process_secrets<'a>(values: impl IntoIterator<Item = &'a String>) {
    let Ok(mut slot) = PROCESS_SECRETS.write() else { return };
    let mut all = slot.take().map(|(v, _)| v).unwrap_or_default();
    for v in values {
        if !v.is_empty() && !all.contains(v) {
            all.push(v.clone());
        }
    }
    let redactor = Redactor::new(all.clone());
    *slot = Some((all, redactor));
}

/// The process's redactor: every secret resolved so far.
pub fn process() -> Redactor {
    PROCESS_SECRETS.read().ok().and_then(|s| s.as_ref().map(|(_, r)| r.clone())).unwrap_or_default()
}

/// `text` as it may be printed: every secret the process knows masked.
pub fn for_output(text: &str) -> std::borrow::Cow<'_, str> {
    let r = process();
    if r.is_empty() {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(r.redact_str(text))
    }
}

/// What a masked stretch becomes.
pub const MASK: &str = "***";

/// The set of secret values to mask. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Redactor {
    // Longest first, so the longest match at a position is found first.
    secrets: Arc<Vec<Vec<u8>>>,
    // First bytes of the secrets: most output bytes start none, and can
    // skip the per-secret comparison.
    starts: Arc<[bool; 256]>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(Vec::new())
    }
}

impl Redactor {
    /// Empty values are ignored (masking "" would mean masking nothing or
    /// everything); duplicates are dropped.
    pub fn new(secrets: Vec<String>) -> Self {
        // Each value also in the escaped forms a message may show it in
        // (`{:?}` and JSON string escapes: `"` `\` tab, newline), so a
        // secret quoted in an error is masked as surely as a raw one.
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| {
                let debug = format!("{s:?}");
                let json = serde_json::to_string(&s).unwrap_or_default();
                let mut forms = vec![s.clone().into_bytes()];
                // Each line of a multi-line value as well: a message cut to
                // its first line (a job's `why`) may hold only part of it.
                if s.contains('\n') {
                    forms.extend(s.lines().filter(|l| l.trim().len() >= 3).map(|l| l.as_bytes().to_vec()));
                }
                for quoted in [debug, json] {
                    if let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                        if inner != s {
                            forms.push(inner.as_bytes().to_vec());
                        }
                    }
                }
                forms
            })
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let mut starts = [false; 256];
        for s in &secrets {
            starts[usize::from(s[0])] = true;
        }
        Redactor { secrets: Arc::new(secrets), starts: Arc::new(starts) }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Length of the longest secret; a stream holds back fewer bytes than this.
    pub fn max_len(&self) -> usize {
        self.secrets.first().map_or(0, Vec::len)
    }

    /// A streaming masker for one output stream (one per job, `sh` call and
    /// stdout/stderr). Chunks in, safe bytes out.
    pub fn stream(&self) -> RedactStream {
        RedactStream {
            secrets: Arc::clone(&self.secrets),
            starts: Arc::clone(&self.starts),
            buf: Vec::new(),
            covered_left: 0,
            last_masked: false,
        }
    }

    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return bytes.to_vec();
        }
        let mut s = self.stream();
        let mut out = s.push(bytes);
        out.extend(s.finish());
        out
    }

    pub fn redact_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_owned();
        }
        // Secrets are whole UTF-8 strings, so in UTF-8 text every
        // occurrence starts and ends on a character boundary and the
        // masked result is UTF-8 too; lossy conversion is only a guard.
        match String::from_utf8(self.redact_bytes(text.as_bytes())) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Mask every string inside `value`, object keys included (a run-fn's
    /// outputs table can use a secret as a key as easily as a value).
    pub fn redact_json(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => *s = self.redact_str(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                let mut new = Map::with_capacity(old.len());
                for (k, mut v) in old {
                    self.redact_json(&mut v);
                    new.insert(self.redact_str(&k), v);
                }
                *map = new;
            }
            // A number made from a secret (`(tonumber (secret :PIN))`) is
            // as secret as the string: its digits, or its value, give it away.
            Value::Number(n) => {
                let text = n.to_string();
                let masked = self.redact_str(&text);
                let equal = n.as_f64().is_some_and(|v| {
                    self.secrets
                        .iter()
                        .any(|s| std::str::from_utf8(s).ok().and_then(|s| s.trim().parse::<f64>().ok()) == Some(v))
                });
                if masked != text || equal {
                    *value = Value::String(if equal { MASK.to_string() } else { masked });
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
}

/// Masks one stream of chunks. The output of all `push` calls followed by
/// `finish` equals `redact_bytes` of the whole stream, however it was cut.
#[derive(Debug)]
pub struct RedactStream {
    secrets: Arc<Vec<Vec<u8>>>,
    /// Bytes not yet emitted. `buf[0]` is the next byte to decide.
    buf: Vec<u8>,
    /// How many bytes from `buf[0]` on are covered by a secret occurrence
    /// that started at or before `buf[0]` (already seen in full).
    covered_left: usize,
    /// Which bytes begin some secret (shared with the Redactor).
    starts: Arc<[bool; 256]>,
    /// Whether the last byte emitted was masked, so that a masked stretch
    /// continuing across a chunk boundary yields one `***`, not two.
    last_masked: bool,
}

impl RedactStream {
    /// Take a chunk; return what is now safe to show. Holds back only a
    /// tail that is a proper prefix of some secret (fewer than the longest
    /// secret's length in bytes).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.push_cow(chunk).into_owned()
    }

    /// [`push`](Self::push), borrowing `chunk` when there is nothing to
    /// mask (no secrets): the streaming path copies nothing then.
    pub fn push_cow<'a>(&mut self, chunk: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if self.secrets.is_empty() {
            return std::borrow::Cow::Borrowed(chunk);
        }
        self.buf.extend_from_slice(chunk);
        std::borrow::Cow::Owned(self.drain(false))
    }

    /// End of stream: decide the held-back tail.
    pub fn finish(&mut self) -> Vec<u8> {
        self.drain(true)
    }

    fn drain(&mut self, eof: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len());
        let mut i = 0;
        while i < self.buf.len() {
            if self.covered_left == 0 {
                // Fast path: bytes that cannot start a secret and are not
                // inside one go out as they are, in bulk.
                let run = self.buf[i..].iter().position(|b| self.starts[usize::from(*b)]).unwrap_or(self.buf.len() - i);
                if run > 0 {
                    out.extend_from_slice(&self.buf[i..i + run]);
                    self.last_masked = false;
                    i += run;
                    continue;
                }
            }
            // Decide the occurrence starting at i before deciding byte i:
            // any occurrence covering byte i starts at or before it.
            let rest = &self.buf[i..];
            let mut longest = 0;
            let mut undecided = false;
            for s in self.secrets.iter() {
                if rest.len() >= s.len() {
                    if longest == 0 && rest.starts_with(s) {
                        longest = s.len(); // longest first: first hit is longest
                    }
                } else if !eof && s.starts_with(rest) {
                    undecided = true;
                }
            }
            if undecided {
                break; // rest might still become a secret: hold it back
            }
            self.covered_left = self.covered_left.max(longest);
            if self.covered_left > 0 {
                if !self.last_masked {
                    out.extend_from_slice(MASK.as_bytes());
                }
                self.last_masked = true;
                self.covered_left -= 1;
            } else {
                out.push(self.buf[i]);
                self.last_masked = false;
            }
            i += 1;
        }
        self.buf.drain(..i);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(secrets: &[&str]) -> Redactor {
        Redactor::new(secrets.iter().map(|s| s.to_string()).collect())
    }

    /// An independent statement of the rule: mark every byte inside any
    /// occurrence, then collapse each marked stretch to one `***`.
    fn reference(secrets: &[&str], text: &[u8]) -> Vec<u8> {
        let mut covered = vec![false; text.len()];
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            let s = s.as_bytes();
            for start in 0..text.len() {
                if text[start..].starts_with(s) {
                    covered[start..start + s.len()].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        let mut out = Vec::new();
        for (i, b) in text.iter().enumerate() {
            if !covered[i] {
                out.push(*b);
            } else if i == 0 || !covered[i - 1] {
                out.extend_from_slice(MASK.as_bytes());
            }
        }
        out
    }

    /// xorshift64*: deterministic, so a failure reproduces from its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn masks_plain_repeated_and_overlapping_values() {
        let red = r(&["hunter2", "abc", "bcd", ""]);
        assert_eq!(red.redact_str("pw=hunter2 again hunter2"), "pw=*** again ***");
        assert_eq!(red.redact_str("xabcdx"), "x***x");
        assert_eq!(red.redact_str("nothing here"), "nothing here");
        // Nested candidates: the longer one wins, nothing of it shows.
        let red = r(&["tok", "token-123"]);
        assert_eq!(red.redact_str("a token-123 b tok"), "a *** b ***");
    }

    #[test]
    fn empty_secrets_change_nothing() {
        let red = r(&["", ""]);
        assert!(red.is_empty());
        assert_eq!(red.redact_str("abc"), "abc");
        let mut s = red.stream();
        assert_eq!(s.push(b"abc"), b"abc");
        assert_eq!(s.finish(), b"");
    }

    #[test]
    fn a_value_split_across_chunks_is_masked() {
        let red = r(&["s3cr3t-value"]);
        let mut s = red.stream();
        let mut out = s.push(b"key: s3cr");
        assert_eq!(out, b"key: ", "the possible start of the secret is held back");
        out.extend(s.push(b"3t-"));
        out.extend(s.push(b"value and more"));
        out.extend(s.finish());
        assert_eq!(out, b"key: *** and more");
    }

    #[test]
    fn hold_back_is_shorter_than_the_longest_secret() {
        let red = r(&["abcdef", "xy"]);
        let mut s = red.stream();
        let out = s.push(b"0123abcde");
        assert_eq!(out, b"0123");
        assert!(s.buf.len() < red.max_len());
        // A prefix that then diverges is released at once.
        assert_eq!(s.push(b"Z"), b"abcdeZ");
    }

    #[test]
    fn random_chunkings_never_leak_and_match_the_whole_text() {
        let secret_sets: &[&[&str]] = &[
            &["hunter2"],
            &["abc", "bcd", "cde"],
            &["aa", "aaa"],
            &["token-ÄÖ-€", "€uro", "x"],
            &["ab", "ba", "abba-long-secret"],
        ];
        let alphabet: &[&str] = &["a", "b", "c", "d", "e", "x", " ", "\n", "€", "Ä", "-"];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..400 {
            let secrets = secret_sets[round % secret_sets.len()];
            let red = r(secrets);
            let mut text = Vec::new();
            for _ in 0..rng.below(120) {
                if rng.below(4) == 0 {
                    text.extend_from_slice(secrets[rng.below(secrets.len())].as_bytes());
                } else {
                    text.extend_from_slice(alphabet[rng.below(alphabet.len())].as_bytes());
                }
            }
            let expected = reference(secrets, &text);
            assert_eq!(red.redact_bytes(&text), expected, "round {round}");
            for s in secrets {
                assert!(!contains(&expected, s.as_bytes()), "round {round}: {s} leaked");
            }

            let mut stream = red.stream();
            let mut out = Vec::new();
            let mut at = 0;
            while at < text.len() {
                let len = 1 + rng.below(9);
                let end = (at + len).min(text.len());
                out.extend(stream.push(&text[at..end]));
                assert!(stream.buf.len() < red.max_len(), "round {round}: held too much");
                at = end;
            }
            out.extend(stream.finish());
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "round {round}: chunked differs from whole"
            );
        }
    }

    #[test]
    fn json_strings_and_keys_are_masked() {
        let red = r(&["pw123"]);
        let mut v = serde_json::json!({
            "cmd": ["curl", "-u", "me:pw123", 3],
            "pw123": {"nested": "x pw123 y", "n": 1, "b": true}
        });
        red.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "cmd": ["curl", "-u", "me:***", 3],
                "***": {"nested": "x *** y", "n": 1, "b": true}
            })
        );
    }

    #[test]
    fn escaped_forms_of_a_secret_are_masked_too() {
        let red = r(&["a\"b\\c\td\ne"]);
        let debug = format!("{:?}", "x a\"b\\c\td\ne y");
        assert_eq!(red.redact_str(&debug), "\"x *** y\"");
        let json = serde_json::to_string("a\"b\\c\td\ne").unwrap();
        assert_eq!(red.redact_str(&json), "\"***\"");
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked() {
        let red = r(&["first-line\nsecond-line"]);
        assert_eq!(red.redact_str("why: x first-line"), "why: x ***");
    }

    #[test]
    fn numbers_made_from_a_secret_are_masked() {
        let red = r(&["4711", "0042"]);
        let mut v = serde_json::json!({"pin": 4711, "padded": 42, "long": 947110, "other": 5, "f": 4711.0});
        red.redact_json(&mut v);
        assert_eq!(v, serde_json::json!({"pin": "***", "padded": "***", "long": "9***0", "other": 5, "f": "***"}));
    }
}
