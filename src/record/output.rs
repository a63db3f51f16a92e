//! How command output bytes become `stdout`/`stderr` events: UTF-8 text
//! as is, anything else base64 with `"encoding":"base64"` (DESIGN.md §5).

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::events::{EventKind, Stream};

/// The `stdout`/`stderr` event for one chunk of output of `sh` call `n`.
/// Valid UTF-8 is kept as text; other bytes are base64 (standard alphabet,
/// padded). Feed chunks through a [`Utf8Carry`] first so a character split
/// between two reads does not turn both chunks into base64.
pub fn output_event(stream: Stream, n: u32, bytes: &[u8]) -> EventKind {
    let (data, encoding) = match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => (BASE64.encode(bytes), Some("base64".to_owned())),
    };
    match stream {
        Stream::Stdout => EventKind::Stdout { n, data, encoding },
        Stream::Stderr => EventKind::Stderr { n, data, encoding },
    }
}

/// The raw bytes of a `stdout`/`stderr`/`print` event (empty for any other
/// kind). Data marked base64 that does not decode is returned as its text,
/// so a damaged line still shows something rather than nothing.
pub fn decode_data(kind: &EventKind) -> Vec<u8> {
    data_bytes(kind).into_owned()
}

/// [`decode_data`], borrowed from the event when its data is text (no copy
/// of a large chunk just to read it).
pub fn data_bytes(kind: &EventKind) -> Cow<'_, [u8]> {
    match kind {
        EventKind::Stdout { data, encoding, .. } | EventKind::Stderr { data, encoding, .. } => {
            match encoding.as_deref() {
                Some("base64") => BASE64.decode(data.as_bytes()).map_or(Cow::Borrowed(data.as_bytes()), Cow::Owned),
                _ => Cow::Borrowed(data.as_bytes()),
            }
        }
        EventKind::Print { data } => Cow::Borrowed(data.as_bytes()),
        _ => Cow::Borrowed(&[]),
    }
}

/// Holds back an incomplete UTF-8 sequence at the end of a chunk (at most 3
/// bytes) until the next chunk completes it. Use one per (job, n, stream).
#[derive(Debug, Default, Clone)]
pub struct Utf8Carry {
    held: Vec<u8>,
}

impl Utf8Carry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes that can be encoded now: the held bytes plus `chunk`, minus
    /// a trailing sequence that a lead byte started but the chunk cut off.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.push_cow(chunk).into_owned()
    }

    /// [`push`](Self::push), borrowing from `chunk` when nothing was held
    /// (the usual case: only the cut-off tail, at most 3 bytes, is copied).
    pub fn push_cow<'a>(&mut self, chunk: &'a [u8]) -> Cow<'a, [u8]> {
        if self.held.is_empty() {
            let keep = incomplete_tail(chunk);
            let (ready, tail) = chunk.split_at(chunk.len() - keep);
            self.held.extend_from_slice(tail);
            return Cow::Borrowed(ready);
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        let keep = incomplete_tail(&buf);
        self.held = buf.split_off(buf.len() - keep);
        Cow::Owned(buf)
    }

    /// What is left at the end of the stream (a truly truncated character,
    /// which will be base64'd as it is not UTF-8).
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// Length of the trailing bytes that begin a multi-byte sequence but end
/// before it does. Invalid bytes are not held: holding cannot help them.
fn incomplete_tail(buf: &[u8]) -> usize {
    let start = buf.len().saturating_sub(3);
    for i in (start..buf.len()).rev() {
        let b = buf[i];
        if (0x80..0xC0).contains(&b) {
            continue; // continuation byte: look further back for its lead
        }
        let width = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        let have = buf.len() - i;
        return if have < width { have } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_other_bytes_become_base64() {
        assert_eq!(
            output_event(Stream::Stdout, 1, "héllo\n".as_bytes()),
            EventKind::Stdout { n: 1, data: "héllo\n".into(), encoding: None }
        );
        let ev = output_event(Stream::Stderr, 2, &[0xff, 0x00, b'a']);
        assert_eq!(ev, EventKind::Stderr { n: 2, data: "/wBh".into(), encoding: Some("base64".into()) });
        assert_eq!(decode_data(&ev), vec![0xff, 0x00, b'a']);
    }

    #[test]
    fn every_split_of_multibyte_text_stays_utf8() {
        let text = "a€b😀c\u{e9}";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut carry = Utf8Carry::new();
            let mut out = Vec::new();
            for part in [&bytes[..cut], &bytes[cut..]] {
                let ready = carry.push(part);
                assert!(std::str::from_utf8(&ready).is_ok(), "cut {cut}: {ready:?}");
                out.extend(ready);
            }
            let rest = carry.finish();
            assert!(rest.is_empty(), "cut {cut} left {rest:?}");
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn a_truly_truncated_character_comes_out_at_finish() {
        let mut carry = Utf8Carry::new();
        assert_eq!(carry.push(&[b'x', 0xE2, 0x82]), vec![b'x']);
        assert_eq!(carry.finish(), vec![0xE2, 0x82]);
        // Invalid bytes are never held.
        assert_eq!(carry.push(&[0xff]), vec![0xff]);
    }
}
