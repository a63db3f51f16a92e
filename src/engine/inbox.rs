//! The snapshot's quick way into a new run container: the container's own
//! stdin. A container made to receive runs `tar -x` on its stdin into
//! /work before its keep-alive; quire-ci attaches before the start and
//! streams the snapshot in while the container starts.
//!
//! Why: the engine's archive endpoint (`PUT /containers/{id}/archive`)
//! holds the container's lock while it unpacks, so an upload cannot
//! overlap the start, and on Docker 20.10 it costs ~60 ms even for one file
//! (dockerd re-executes itself to unpack under a chroot). Through stdin the
//! snapshot is in a few ms after the start (docs/engine.md, "Upload").
//!
//! The container says how it went on stdout: `quire-ci:received`, or
//! `quire-ci:refused N` (tar's status; 127 when the image has no `tar`). A
//! refusal is not an error: the caller uploads through the archive
//! endpoint instead (src/executor/container.rs). Only images that run as
//! root receive this way (the archive endpoint writes as root whatever the
//! image's USER, and a non-root tar could not). Watch's ready container is
//! attached before its start too, and its `tar` waits on that stdin for
//! the next change's snapshot (src/executor/warm.rs).
//!
//! The default; `QUIRE_CI_UPLOAD=archive` sends every snapshot through the
//! archive endpoint instead (docs/engine.md, "Upload").
//!
//! Owns: the receiving command and the attach. Must not know about: the
//! snapshot's contents, events.

use std::io::Read;
use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::AttachContainerOptionsBuilder;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{streaming_body, Engine, EngineError, RunContainer};

/// Unpack stdin into /work and say how it went (tar's messages first).
macro_rules! unpack {
    () => {
        "if tar -xf - -C /work 2>&1; then echo quire-ci:received; else echo \"quire-ci:refused $?\"; fi"
    };
}

/// The first command of a receiving container (`$0` is `quire-ci`, for
/// the shell's messages; `$1` the keep-alive):
/// unpack stdin into /work, say how it went, then keep alive. tar's
/// messages go to stdout too, so that they come before the answer. The trap
/// comes first so that a stop before the keep-alive is not ignored by
/// PID 1.
pub(super) const RECEIVE: &str = concat!("trap 'exit 0' TERM INT; ", unpack!(), "; exec sh -c \"$1\"");

/// The command of a further unpacker, an exec in the started container
/// taking one part of a large snapshot beside the container's own
/// (src/executor/container.rs): the same unpacking, the same answer.
const UNPACK: &str = unpack!();

/// How long the container may take to say it unpacked the snapshot once
/// the last byte is written (the unpacking keeps pace with the writes: a
/// pipe holds 64 KiB). Past it the archive endpoint is used instead.
const VERDICT_WAIT: Duration = Duration::from_secs(30);

/// The most of tar's messages kept, for the refusal's reason.
const SAID_KEPT: usize = 2048;

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A receiving container's stdin and stdout, attached before its start.
pub struct Inbox {
    output: Output,
    input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// What became of the snapshot sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Received,
    /// The container could not take it (no `tar`, an unpacker that refused
    /// the archive, a stream that broke): send it another way. Says why.
    Refused(String),
}

impl Engine {
    /// Whether `image` runs its commands as root (no USER, or USER root/0):
    /// a container of it can receive the snapshot on stdin.
    pub async fn runs_as_root(&self, image: &str) -> bool {
        match self.docker.inspect_image(image).await {
            Ok(i) => is_root(i.config.and_then(|c| c.user).as_deref().unwrap_or("")),
            Err(_) => false,
        }
    }

    /// Attaches to a created (not yet started) receiving container.
    pub async fn open_inbox(&self, container: &RunContainer) -> Result<Inbox, EngineError> {
        let options =
            AttachContainerOptionsBuilder::default().stdin(true).stdout(true).stderr(true).stream(true).build();
        let attached = self
            .docker
            .attach_container(&container.id, Some(options))
            .await
            .map_err(|e| EngineError::api(format!("attaching to container {}", container.name), e))?;
        Ok(Inbox { output: attached.output, input: attached.input })
    }

