//! What of a job's text may reach the user's terminal. Job output (and
//! anything derived from it: a failure's reason, a build step) can hold
//! terminal control sequences: OSC 52 writes the clipboard, OSC 0 the
//! title, `ESC[2K` erases the job prefix, `ESC[8m` conceals what follows.
//! The log keeps every byte; what is drawn goes through here first.
//!
//! Owns: the rule. Colour and text attributes (SGR, `ESC[…m`) may pass when
//! the user has colour on, except conceal (8); every other escape sequence
//! (cursor movement, erase, OSC, DCS, mode changes, charset shifts) is
//! dropped whole; other control characters are shown in caret notation
//! (`^G`), C1 controls as U+FFFD. Must not know about: where the text
//! comes from or how it is laid out.

use std::borrow::Cow;

/// SGR parameters that are dropped even with colour on: 8 conceals the
/// text that follows (a FAILED line, the summary).
const CONCEAL: u32 = 8;

/// `text` made safe to draw. With `colour`, SGR sequences (minus conceal)
/// are kept; a line left with an attribute on ends with a reset, so a
/// job's colour never bleeds into quire-ci's own lines.
pub fn for_terminal(text: &str, colour: bool) -> String {
    for_terminal_cow(text, colour).into_owned()
}

/// [`for_terminal`], borrowed when there is nothing to change (nearly every
/// line of output): the streaming path allocates nothing for it.
pub fn for_terminal_cow(text: &str, colour: bool) -> Cow<'_, str> {
    if !maybe_special(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(rewrite(text, colour))
}

/// Whether `bytes` may hold a [`is_special`] character: an ASCII control
/// other than tab, DEL, or 0xC2 (the lead byte of every C1 control, and of
/// some harmless characters: those take the slow path for nothing). Folded
/// without an early exit so it runs over whole blocks at a time.
fn maybe_special(bytes: &[u8]) -> bool {
    let hit = |c: u8| (c < 0x20 && c != b'\t') | (c == 0x7f) | (c == 0xc2);
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        if block.iter().fold(false, |acc, &c| acc | hit(c)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&c| hit(c))
}

fn rewrite(text: &str, colour: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut kept_sgr = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\x1b' {
            let (len, sgr) = escape(&chars[i..]);
            if let (true, Some(params)) = (colour, sgr) {
                if let Some(seq) = safe_sgr(&params) {
                    // Open until a reset: only then does the line need one.
                    kept_sgr = !(seq == "\x1b[0m" || seq == "\x1b[m");
                    out.push_str(&seq);
                }
            }
            i += len;
            continue;
        }
        match c {
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\x7f' => out.push_str("^?"),
            c if ('\u{80}'..='\u{9f}').contains(&c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
        i += 1;
    }
    if kept_sgr {
        out.push_str("\x1b[0m");
    }
    out
}

/// The rule `maybe_special` is a fast superset of (kept for its test).
#[cfg(test)]
fn is_special(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\x7f' || ('\u{80}'..='\u{9f}').contains(&c)
}

/// The length of the escape sequence at the start of `s` (which begins with
/// ESC), and its parameters when it is an SGR (`ESC[…m`).
fn escape(s: &[char]) -> (usize, Option<String>) {
    match s.get(1) {
        None => (1, None),
        // CSI: parameters 0x30–0x3F, intermediates 0x20–0x2F, one final 0x40–0x7E.
        Some('[') => {
            let mut j = 2;
            while j < s.len() && ('\x30'..='\x3f').contains(&s[j]) {
                j += 1;
            }
            let params_end = j;
            while j < s.len() && ('\x20'..='\x2f').contains(&s[j]) {
                j += 1;
            }
            match s.get(j) {
                Some(&f) if ('\x40'..='\x7e').contains(&f) => {
                    let sgr = (f == 'm' && params_end == j).then(|| s[2..params_end].iter().collect());
                    (j + 1, sgr)
                }
                // Cut off: drop what there is.
                _ => (j.min(s.len()), None),
            }
        }
        // OSC, DCS, SOS, PM, APC: a string up to BEL (OSC) or ST (ESC \).
        Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
            let mut j = 2;
            while j < s.len() {
                if s[j] == '\x07' {
                    return (j + 1, None);
                }
                if s[j] == '\x1b' && s.get(j + 1) == Some(&'\\') {
                    return (j + 2, None);
                }
                j += 1;
            }
            (s.len(), None)
        }
        // Other escapes: intermediates, then one final character.
        Some(_) => {
            let mut j = 1;
            while j < s.len() && ('\x20'..='\x2f').contains(&s[j]) {
                j += 1;
            }
            ((j + 1).min(s.len()), None)
        }
    }
}

