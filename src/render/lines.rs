//! Line assembly: output arrives in chunks that split lines anywhere; the
//! renderer shows whole lines. Holds each stream's unfinished line until
//! its newline (or until the command exits), cuts lines that never end,
//! and reduces `\r` redraws to what a terminal would leave visible.
//!
//! Owns: partial lines per (job, command, stream). Must not know about:
//! prefixes, colours, the status line.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::events::Stream;

/// The longest piece of a newline-free output line shown at once.
const MAX_LINE: usize = 64 * 1024;

/// Which command's stream a chunk belongs to.
pub type StreamKey = (String, u32, Stream);

/// Unfinished lines, waiting for their newline.
#[derive(Default)]
pub struct LineAssembler {
    partial: HashMap<StreamKey, Vec<u8>>,
}

/// What one chunk completed (tests read chunks whole).
#[cfg(test)]
pub struct Assembled {
    /// Whole lines, as a terminal would show them.
    pub lines: Vec<String>,
    /// The visible text of the line still unfinished ("" when none).
    pub pending: String,
}

impl LineAssembler {
    /// Adds `bytes` to the stream's unfinished line; with `flush`, the
    /// rest counts as a line too (the command exited).
    #[cfg(test)]
    pub fn push(&mut self, key: StreamKey, bytes: &[u8], flush: bool) -> Assembled {
        let mut lines = Vec::new();
        let pending = self.push_each(key, bytes, flush, |raw| lines.push(visible(raw).into_owned()));
        Assembled { lines, pending }
    }

    /// [`push`](Self::push) without collecting: hands each whole line (its
    /// raw bytes; [`visible`] reduces them) to `line` as it is found, and
    /// returns the visible text of the unfinished rest. A chunk that
    /// completes no held line is not copied: only its unfinished tail is
    /// kept. This is the streaming path: no allocation per line.
    pub fn push_each(&mut self, key: StreamKey, bytes: &[u8], flush: bool, mut line: impl FnMut(&[u8])) -> String {
        // Only the new bytes can hold a newline: rescanning the held part on
        // every chunk made a long newline-free output quadratic.
        let (buf, scan_from): (Cow<[u8]>, usize) = match self.partial.remove(&key) {
            Some(mut held) => {
                let from = held.len();
                held.extend_from_slice(bytes);
                (Cow::Owned(held), from)
            }
            None => (Cow::Borrowed(bytes), 0),
        };
        let mut start = 0;
        for pos in memchr::memchr_iter(b'\n', &buf[scan_from..]) {
            let end = scan_from + pos;
            line(&buf[start..end]);
            start = end + 1;
        }
        // `\r` redraws (a progress bar) that pile up without a newline: only
        // the text after the last one is visible, so the rest is dropped
        // before any cut (cutting first showed fragments of old redraws).
        if buf.len() - start >= MAX_LINE {
            let seg = &buf[start..];
            let body = seg.strip_suffix(b"\r").unwrap_or(seg);
            if let Some(p) = memchr::memrchr(b'\r', body) {
                start += p + 1;
            }
        }
        // A line that never ends is shown in MAX_LINE pieces, so memory stays
        // bounded whatever a command prints (the log keeps every byte).
        while buf.len() - start >= MAX_LINE {
            line(&buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        let rest = &buf[start..];
        if rest.is_empty() {
            return String::new();
        }
        if flush {
            line(rest);
            return String::new();
        }
        let pending = visible(rest).into_owned();
        self.partial.insert(key, rest.to_vec());
        pending
    }

    /// True when the stream has an unfinished line.
    pub fn holds(&self, key: &StreamKey) -> bool {
        self.partial.contains_key(key)
    }
}

/// What a terminal would leave visible of a line written with `\r`
/// redraws (progress bars): the text after the last carriage return.
pub fn visible_text(raw: &[u8]) -> String {
    visible(raw).into_owned()
}

/// [`visible_text`], borrowed when the line is valid UTF-8 (it nearly
/// always is).
pub fn visible(raw: &[u8]) -> Cow<'_, str> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let last = match memchr::memrchr(b'\r', raw) {
        Some(p) => &raw[p + 1..],
        None => raw,
    };
    // Checked with the fast validator first: the lossy one walks every
    // byte, and output is nearly always valid.
    match std::str::from_utf8(last) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(last),
    }
}

/// Cuts `text` into pieces of at most `room` characters.
pub fn wrap(text: &str, room: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= room {
        return vec![text.to_string()];
    }
    chars.chunks(room.max(1)).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        ("a".into(), 1, Stream::Stdout)
    }

    #[test]
    fn carriage_return_redraws_keep_the_last_segment() {
        assert_eq!(visible_text(b"10%\r50%\r100%"), "100%");
        assert_eq!(visible_text(b"done\r"), "done");
    }

    #[test]
    fn wrap_cuts_long_lines_only() {
        assert_eq!(wrap("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(wrap("abc", 4), vec!["abc"]);
    }

    #[test]
    fn a_line_split_across_chunks_is_shown_once_whole() {
        let mut a = LineAssembler::default();
        let first = a.push(key(), b"hel", false);
        assert!(first.lines.is_empty());
        assert_eq!(first.pending, "hel");
        let second = a.push(key(), b"lo\nwor", false);
        assert_eq!(second.lines, vec!["hello"]);
        assert!(a.holds(&key()));
        let last = a.push(key(), b"", true);
        assert_eq!(last.lines, vec!["wor"]);
        assert!(!a.holds(&key()));
    }

    #[test]
    fn a_flood_of_carriage_return_redraws_shows_only_the_last() {
        let mut a = LineAssembler::default();
        let mut flood = Vec::new();
        for i in 0..20_000 {
            flood.extend_from_slice(format!("progress {i}%\r").as_bytes());
        }
        let first = a.push(key(), &flood, false);
        let last = a.push(key(), b"done\n", false);
        let shown: Vec<String> = first.lines.into_iter().chain(last.lines).collect();
        assert_eq!(shown, vec!["done".to_string()]);
    }

    #[test]
    fn a_line_that_never_ends_is_cut() {
        let mut a = LineAssembler::default();
        let out = a.push(key(), &vec![b'x'; MAX_LINE + 3], false);
        assert_eq!(out.lines.len(), 1);
        assert_eq!(out.lines[0].len(), MAX_LINE);
        assert_eq!(out.pending, "xxx");
    }
}
