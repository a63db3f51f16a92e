//! The snapshot's upload as it goes: a reader around the tar that counts
//! the bytes and the files the engine has taken, and a reporter that says
//! so as transient `phase` progress events (`upload`), at most ten a
//! second while it lasts and once more with the whole of it when it is
//! done, so a large tree going in is not a silent wait.
//!
//! Owns: counting a tar stream (bytes, and entries by their headers) and
//! the progress events' pace. Must not know about: the engine, the
//! terminal.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::emitter::Emitter;
use crate::events::{EventKind, PhaseState};

/// The most often progress is said: ten times a second.
const EVERY: Duration = Duration::from_millis(100);

/// How far the upload is, shared between the reader (on the uploader's
/// blocking thread) and the reporter (on the run's thread).
#[derive(Default)]
pub(super) struct Counts {
    bytes: AtomicU64,
    files: AtomicU64,
}

impl Counts {
    /// `inner` (a tar stream), counted into these counts as it is read;
    /// several streams may count into one.
    pub fn reader<R: Read>(self: &Arc<Self>, inner: R) -> Counted<R> {
        Counted { inner, counts: self.clone(), tar: TarWalk::default() }
    }

    /// (bytes, files) taken so far.
    pub fn get(&self) -> (u64, u64) {
        (self.bytes.load(Ordering::Relaxed), self.files.load(Ordering::Relaxed))
    }

    /// Runs `upload` (which reads the counted tar), saying its progress
    /// every [`EVERY`] while it changes, and the whole of it at the end.
    pub async fn during<T>(&self, upload: impl Future<Output = T>, events: &Rc<RefCell<Emitter>>) -> T {
        tokio::pin!(upload);
        let mut said = (0, 0);
        loop {
            tokio::select! {
                out = &mut upload => {
                    let now = self.get();
                    if now.0 > 0 {
                        say(events, now);
                    }
                    return out;
                }
                () = tokio::time::sleep(EVERY) => {
                    let now = self.get();
                    if now != said {
                        said = now;
                        say(events, now);
                    }
                }
            }
        }
    }
}

fn say(events: &Rc<RefCell<Emitter>>, (bytes, files): (u64, u64)) {
    let kind = EventKind::Phase {
        phase: "upload".into(),
        state: PhaseState::Progress,
        done: Some(bytes),
        total: None,
        files: Some(files),
        duration_ms: None,
    };
    events.borrow_mut().emit(None, kind);
}

pub(super) struct Counted<R> {
    inner: R,
    counts: Arc<Counts>,
    tar: TarWalk,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let files = self.tar.feed(&buf[..n]);
        self.counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if files > 0 {
            self.counts.files.fetch_add(files, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Where a tar stream is: in a 512-byte header, or in an entry's data
/// (padded to 512). Counts the entries that are files (regular files and
/// links; not directories, nor the long-name and pax headers that precede
/// an entry).
struct TarWalk {
    header: [u8; 512],
    /// Bytes of the current header seen so far.
    filled: usize,
    /// Bytes of the current entry's data (with padding) still to come.
    skip: u64,
}

impl Default for TarWalk {
    fn default() -> TarWalk {
        TarWalk { header: [0; 512], filled: 0, skip: 0 }
    }
}

impl TarWalk {
    /// Takes the next bytes of the stream; returns how many file entries
    /// they completed the header of.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut files = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(bytes.len() as u64)) as usize;
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (512 - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled < 512 {
                break;
            }
            self.filled = 0;
            if self.header.iter().all(|b| *b == 0) {
                // The end-of-archive blocks.
                continue;
            }
            let size = entry_size(&self.header[124..136]);
            self.skip = size.div_ceil(512) * 512;
            // `0` (or NUL, old tars) a file, `1` a hard link, `2` a symlink,
            // `7` contiguous; `5` a directory; `L`/`K`/`x`/`g` carry the next
            // entry's long name or attributes.
            if matches!(self.header[156], b'0' | 0 | b'1' | b'2' | b'7') {
                files += 1;
            }
        }
        files
    }
}

/// The size field: octal digits (NUL or space ended), or base-256 with the
/// high bit set (GNU, for sizes of 8 GiB and more).
fn entry_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        return field[1..].iter().fold(0u64, |n, b| n.wrapping_shl(8) | u64::from(*b));
    }
    field
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .fold(0u64, |n, b| n * 8 + u64::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar like the snapshot's: directories, files small and large, a
    /// symlink, a name long enough for a GNU long-name entry.
    fn tar() -> (Vec<u8>, u64) {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, data).expect("append");
        };
        add("src/", tar::EntryType::Directory, b"");
        add("src/a.txt", tar::EntryType::Regular, b"hello\n");
        add("src/empty", tar::EntryType::Regular, b"");
        add("big.bin", tar::EntryType::Regular, &vec![7u8; 5000]);
        add(&format!("{}/deep.txt", "d".repeat(150)), tar::EntryType::Regular, b"deep");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", "src/a.txt").expect("link");
        (b.into_inner().expect("finish"), 5)
    }

    #[test]
    fn counts_bytes_and_files_however_the_stream_is_cut() {
        let (bytes, want_files) = tar();
        for chunk in [1, 7, 511, 512, 513, 4096, bytes.len()] {
            let counts = Arc::new(Counts::default());
            let mut reader = counts.reader(&bytes[..]);
            let mut buf = vec![0; chunk];
            let mut read = 0;
            loop {
                let n = reader.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                read += n;
            }
            assert_eq!(read, bytes.len());
            assert_eq!(counts.get(), (bytes.len() as u64, want_files), "chunks of {chunk}");
        }
    }

    #[test]
    fn the_size_field_reads_octal_and_base_256() {
        assert_eq!(entry_size(b"00000011640\0"), 5024);
        assert_eq!(entry_size(b"      11640 "), 5024);
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[7] = 0x02; // 2 << 32
        assert_eq!(entry_size(&big), 2 << 32);
    }
}