/// The SGR with conceal removed (colour operands of 38/48/58 kept as
/// they are); `None` when nothing is left or the parameters are not SGR's.
fn safe_sgr(params: &str) -> Option<String> {
    if params.is_empty() {
        return Some("\x1b[m".to_string());
    }
    if !params.chars().all(|c| c.is_ascii_digit() || c == ';' || c == ':') {
        return None;
    }
    let parts: Vec<&str> = params.split(';').collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        let n: u32 = p.split(':').next().and_then(|x| x.parse().ok()).unwrap_or(0);
        match n {
            // Extended colours: 38;5;N or 38;2;R;G;B (a `:` form carries its own operands).
            38 | 48 | 58 if !p.contains(':') => {
                let take = match parts.get(i + 1).copied() {
                    Some("5") => 3,
                    Some("2") => 5,
                    _ => 1,
                };
                let end = (i + take).min(parts.len());
                kept.extend_from_slice(&parts[i..end]);
                i = end;
                continue;
            }
            CONCEAL => {}
            _ => kept.push(p),
        }
        i += 1;
    }
    (!kept.is_empty()).then(|| format!("\x1b[{}m", kept.join(";")))
}

#[cfg(test)]
mod tests {
    use super::{for_terminal, is_special, maybe_special};

    #[test]
    fn the_fast_check_finds_every_special_character() {
        // Every character up to U+0800 (all one- and two-byte forms), alone
        // and at every position of a block boundary.
        for c in (0u32..0x800).filter_map(char::from_u32) {
            let alone = c.to_string();
            if is_special(c) {
                assert!(maybe_special(alone.as_bytes()), "{c:?} missed");
                for at in [0, 1, 63, 64, 100] {
                    let text = format!("{}{c}{}", "x".repeat(at), "y".repeat(70));
                    assert!(maybe_special(text.as_bytes()), "{c:?} at {at} missed");
                }
            } else if !maybe_special(alone.as_bytes()) {
                assert_eq!(for_terminal(&alone, true), alone);
            }
        }
        assert!(!maybe_special("plain text, tabs\tand ünïcödé €".repeat(9).as_bytes()));
    }

    #[test]
    fn osc_title_and_clipboard_writes_are_dropped_whole() {
        let hostile = "a\x1b]52;c;ZXZpbA==\x07b\x1b]0;pwned\x1b\\c";
        assert_eq!(for_terminal(hostile, true), "abc");
        assert_eq!(for_terminal(hostile, false), "abc");
    }

    #[test]
    fn cursor_movement_and_erase_never_pass() {
        for seq in ["\x1b[2K", "\x1b[1A", "\x1b[H", "\x1b[2J", "\x1b[?25l", "\x1bc", "\x1b7", "\x1b(0", "\x1b[6n"] {
            assert_eq!(for_terminal(&format!("x{seq}y"), true), "xy", "{seq:?}");
        }
    }

    #[test]
    fn colours_pass_only_with_colour_on_and_never_conceal() {
        assert_eq!(for_terminal("\x1b[31mred\x1b[0m", true), "\x1b[31mred\x1b[0m");
        assert_eq!(for_terminal("\x1b[31mred", true), "\x1b[31mred\x1b[0m");
        assert_eq!(for_terminal("\x1b[31mred\x1b[0m", false), "red");
        assert_eq!(for_terminal("\x1b[8mhidden", true), "hidden");
        assert_eq!(for_terminal("\x1b[1;8;38;5;8mx", true), "\x1b[1;38;5;8mx\x1b[0m");
        assert_eq!(for_terminal("\x1b[8mhidden", false), "hidden");
    }

    #[test]
    fn other_controls_are_shown_not_obeyed() {
        assert_eq!(for_terminal("a\x07b\x08c\x0ed\x7f\te", false), "a^Gb^Hc^Nd^?\te");
        assert_eq!(for_terminal("a\u{9b}2Kb", true), "a\u{fffd}2Kb");
        assert_eq!(for_terminal("plain text", true), "plain text");
        assert_eq!(for_terminal("cut\x1b[", true), "cut");
        assert_eq!(for_terminal("cut\x1b]0;unterminated", true), "cut");
    }

    #[test]
    fn safe_text_is_unchanged_by_a_second_pass() {
        let once = for_terminal("\x1b[32mok\x1b]0;t\x07\x1b[2K", true);
        assert_eq!(for_terminal(&once, true), once);
    }
}
