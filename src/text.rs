//! Text as a user reads it in a summary or a message: no terminal escape
//! sequences, no control characters. Must not know about where the text
//! comes from (build output, a job's `:summary`).

/// `text` without terminal escape sequences (CSI, OSC, two-byte ESC) and
/// control characters other than tab.
pub fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// [`plain_text`] line by line: the line breaks stay (`\r\n` too becomes `\n`).
pub fn plain_text_lines(text: &str) -> String {
    text.lines().map(plain_text).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::plain_text;

    #[test]
    fn colour_cursor_and_title_sequences_go_text_stays() {
        assert_eq!(plain_text("\u{1b}[91m\u{1b}[31mE: Unable\u{1b}[0m"), "E: Unable");
        assert_eq!(plain_text("a\u{1b}]0;title\u{7}b\u{1b}]8;;http://x\u{1b}\\c"), "abc");
        assert_eq!(plain_text("tab\there\r\u{8}"), "tab\there");
        assert_eq!(plain_text("plain ünïcode"), "plain ünïcode");
    }
}