    /// Starts a further unpacker in the started receiving `container` (an
    /// exec of [`UNPACK`]) and attaches to it: an inbox for one more part
    /// of the snapshot, unpacked side by side with the others. Says why when
    /// it could not (the caller sends the snapshot another way).
    pub async fn open_unpacker(&self, container: &RunContainer) -> Result<Inbox, String> {
        let options = CreateExecOptions::<&str> {
            cmd: Some(vec!["sh", "-c", UNPACK, "quire-ci"]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..Default::default()
        };
        let exec =
            self.docker.create_exec(&container.id, options).await.map_err(|e| format!("creating an unpacker: {e}"))?;
        let start = StartExecOptions { detach: false, tty: false, output_capacity: None };
        match self.docker.start_exec(&exec.id, Some(start)).await {
            Ok(StartExecResults::Attached { output, input }) => Ok(Inbox { output, input }),
            Ok(StartExecResults::Detached) => Err("the engine started the unpacker detached".to_string()),
            Err(e) => Err(format!("starting an unpacker: {e}")),
        }
    }
}

/// USER as the image config has it: empty, a name or an id, with an
/// optional `:group`.
fn is_root(user: &str) -> bool {
    matches!(user.split(':').next().unwrap_or(""), "" | "root" | "0")
}

impl Inbox {
    /// Streams `tar` (read on a blocking thread) into the container's stdin,
    /// closes it, and waits for the container's answer. An error is only a
    /// failure to read the snapshot itself; anything the container or the
    /// connection did is a [`Delivery::Refused`].
    pub async fn deliver(self, tar: impl Read + Send + 'static) -> Result<Delivery, EngineError> {
        let Inbox { mut output, mut input } = self;
        let (body, reader) = streaming_body(tar);
        let write = async move {
            let mut body = std::pin::pin!(body);
            while let Some(chunk) = body.next().await {
                input.write_all(&chunk?).await?;
            }
            input.shutdown().await
        };
        let mut write = std::pin::pin!(write);
        let mut verdict = std::pin::pin!(verdict(&mut output));
        // The answer can come before the last byte is written (a refusal at
        // the first block): stop writing then.
        let delivery = tokio::select! {
            written = &mut write => match written {
                Ok(()) => match tokio::time::timeout(VERDICT_WAIT, &mut verdict).await {
                    Ok(v) => v,
                    Err(_) => Delivery::Refused(format!("the container did not answer within {}s", VERDICT_WAIT.as_secs())),
                },
                Err(e) => Delivery::Refused(format!("writing to the container's stdin: {e}")),
            },
            v = &mut verdict => v,
        };
        if let Some(source) = reader.finish().await {
            return Err(EngineError::ArchiveRead { target: "the run container's stdin".to_string(), source });
        }
        Ok(delivery)
    }
}

/// Reads the container's output until its answer line.
async fn verdict(output: &mut Output) -> Delivery {
    let mut said = Said::default();
    while let Some(frame) = output.next().await {
        match frame {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::StdErr { message }) => {
                if let Some(d) = said.take(&message) {
                    return d;
                }
            }
            Ok(_) => {}
            Err(e) => return Delivery::Refused(format!("reading the container's answer: {e}")),
        }
    }
    Delivery::Refused("the container's output ended before it answered".to_string())
}

/// The container's output so far: whole lines, the last few of tar's kept.
#[derive(Default)]
struct Said {
    partial: Vec<u8>,
    lines: Vec<String>,
}

impl Said {
    /// Takes more output; the answer once a whole line gives it.
    fn take(&mut self, bytes: &[u8]) -> Option<Delivery> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if line == "quire-ci:received" {
                return Some(Delivery::Received);
            }
            if let Some(status) = line.strip_prefix("quire-ci:refused ") {
                let why = match self.lines.join("; ") {
                    s if s.is_empty() => format!("tar exited {status}"),
                    s => format!("tar exited {status}: {s}"),
                };
                return Some(Delivery::Refused(why));
            }
            if self.lines.iter().map(String::len).sum::<usize>() < SAID_KEPT {
                self.lines.push(line);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_no_user_or_root_by_name_or_id() {
        for u in ["", "root", "0", "0:0", "root:wheel"] {
            assert!(is_root(u), "{u:?}");
        }
        for u in ["1000", "node", "nobody:0", "1000:0"] {
            assert!(!is_root(u), "{u:?}");
        }
    }

    #[test]
    fn the_answer_is_a_whole_line_and_a_refusal_says_tars_words() {
        let mut said = Said::default();
        assert_eq!(said.take(b"quire-ci:recei"), None);
        assert_eq!(said.take(b"ved\n"), Some(Delivery::Received));
        let mut said = Said::default();
        assert_eq!(said.take(b"quire-ci: 1: tar: not found\nquire-ci:ref"), None);
        assert_eq!(
            said.take(b"used 127\n"),
            Some(Delivery::Refused("tar exited 127: quire-ci: 1: tar: not found".to_string()))
        );
        let mut said = Said::default();
        assert_eq!(said.take(b"quire-ci:refused 2\n"), Some(Delivery::Refused("tar exited 2".to_string())));
    }
}
