//! `ssh://[user@]host[:port]`: the Engine API over the system's `ssh` and
//! `docker system dial-stdio` on the far side, as the docker CLI does it
//! (same arguments, so `~/.ssh/config`, the agent and known_hosts apply).
//!
//! Why not bollard's `ssh` feature: in bollard 0.21 it hands openssh the
//! URI's authority without its scheme, so `user@host:port` reaches `ssh` as
//! a host named `host:port` and any port but 22 fails. This is the same
//! connector with the destination parsed here, through bollard's custom
//! transport. Each HTTP connection is one `ssh` process; hyper's pool keeps
//! them for reuse, and a dropped connection kills its process.
//!
//! Owns: spawning `ssh` and the byte stream over its stdio. Must not know
//! about: the API (bollard speaks it over this).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where `ssh://` points: user, host and port as the docker CLI reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// Parse `ssh://[user@]host[:port]`; a path is refused (the docker CLI
    /// refuses it too: the socket on the far side is the remote docker's own).
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let rest = url.strip_prefix("ssh://").ok_or_else(|| format!("{url} is not an ssh:// address"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(format!("{url}: an ssh:// host takes no path"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some((_, h)) => (None, h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !hostport.ends_with(']') => {
                let port = p.parse::<u16>().map_err(|_| format!("{url}: bad port {p:?}"))?;
                (h, Some(port))
            }
            _ => (hostport, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(SshTarget { user, host: host.to_string(), port })
    }

    /// The `ssh` arguments, as the docker CLI's connection helper gives them.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["-o".to_string(), "ConnectTimeout=30".to_string(), "-T".to_string()];
        if let Some(u) = &self.user {
            a.extend(["-l".to_string(), u.clone()]);
        }
        if let Some(p) = self.port {
            a.extend(["-p".to_string(), p.to_string()]);
        }
        a.extend(["--".to_string(), self.host.clone()]);
        a.extend(["docker", "system", "dial-stdio"].map(str::to_string));
        a
    }
}

/// What the last `ssh` said on stderr (for the error when it fails).
pub type SshStderr = Arc<Mutex<String>>;

/// A bollard client speaking to `target` over ssh.
pub fn connect(target: SshTarget, timeout_secs: u64) -> Result<(bollard::Docker, SshStderr), bollard::errors::Error> {
    let stderr: SshStderr = Arc::default();
    let connector = SshConnector { target, stderr: stderr.clone() };
    let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    let docker = bollard::Docker::connect_with_custom_transport(
        move |req: bollard::BollardRequest| {
            let client = client.clone();
            async move { client.request(req).await.map_err(bollard::errors::Error::from) }
        },
        // The connector knows the destination; this only names the scheme.
        Some("ssh://docker"),
        timeout_secs,
        bollard::API_DEFAULT_VERSION,
    )?;
    Ok((docker, stderr))
}

#[derive(Clone)]
struct SshConnector {
    target: SshTarget,
    stderr: SshStderr,
}

impl tower_service::Service<hyper::Uri> for SshConnector {
    type Response = SshStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<SshStream, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let args = self.target.args();
        let stderr_sink = self.stderr.clone();
        Box::pin(async move {
            let mut child = Command::new("ssh")
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            if let Some(mut err) = child.stderr.take() {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let _ = err.read_to_end(&mut buf).await;
                    let text = String::from_utf8_lossy(&buf).trim().to_string();
                    if !text.is_empty() {
                        if let Ok(mut s) = stderr_sink.lock() {
                            *s = text;
                        }
                    }
                });
            }
            Ok(SshStream { _child: child, stdin: Some(TokioIo::new(stdin)), stdout: TokioIo::new(stdout) })
        })
    }
}

struct SshStream {
    _child: Child,
    stdin: Option<TokioIo<ChildStdin>>,
    stdout: TokioIo<ChildStdout>,
}

impl hyper::rt::Read for SshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut().stdin.as_mut() {
            Some(w) => Pin::new(w).poll_write(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stdin.as_mut() {
            Some(w) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(w) = this.stdin.as_mut() {
            std::task::ready!(Pin::new(w).poll_shutdown(cx))?;
        }
        this.stdin = None;
        Poll::Ready(Ok(()))
    }
}

impl hyper_util::client::legacy::connect::Connection for SshStream {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_host_and_port_like_the_docker_cli() {
        assert_eq!(
            SshTarget::parse("ssh://root@127.0.0.1:2222").unwrap(),
            SshTarget { user: Some("root".into()), host: "127.0.0.1".into(), port: Some(2222) }
        );
        assert_eq!(
            SshTarget::parse("ssh://build").unwrap(),
            SshTarget { user: None, host: "build".into(), port: None }
        );
        assert_eq!(SshTarget::parse("ssh://[::1]:22").unwrap().host, "::1");
        assert!(SshTarget::parse("ssh://h/var/run/docker.sock").is_err());
        assert!(SshTarget::parse("ssh://h:x").is_err());
        assert_eq!(
            SshTarget::parse("ssh://me@h:2200").unwrap().args(),
            ["-o", "ConnectTimeout=30", "-T", "-l", "me", "-p", "2200", "--", "h", "docker", "system", "dial-stdio"]
        );
    }
}
