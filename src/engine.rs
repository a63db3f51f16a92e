//! The container engine, through bollard: finding and connecting to a
//! Docker-API engine (Docker or Podman, local or remote), images (inspect,
//! pull, build), the one run container per run, uploads into `/work`, execs
//! with live output, and teardown including orphans of dead quire-ci
//! processes. See docs/engine.md.
//!
//! Owns: every call to the Engine API. Must not know about: Lua, the
//! pipeline, the terminal, log files. Callers get plain values and callbacks.
//! Everything here is async (tokio); a plain thread can use
//! `Handle::block_on`.

mod auth;
mod error;
mod inbox;
pub mod owner;
mod ping;
pub mod select;
mod ssh;

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;

pub use crate::events::Stream;
pub use error::EngineError;
use error::{message_of, status_of, transport_failure};
pub use inbox::{Delivery, Inbox};
use owner::{Owner, Verdict, LABEL_KEEP, LABEL_REPO, LABEL_RUN};
pub use select::SelectEnv;
use select::Tls;

/// Where the run's files live inside the container.
pub const WORKDIR: &str = "/work";

/// A keep-alive that needs only `sh`: sleeps forever in the background and
/// `wait`s, so a TERM (docker stop) runs the trap and exits at once instead of
/// after the stop timeout. PID 1 ignores signals it has no handler for,
/// which is why the trap is needed at all. `wait` also reaps orphans that
/// background jobs of execs leave behind.
const KEEP_ALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done";

/// Ping budget per candidate: a TCP host that drops packets must not hang
/// `connect` for bollard's default two minutes.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-request budget. Uploads and builds send the whole body before the
/// engine answers, so this must cover a large snapshot; streams (exec
/// output, pull progress) are not bound by it once their headers arrive.
const REQUEST_TIMEOUT_SECS: u64 = 3600;

/// Exec output frames read ahead of the caller (bounded memory: frames are
/// at most the engine's frame size, 32 KiB for Docker, so 512 KiB per exec:
/// twice a coalesced chunk, and eight busy execs stay within 4 MiB).
const EXEC_FRAMES_IN_FLIGHT: usize = 16;

/// Frames already waiting are merged into chunks of up to this size.
const EXEC_COALESCE_BYTES: usize = 256 * 1024;

/// Passes an exec's frames on as they arrive, those already waiting merged
/// (fewer, larger chunks for the log and the terminal). `recv_many` takes
/// what is there without waiting for more. Never `try_recv` here: while a
/// sender on another thread is mid-send it parks this thread on the same
/// parker `block_on` sleeps on, and so can eat the wake-up `block_on` was
/// sent — the run then hangs for good, Ctrl-C included.
async fn relay_frames(
    rx: &mut tokio::sync::mpsc::Receiver<(Stream, bytes::Bytes)>,
    on_output: &mut impl FnMut(Stream, &[u8]),
) {
    let mut frames = Vec::with_capacity(EXEC_FRAMES_IN_FLIGHT);
    let mut merged = Merge::default();
    while rx.recv_many(&mut frames, EXEC_FRAMES_IN_FLIGHT).await > 0 {
        for (stream, bytes) in frames.drain(..) {
            merged.push(stream, bytes, on_output);
        }
        merged.flush(on_output);
    }
}

/// Consecutive frames of one stream, joined into chunks of up to
/// [`EXEC_COALESCE_BYTES`]. One buffer per exec, reused; a lone frame is
/// passed on without a copy.
#[derive(Default)]
struct Merge {
    stream: Option<Stream>,
    first: Option<bytes::Bytes>,
    joined: Vec<u8>,
}

impl Merge {
    fn push(&mut self, stream: Stream, bytes: bytes::Bytes, out: &mut impl FnMut(Stream, &[u8])) {
        if self.stream != Some(stream) || self.len() >= EXEC_COALESCE_BYTES {
            self.flush(out);
        }
        self.stream = Some(stream);
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(bytes),
            None => self.joined.extend_from_slice(&bytes),
            Some(first) => {
                self.joined.extend_from_slice(&first);
                self.joined.extend_from_slice(&bytes);
            }
        }
    }

    fn len(&self) -> usize {
        self.first.as_ref().map_or(self.joined.len(), |f| f.len())
    }

    fn flush(&mut self, out: &mut impl FnMut(Stream, &[u8])) {
        let Some(stream) = self.stream.take() else { return };
        match self.first.take() {
            Some(first) => out(stream, &first),
            None => out(stream, &self.joined),
        }
        self.joined.clear();
    }
}

/// A connected, version-negotiated engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
    chosen: std::sync::Arc<Chosen>,
    /// Per container, the cgroup's OOM kills already accounted for.
    oom_seen: std::sync::Arc<std::sync::Mutex<HashMap<String, u64>>>,
}

/// The engine's context and endpoint, and what chose them (docs/engine.md).
#[derive(Debug, Clone)]
pub struct Chosen {
    /// `default` or the docker context's name.
    pub context: String,
    /// What chose it, in words: "DOCKER_CONTEXT=remote", ...
    pub why: String,
    pub source: select::Source,
    pub endpoint: String,
    /// "plain", "TLS" or "ssh".
    pub how: &'static str,
    /// The docker config directory (credentials live there).
    pub config_dir: Option<std::path::PathBuf>,
}

impl Chosen {
    /// One line for `doctor` and `-v`.
    pub fn describe(&self) -> String {
        let how = if self.how == "plain" { String::new() } else { format!(", {}", self.how) };
        format!("context {} ({}): {}{how}", self.context, self.why, self.endpoint)
    }

    /// The docker CLI's global flags that reach this same engine.
    pub fn docker_args(&self) -> Vec<String> {
        if self.context != "default" {
            return vec!["--context".into(), self.context.clone()];
        }
        // The docker CLI's own default: plain `docker` reaches it.
        if self.source != select::Source::DockerHost && self.endpoint == "unix:///var/run/docker.sock" {
            return vec![];
        }
        let mut args = vec!["-H".to_string(), self.endpoint.replacen("https://", "tcp://", 1)];
        if self.how == "TLS" {
            args.push("--tlsverify".into());
        }
        args
    }

    /// `docker ARGS rest...` as a line a user can paste into a shell.
    pub fn docker_command(&self, rest: &[&str]) -> String {
        let mut words = vec!["docker".to_string()];
        words.extend(self.docker_args());
        words.extend(rest.iter().map(|s| s.to_string()));
        words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
    }
}

/// `w` quoted for a POSIX shell when it needs it.
fn shell_quote(w: &str) -> String {
    if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// What `doctor` shows about the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// "Docker Engine", "Podman Engine", ... from the version's components.
    pub product: String,
    /// The server's own version, e.g. "20.10.24+dfsg1".
    pub server: String,
    /// The server's API version, e.g. "1.41".
    pub api: String,
    /// The API version we speak to it after negotiation.
    pub negotiated_api: String,
    pub os: String,
    pub arch: String,
}

/// When to pull an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not present locally.
    #[default]
    Missing,
    /// Always pull (refresh a moving tag).
    Always,
    /// Never pull: a missing image is an error.
    Never,
}

/// One progress message from a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer this is about; None for whole-image messages ("Pulling from ...").
    pub layer: Option<String>,
    /// The engine's status text: "Downloading", "Pull complete", ...
    pub status: String,
    pub current: Option<i64>,
    pub total: Option<i64>,
}

/// What the run container is made from.
#[derive(Debug, Clone, Default)]
pub struct RunContainerSpec {
    pub image: String,
    pub run_id: String,
    /// The host path of the repository, for the `quire-ci.repo` label (people
    /// read it in `docker ps`; nothing is mounted from it).
    pub repo_path_label: String,
    /// Environment for every exec, before each exec's own env.
    pub env: Vec<(String, String)>,
    /// Memory limit in bytes (swap limited to the same, so the limit bites).
    pub memory_limit: Option<i64>,
    /// A named volume to mount at /cache (created by the engine if missing).
    pub cache_volume: Option<String>,
    /// The engine's network mode; None is its default (bridge). "none" halves
    /// container start and removal time for pipelines that need no network.
    pub network: Option<String>,
    /// `--keep`: label it so that no later quire-ci reaps it as an orphan.
    pub keep: bool,
    /// Made to receive the snapshot on its stdin before it keeps alive
    /// (src/engine/inbox.rs): attach with [`Engine::open_inbox`] before the
    /// start.
    pub receive: bool,
}

/// A created and started run container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContainer {
    pub id: String,
    pub name: String,
}

/// One command to run in the run container.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Relative to /work, or absolute inside /work; None is /work.
    pub cwd: Option<String>,
}

/// How a command ended, when the container survived it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub exit: i64,
    /// "SIGKILL" etc. when `exit` is 128+N for a known signal N (see
    /// [`signal_from_exit`] for the heuristic).
    pub signal: Option<String>,
}

impl Engine {
    /// Find the engine the docker CLI would use (see [`select::select`]):
    /// `DOCKER_HOST`, `DOCKER_CONTEXT`, the config's `currentContext`, else
    /// the usual Docker socket, then Docker rootless and Podman sockets.
    pub async fn connect() -> Result<Engine, EngineError> {
        Self::connect_env(&SelectEnv::from_process()).await
    }

    /// As [`Engine::connect`], with `docker_host` in place of `$DOCKER_HOST`.
    pub async fn connect_with(docker_host: Option<&str>) -> Result<Engine, EngineError> {
        let mut env = SelectEnv::from_process();
        env.docker_host = docker_host.filter(|h| !h.is_empty()).map(str::to_string);
        Self::connect_env(&env).await
    }

    /// As [`Engine::connect`], from the given environment.
    pub async fn connect_env(env: &SelectEnv) -> Result<Engine, EngineError> {
        let selection = select::select(env)?;
        let explicit = selection.explicit();
        let mut tried = Vec::new();
        for (c, tls) in &selection.endpoints {
            if let Some(path) = c.strip_prefix("unix://") {
                if !explicit && !std::path::Path::new(path).exists() {
                    tried.push(format!("{c} (no such socket)"));
                    continue;
                }
            }
            match Self::try_endpoint(c, tls.as_ref()).await {
                Ok((docker, how)) => {
                    let chosen = Chosen {
                        context: selection.context.clone(),
                        why: selection.why(),
                        source: selection.source.clone(),
                        endpoint: c.clone(),
                        how,
                        config_dir: env.config_dir(),
                    };
                    return Ok(Engine {
                        docker,
                        endpoint: c.clone(),
                        chosen: std::sync::Arc::new(chosen),
                        oom_seen: Default::default(),
                    });
                }
                Err(Attempt::Unsupported) => {
                    return Err(EngineError::UnsupportedHost { host: c.clone() });
                }
                Err(Attempt::Tls(problem)) => {
                    return Err(EngineError::TlsMaterial { endpoint: c.clone(), problem });
                }
                Err(Attempt::Failed(why)) => {
                    if selection.context != "default" {
                        return Err(EngineError::ChosenUnreachable {
                            chosen: selection.describe(),
                            endpoint: c.clone(),
                            why,
                        });
                    }
                    tried.push(format!("{c} ({why})"));
                }
            }
        }
        if explicit && selection.source != select::Source::DockerHost {
            // DOCKER_CONTEXT=default with nothing answering: say so.
            tried.push(format!("(the {}: the default socket search)", selection.describe()));
        }
        Err(EngineError::Unreachable { tried })
    }

    async fn try_endpoint(endpoint: &str, tls: Option<&Tls>) -> Result<(Docker, &'static str), Attempt> {
        let map_err = |e: bollard::errors::Error| match e {
            bollard::errors::Error::UnsupportedURISchemeError { .. } => Attempt::Unsupported,
            bollard::errors::Error::SocketNotFoundError(_) => Attempt::Failed("no such socket".into()),
            other => Attempt::Failed(other.to_string()),
        };
        let mut ssh_stderr = None;
        let (docker, how) = if let Some(tls) = tls {
            if !tls.ca.exists() {
                return Err(Attempt::Tls(format!("no CA certificate at {}", tls.ca.display())));
            }
            if tls.cert.exists() != tls.key.exists() {
                return Err(Attempt::Tls(format!(
                    "a client certificate needs both {} and {}",
                    tls.cert.display(),
                    tls.key.display()
                )));
            }
            let host = endpoint.replacen("https://", "tcp://", 1);
            let d = Docker::connect_with_ssl(
                &host,
                &tls.key,
                &tls.cert,
                &tls.ca,
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(|e| Attempt::Tls(e.to_string()))?;
            (d, "TLS")
        } else if endpoint.starts_with("ssh://") {
            let target = ssh::SshTarget::parse(endpoint).map_err(Attempt::Failed)?;
            let (d, stderr) = ssh::connect(target, REQUEST_TIMEOUT_SECS).map_err(map_err)?;
            ssh_stderr = Some(stderr);
            (d, "ssh")
        } else if endpoint.starts_with("https://") {
            return Err(Attempt::Tls("https:// needs DOCKER_CERT_PATH (or DOCKER_CONFIG) with ca.pem".into()));
        } else {
            let d = Docker::connect_with_host(endpoint).map_err(map_err)?;
            (d.with_timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS)), "plain")
        };
        let with_ssh = |why: String| match ssh_stderr.as_ref().and_then(|s| s.lock().ok().map(|s| s.clone())) {
            Some(err) if !err.is_empty() => format!("{why}; ssh said: {err}"),
            _ => why,
        };
        // bollard speaks a newer API than e.g. Debian's docker 20.10 (1.41);
        // negotiation lowers our version to the server's, or requests that
        // use newer fields are refused or misread. ssh's handshake needs
        // more than a socket's budget.
        let budget = if ssh_stderr.is_some() { PING_TIMEOUT * 6 } else { PING_TIMEOUT };
        // A local socket: one ping both proves the engine and negotiates.
        if let (Some(path), "plain") = (endpoint.strip_prefix("unix://"), how) {
            match tokio::time::timeout(budget, ping::api_version(path)).await {
                Ok(Ok(Some(server))) => {
                    let version = ping::lower(server, bollard::API_DEFAULT_VERSION);
                    if let Ok(d) = Docker::connect_with_unix(endpoint, REQUEST_TIMEOUT_SECS, &version) {
                        return Ok((d, how));
                    }
                }
                Err(_) => return Err(Attempt::Failed(format!("no answer within {}s", budget.as_secs()))),
                // No header, or a failure: the old way, which words it.
                Ok(_) => {}
            }
        }
        let docker = tokio::time::timeout(budget, docker.negotiate_version())
            .await
            .map_err(|_| Attempt::Failed(with_ssh(format!("no answer within {}s", budget.as_secs()))))?
            .map_err(|e| Attempt::Failed(with_ssh(describe_connect_error(&e))))?;
        tokio::time::timeout(budget, docker.ping())
            .await
            .map_err(|_| Attempt::Failed(with_ssh(format!("no answer within {}s", budget.as_secs()))))?
            .map_err(|e| Attempt::Failed(with_ssh(describe_connect_error(&e))))?;
        Ok((docker, how))
    }

    /// Which engine this is and why it was chosen.
    pub fn chosen(&self) -> &Chosen {
        &self.chosen
    }

    /// Where we connected, e.g. `unix:///var/run/docker.sock`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The underlying bollard client, for calls this room does not wrap yet.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub async fn version(&self) -> Result<EngineVersion, EngineError> {
        let v = self.docker.version().await.map_err(|e| EngineError::api("reading the engine version", e))?;
        // Docker Desktop names itself in Platform ("Docker Desktop 4.x");
        // dockerd's first component is plain "Engine"; Podman's is "Podman
        // Engine" while its Platform is an os/arch/distro triple
        // ("linux/amd64/debian-12"), which names no product.
        let components = v.components.as_deref().unwrap_or_default();
        let podman = components.iter().find(|c| c.name.starts_with("Podman")).map(|c| c.name.clone());
        let platform = v.platform.as_ref().map(|p| p.name.clone()).filter(|n| !n.is_empty() && !n.contains('/'));
        let component = components.first().map(|c| match c.name.as_str() {
            "Engine" => "Docker Engine".to_string(),
            other => other.to_string(),
        });
        let product = podman.or(platform).or(component).unwrap_or_else(|| "Docker-API engine".to_string());
        Ok(EngineVersion {
            product,
            server: v.version.unwrap_or_default(),
            api: v.api_version.unwrap_or_default(),
            negotiated_api: self.docker.client_version().to_string(),
            os: v.os.unwrap_or_default(),
            arch: v.arch.unwrap_or_default(),
        })
    }

    /// How many CPUs the engine's machine has (`NCPU` of its `/info`);
    /// `None` when it does not say or cannot be asked.
    pub async fn cpus(&self) -> Option<usize> {
        let info = self.docker.info().await.ok()?;
        info.ncpu.and_then(|n| usize::try_from(n).ok()).filter(|&n| n > 0)
    }

    // ---- images ---------------------------------------------------------

    /// The local image id for `name`, or None when it is not present.
    pub async fn image_id(&self, name: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(name).await {
            Ok(i) => Ok(i.id),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting image {name}"), e)),
        }
    }

    /// Make sure `name` is present, pulling per `policy`; returns its id.
    /// Pull progress is streamed to `on_progress` as the engine reports it.
    pub async fn ensure_image(
        &self,
        name: &str,
        policy: PullPolicy,
        mut on_progress: impl FnMut(PullProgress),
    ) -> Result<String, EngineError> {
        if policy != PullPolicy::Always {
            if let Some(id) = self.image_id(name).await? {
                return Ok(id);
            }
            if policy == PullPolicy::Never {
                return Err(EngineError::ImageUnavailable {
                    image: name.to_string(),
                    reason: "not present locally, and the pull policy is never".to_string(),
                });
            }
        }
        // Without a tag the API pulls every tag of the repository.
        let reference = with_default_tag(name);
        let options = CreateImageOptionsBuilder::default().from_image(&reference).build();
        let registry = auth::registry_of(&reference);
        let credentials = auth::credentials(self.chosen.config_dir.as_deref(), &registry)
            .map_err(|problem| EngineError::Credentials { registry: registry.clone(), problem })?;
        let had_credentials = credentials.is_some();
        let mut pull = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = pull.next().await {
            match item {
                Ok(info) => on_progress(PullProgress {
                    layer: info.id,
                    status: info.status.unwrap_or_default(),
                    current: info.progress_detail.as_ref().and_then(|p| p.current),
                    total: info.progress_detail.as_ref().and_then(|p| p.total),
                }),
                Err(e) => {
                    let reason = message_of(&e);
                    if auth::is_auth_refusal(&reason) {
                        return Err(self.auth_refused(name, &registry, reason, had_credentials));
                    }
                    return Err(EngineError::ImageUnavailable {
                        image: name.to_string(),
                        reason: format!("pull failed: {reason}"),
                    });
                }
            }
        }
        self.image_id(name).await?.ok_or_else(|| EngineError::ImageUnavailable {
            image: name.to_string(),
            reason: "the pull finished but the image is still not present".to_string(),
        })
    }

    /// Build `tag` from a tar build context (read and streamed as the engine
    /// consumes it), with the Dockerfile at `dockerfile` inside the context.
    /// Each line of builder output goes to `on_output`; returns the image id.
    pub async fn build_image(
        &self,
        context: impl Read + Send + 'static,
        dockerfile: &str,
        tag: &str,
        mut on_output: impl FnMut(String),
    ) -> Result<String, EngineError> {
        let options = BuildImageOptionsBuilder::default().dockerfile(dockerfile).t(tag).rm(true).forcerm(true).build();
        // As the docker CLI's classic build: every registry the docker
        // config has credentials for, so a FROM from a private one pulls.
        let credentials = auth::all_credentials(self.chosen.config_dir.as_deref())
            .map_err(|problem| EngineError::Credentials { registry: "the Dockerfile's FROM images".into(), problem })?;
        let credentials = (!credentials.is_empty()).then_some(credentials);
        let (body, reader) = streaming_body(context);
        let mut built = None;
        let mut failure = None;
        {
            let mut build = self.docker.build_image(options, credentials, Some(bollard::body_try_stream(body)));
            while let Some(item) = build.next().await {
                match item {
                    Ok(info) => {
                        if let Some(text) = info.stream.or(info.status) {
                            for line in text.lines() {
                                on_output(line.to_string());
                            }
                        }
                        // The classic builder's last message carries the image id.
                        if let Some(id) = info.aux.and_then(|a| a.id) {
                            built = Some(id);
                        }
                    }
                    // The failing step's last output can arrive after the
                    // error: drain the stream, keep the first error.
                    Err(e) => {
                        if failure.is_some() {
                            break;
                        }
                        failure = Some(message_of(&e));
                    }
                }
            }
        }
        if let Some(err) = reader.finish().await {
            return Err(EngineError::ArchiveRead { target: format!("build context of {tag}"), source: err });
        }
        if let Some(message) = failure {
            if auth::is_auth_refusal(&message) {
                if let Some(registry) = auth::registry_in_message(&message) {
                    let had = self
                        .chosen
                        .config_dir
                        .as_deref()
                        .and_then(|d| auth::credentials(Some(d), &registry).ok().flatten())
                        .is_some();
                    return Err(self.auth_refused(
                        &format!("a FROM image of {tag}"),
                        &registry,
                        message.trim().to_string(),
                        had,
                    ));
                }
            }
            return Err(EngineError::BuildFailed { tag: tag.to_string(), message: message.trim().to_string() });
        }
        match built {
            Some(id) => Ok(id),
            None => self.image_id(tag).await?.ok_or_else(|| EngineError::BuildFailed {
                tag: tag.to_string(),
                message: "the builder finished without producing the image".to_string(),
            }),
        }
    }

    /// A registry's "log in first", with how to.
    fn auth_refused(&self, image: &str, registry: &str, reason: String, had_credentials: bool) -> EngineError {
        let config = match &self.chosen.config_dir {
            Some(d) => d.join("config.json").display().to_string(),
            None => "the docker config".to_string(),
        };
        let login = format!("docker login {}", auth::login_host(registry)).trim_end().to_string();
        let hint = if had_credentials {
            format!("the credentials for {registry} in {config} were refused; log in again: `{login}`")
        } else {
            format!("log in to the registry: `{login}` (quire-ci reads the credentials `docker` keeps in {config})")
        };
        EngineError::RegistryAuth { image: image.to_string(), registry: registry.to_string(), reason, hint }
    }

    // ---- the run container ----------------------------------------------

    /// Create and start the run's container: labelled with the run and its
    /// owner (for orphan reaping), working dir /work, kept alive by `sh`.
    pub async fn create_run_container(&self, spec: &RunContainerSpec) -> Result<RunContainer, EngineError> {
        let container = self.create_stopped_run_container(spec).await?;
        self.start_run_container(&container).await?;
        Ok(container)
    }

    /// Start a container made by [`Engine::create_stopped_run_container`];
    /// on failure it is removed. The snapshot can be uploaded meanwhile:
    /// the engine takes an archive into a created container too.
    pub async fn start_run_container(&self, container: &RunContainer) -> Result<(), EngineError> {
        if let Err(e) = self.docker.start_container(&container.id, None).await {
            // Do not leave a created-but-dead container behind.
            let _ = self.remove(container).await;
            return Err(EngineError::api(format!("starting container {}", container.name), e));
        }
        Ok(())
    }

    /// Create the run's container without starting it (see
    /// [`Engine::create_run_container`] for what it is made of).
    pub async fn create_stopped_run_container(&self, spec: &RunContainerSpec) -> Result<RunContainer, EngineError> {
        let owner = Owner::current();
        let mut labels: HashMap<String, String> = owner.labels().into_iter().collect();
        labels.insert(LABEL_RUN.to_string(), spec.run_id.clone());
        labels.insert(LABEL_REPO.to_string(), spec.repo_path_label.clone());
        if spec.keep {
            labels.insert(LABEL_KEEP.to_string(), "true".to_string());
        }
        let name = container_name(&spec.run_id);
        let host_config = HostConfig {
            memory: spec.memory_limit,
            memory_swap: spec.memory_limit,
            binds: spec.cache_volume.as_ref().map(|v| vec![format!("{v}:/cache")]),
            network_mode: spec.network.clone(),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(if spec.receive {
                ["sh", "-c", inbox::RECEIVE, "quire-ci", KEEP_ALIVE].map(str::to_string).to_vec()
            } else {
                vec!["sh".to_string(), "-c".to_string(), KEEP_ALIVE.to_string()]
            }),
            entrypoint: Some(vec![]),
            working_dir: Some(WORKDIR.to_string()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            // A receiving container's stdin is open until the snapshot is in.
            open_stdin: Some(spec.receive),
            stdin_once: Some(spec.receive),
            attach_stdin: Some(spec.receive),
            attach_stdout: Some(spec.receive),
            attach_stderr: Some(spec.receive),
            tty: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self.docker.create_container(Some(options), body).await.map_err(|e| {
            if status_of(&e) == Some(404) {
                EngineError::ImageUnavailable { image: spec.image.clone(), reason: message_of(&e) }
            } else {
                EngineError::api(format!("creating container {name} from {}", spec.image), e)
            }
        })?;
        Ok(RunContainer { id: created.id, name })
    }

    /// Unpack a tar stream into /work, streamed in chunks as `tar` is read
    /// (a blocking reader on its own thread; at most a few chunks in flight).
    pub async fn upload(&self, container: &RunContainer, tar: impl Read + Send + 'static) -> Result<(), EngineError> {
        let options = UploadToContainerOptionsBuilder::default().path(WORKDIR).build();
        let (body, reader) = streaming_body(tar);
        let sent = self.docker.upload_to_container(&container.id, Some(options), bollard::body_try_stream(body)).await;
        if let Some(err) = reader.finish().await {
            return Err(EngineError::ArchiveRead { target: format!("upload into {}", container.name), source: err });
        }
        match sent {
            Ok(()) => Ok(()),
            Err(e) => Err(self.died_or(container, e, "uploading the snapshot").await),
        }
    }

    /// Copies `path` (absolute, in the container) out as a tar, as
    /// `docker cp` does: entries are named from the path's last component.
    /// `Ok(None)` when nothing is there.
    pub async fn download(&self, container: &RunContainer, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default().path(path).build();
        let mut stream = self.docker.download_from_container(&container.id, Some(options));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(e) if status_of(&e) == Some(404) => return Ok(None),
                Err(e) => return Err(self.died_or(container, e, "copying a path out of the container").await),
            }
        }
        Ok(Some(out))
    }

    /// Run one command; each output frame goes to `on_output` as it arrives.
    /// Dropping the returned future stops listening but not the command:
    /// to cancel, [`Engine::kill`] the container.
    /// The callback may be slow: frames are pulled from the engine only as
    /// fast as it returns, so a slow consumer stalls the command's pipe
    /// (backpressure) instead of growing a buffer.
    pub async fn exec(
        &self,
        container: &RunContainer,
        spec: &ExecSpec,
        mut on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<ExecOutcome, EngineError> {
        let cwd = resolve_cwd(spec.cwd.as_deref())?;
        let started = SystemTime::now();
        let options = CreateExecOptions::<String> {
            cmd: Some(spec.argv.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(cwd),
            attach_stdin: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..Default::default()
        };
        let exec = match self.docker.create_exec(&container.id, options).await {
            Ok(x) => x,
            Err(e) => return Err(self.died_or(container, e, "creating an exec").await),
        };
        let start = StartExecOptions { detach: false, tty: false, output_capacity: None };
        match self.docker.start_exec(&exec.id, Some(start)).await {
            Ok(StartExecResults::Attached { mut output, .. }) => {
                // Frames are read from the engine on a task of their own, so
                // reading goes on while the caller handles the previous
                // frames (log, terminal). The channel is bounded: a slow
                // caller still holds the command back instead of growing a
                // buffer.
                let (tx, mut rx) = tokio::sync::mpsc::channel::<(Stream, bytes::Bytes)>(EXEC_FRAMES_IN_FLIGHT);
                tokio::spawn(async move {
                    while let Some(frame) = output.next().await {
                        let item = match frame {
                            Ok(bollard::container::LogOutput::StdOut { message }) => (Stream::Stdout, message),
                            Ok(bollard::container::LogOutput::StdErr { message }) => (Stream::Stderr, message),
                            // No TTY, no stdin: other kinds do not occur; drop them.
                            Ok(_) => continue,
                            // The connection broke: the engine or container went away.
                            Err(_) => break,
                        };
                        if tx.send(item).await.is_err() {
                            break; // the caller is gone (canceled)
                        }
                    }
                });
                relay_frames(&mut rx, &mut on_output).await;
            }
            Ok(StartExecResults::Detached) => {}
            Err(e) => return Err(self.died_or(container, e, "starting an exec").await),
        }
        let exit = match self.exec_exit(container, &exec.id).await {
            Ok(exit) => exit,
            Err(reason) => return Err(EngineError::ContainerDied { container: container.name.clone(), reason }),
        };
        // A command that exits normally proves the container was alive; only
        // an unknown exit or a signal's 128+N needs a look at the container.
        if exit.is_none_or(|code| code >= 128) {
            // Execs die with 137 when the container is killed, and the engine
            // may report the exec's end before it has noticed the container's;
            // so for 137 (or no code) give the container a moment to settle.
            let settle = exit.is_none_or(|code| code == 137);
            if let Some(reason) = self.death_reason_settled(container, settle).await {
                return Err(EngineError::ContainerDied { container: container.name.clone(), reason });
            }
            if exit == Some(137)
                && (self.oom_since(container, started).await || self.new_cgroup_oom_kill(container).await)
            {
                return Err(EngineError::ContainerDied {
                    container: container.name.clone(),
                    reason: "oom-killed".to_string(),
                });
            }
            // A loaded engine may take longer than the settle to mark a
            // container killed from outside as dead; after the OOM checks
            // (which take a while themselves) look once more.
            if exit == Some(137) {
                if let Some(reason) = self.death_reason(container).await {
                    return Err(EngineError::ContainerDied { container: container.name.clone(), reason });
                }
            }
        }
        let Some(exit) = exit else {
            return Err(EngineError::ContainerDied {
                container: container.name.clone(),
                reason: "the engine lost the command's exit status".to_string(),
            });
        };
        Ok(ExecOutcome { exit, signal: signal_from_exit(exit).map(str::to_string) })
    }

    /// The exec's exit code once it has ended. Docker closes the output
    /// stream only after the process exits, but an engine may close it when
    /// the process merely closed its stdout/stderr; so poll while the exec
    /// still runs (backing off to 200 ms), checking now and then that the
    /// container itself still lives. `Err` is the container's death reason.
    async fn exec_exit(&self, container: &RunContainer, exec_id: &str) -> Result<Option<i64>, String> {
        let mut backoff = Duration::from_millis(5);
        let mut polls = 0u32;
        loop {
            match self.docker.inspect_exec(exec_id).await {
                Ok(i) if i.running == Some(true) => {}
                Ok(i) => return Ok(i.exit_code),
                // The exec is gone with its container, or the engine is: the
                // caller's death check says which.
                Err(_) => return Ok(None),
            }
            polls += 1;
            if polls.is_multiple_of(10) {
                if let Some(reason) = self.death_reason(container).await {
                    return Err(reason);
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    // ---- teardown -------------------------------------------------------

    /// Remove the container and its anonymous volumes, killing it if it runs.
    /// Already gone counts as done.
    pub async fn remove(&self, container: &RunContainer) -> Result<(), EngineError> {
        self.remove_id(&container.id).await
    }

    /// As [`Engine::remove`], by id (or name): what the detached remover
    /// (src/executor/remover.rs) is handed.
    pub async fn remove_id(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 404: gone already; 409: a removal is already in progress.
            Err(e) if matches!(status_of(&e), Some(404) | Some(409)) => Ok(()),
            Err(e) => Err(EngineError::api(format!("removing container {id}"), e)),
        }
    }

    /// Cancel: SIGKILL first, so every exec stream ends now, then remove.
    pub async fn kill(&self, container: &RunContainer) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
        match self.docker.kill_container(&container.id, Some(options)).await {
            Ok(()) => {}
            Err(e) if matches!(status_of(&e), Some(404) | Some(409)) => {}
            Err(e) => return Err(EngineError::api(format!("killing container {}", container.name), e)),
        }
        self.remove(container).await
    }

    /// Remove run containers whose owning quire-ci process is gone (see
    /// [`owner::judge`]); returns the removed containers' names. Containers
    /// whose owner is alive, or cannot be judged, are never touched.
    pub async fn reap_orphans(&self) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for (id, name) in self.orphans().await? {
            self.remove_id(&id).await?;
            removed.push(name);
        }
        Ok(removed)
    }

    /// Run containers whose owning quire-ci process is gone (see
    /// [`owner::judge`]), as (id, name), without touching them. One being
    /// removed already (a detached remover at work) is not listed.
    pub async fn orphans(&self) -> Result<Vec<(String, String)>, EngineError> {
        let me = Owner::current();
        let mut filters = HashMap::new();
        filters.insert("label", vec![LABEL_RUN]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::api("listing quire-ci containers", e))?;
        let mut orphans = Vec::new();
        for c in list {
            let (Some(id), Some(labels)) = (c.id, c.labels) else {
                continue;
            };
            if c.state == Some(bollard::models::ContainerSummaryStateEnum::REMOVING) {
                continue;
            }
            // A container handed to a remover that is still at it is not
            // left behind, though its owner (a run that ended) is gone.
            if owner::judge(&labels, &me, &owner::ProcHost) == Verdict::Orphan
                && !owner::remover_alive(&id, &self.endpoint)
            {
                let name = c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| id.clone());
                orphans.push((id, name));
            }
        }
        Ok(orphans)
    }

    // ---- container death ------------------------------------------------

    /// As [`Self::death_reason`]; with `settle`, a container that still runs
    /// gets up to SETTLE to stop (`wait` returns the moment it does), so a
    /// kill from outside is not mistaken for the command's own SIGKILL. That
    /// wait is the price of a command that really is SIGKILLed inside a live
    /// container.
    async fn death_reason_settled(&self, container: &RunContainer, settle: bool) -> Option<String> {
        const SETTLE: Duration = Duration::from_millis(500);
        if let Some(reason) = self.death_reason(container).await {
            return Some(reason);
        }
        if !settle {
            return None;
        }
        let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let wait = self.docker.wait_container(&container.id, Some(options));
        futures_util::pin_mut!(wait);
        let _ = tokio::time::timeout(SETTLE, wait.next()).await;
        self.death_reason(container).await
    }

    /// Why the container is no longer running, or None if it still runs.
    async fn death_reason(&self, container: &RunContainer) -> Option<String> {
        match self.container_state(&container.id).await {
            Ok(state) => {
                if state.running && !state.restarting {
                    return None;
                }
                let code = state.exit_code;
                Some(if state.oom_killed {
                    "oom-killed".to_string()
                } else if code == 137 {
                    "killed (exit 137)".to_string()
                } else {
                    format!("exited (exit {code})")
                })
            }
            Err(e) if status_of(&e) == Some(404) => Some("removed".to_string()),
            Err(e) => Some(format!(
                "engine connection lost, was it stopped or restarted? ({})",
                transport_failure(&e).unwrap_or_else(|| message_of(&e))
            )),
        }
    }

    /// The container's state. Podman reports states the Docker API does not
    /// have (`stopped`, `configured`), which bollard's typed inspect refuses;
    /// then the same fields are read from the raw answer.
    async fn container_state(&self, id: &str) -> Result<ContainerStateLite, bollard::errors::Error> {
        match self.docker.inspect_container(id, None).await {
            Ok(c) => {
                let s = c.state.unwrap_or_default();
                Ok(ContainerStateLite {
                    running: s.running == Some(true),
                    restarting: s.restarting == Some(true),
                    oom_killed: s.oom_killed == Some(true),
                    exit_code: s.exit_code.unwrap_or(-1),
                })
            }
            Err(bollard::errors::Error::JsonDataError { contents, message, column }) => {
                let v: serde_json::Value = match serde_json::from_str(&contents) {
                    Ok(v) => v,
                    Err(_) => return Err(bollard::errors::Error::JsonDataError { contents, message, column }),
                };
                Ok(ContainerStateLite::from_json(&v["State"]))
            }
            Err(e) => Err(e),
        }
    }

    /// Did the engine report an OOM kill in this container since `since`?
    /// An OOM kill of an exec's process leaves the container running (the
    /// kernel picks the biggest process, rarely the keep-alive), so the only
    /// record is the engine's `oom` event. Times are the host's clock, with a
    /// second of slack; a remote engine whose clock is far off gets
    /// "exit 137" instead of "oom-killed".
    async fn oom_since(&self, container: &RunContainer, since: SystemTime) -> bool {
        // The API's timestamp form: seconds, a dot, nine digits of nanoseconds.
        let stamp = |t: SystemTime| {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
        };
        let mut filters = HashMap::new();
        filters.insert("container", vec![container.id.as_str()]);
        filters.insert("event", vec!["oom"]);
        let options = EventsOptionsBuilder::default()
            .since(&stamp(since.checked_sub(Duration::from_secs(1)).unwrap_or(since)))
            // The oom event precedes the exec's end, so "now" already covers
            // it; a future `until` would make the engine hold the stream open.
            .until(&stamp(SystemTime::now()))
            .filters(&filters)
            .build();
        let events = self.docker.events(Some(options));
        // Bounded: `until` ends the stream; the timeout guards a stuck engine.
        let found = tokio::time::timeout(Duration::from_secs(5), async {
            futures_util::pin_mut!(events);
            while let Some(e) = events.next().await {
                if let Ok(e) = e {
                    if e.action.as_deref() == Some("oom") {
                        return true;
                    }
                }
            }
            false
        })
        .await;
        found.unwrap_or(false)
    }

    /// Has the container's memory cgroup counted an OOM kill since we last
    /// looked? Podman sends no `oom` event when the kernel kills an exec's
    /// process (its container lives on, so `State.OOMKilled` stays false);
    /// the cgroup's own counter, read from inside the container (v2
    /// `memory.events`, v1 `memory.oom_control`), still says so.
    async fn new_cgroup_oom_kill(&self, container: &RunContainer) -> bool {
        // The killed command's pipeline may still be dying and its memory
        // still charged: an exec started now (runc's init joins the cgroup
        // first, unkillable) could OOM the cgroup again and take the
        // keep-alive with it. So first wait, through `top` (the engine runs
        // ps outside the container), until only the keep-alive's `sh` and
        // `sleep` are left.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline {
            match self.docker.top_processes(&container.id, None).await {
                Ok(top) if top.processes.as_ref().is_some_and(|p| p.len() > 2) => {}
                _ => break,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let options = CreateExecOptions::<String> {
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null".into(),
            ]),
            attach_stdout: Some(true),
            attach_stderr: Some(false),
            ..Default::default()
        };
        let Ok(exec) = self.docker.create_exec(&container.id, options).await else { return false };
        let read = async {
            let mut text = Vec::new();
            if let Ok(StartExecResults::Attached { mut output, .. }) = self.docker.start_exec(&exec.id, None).await {
                while let Some(Ok(frame)) = output.next().await {
                    if let bollard::container::LogOutput::StdOut { message } = frame {
                        text.extend_from_slice(&message);
                    }
                }
            }
            text
        };
        let Ok(text) = tokio::time::timeout(Duration::from_secs(5), read).await else { return false };
        let kills = oom_kill_count(&String::from_utf8_lossy(&text));
        let Ok(mut seen) = self.oom_seen.lock() else { return false };
        let before = seen.insert(container.id.clone(), kills).unwrap_or(0);
        kills > before
    }

    /// Map an API error during work on the container to ContainerDied when
    /// the container is gone or stopped, else to a plain API error.
    async fn died_or(&self, container: &RunContainer, e: bollard::errors::Error, action: &str) -> EngineError {
        match self.death_reason(container).await {
            Some(reason) => EngineError::ContainerDied { container: container.name.clone(), reason },
            None => EngineError::api(format!("{action} in container {}", container.name), e),
        }
    }
}

/// What [`Engine::death_reason`] needs of a container's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContainerStateLite {
    running: bool,
    restarting: bool,
    oom_killed: bool,
    exit_code: i64,
}

impl ContainerStateLite {
    /// From the raw `State` object of an inspect (Docker's or Podman's).
    fn from_json(state: &serde_json::Value) -> ContainerStateLite {
        let flag = |k: &str| state.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        ContainerStateLite {
            running: flag("Running"),
            restarting: flag("Restarting"),
            oom_killed: flag("OOMKilled"),
            exit_code: state.get("ExitCode").and_then(|v| v.as_i64()).unwrap_or(-1),
        }
    }
}

enum Attempt {
    Unsupported,
    Tls(String),
    Failed(String),
}

fn describe_connect_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::HyperResponseError { err } => err.to_string(),
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            format!("answered {status_code}: {message}")
        }
        other => other.to_string(),
    }
}

/// `name` with `:latest` added when it has neither a tag nor a digest. A
/// colon before the last `/` is a registry port, not a tag.
pub fn with_default_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// The `oom_kill N` count in a memory cgroup's events (v2 `memory.events`,
/// v1 `memory.oom_control`); 0 when there is none.
fn oom_kill_count(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// A container name from a run id: Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn container_name(run_id: &str) -> String {
    let safe: String =
        run_id.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    format!("quire-ci-{safe}")
}

/// The exec's working directory: relative paths are under /work; absolute
/// ones must stay inside it (checked lexically, `..` included).
pub fn resolve_cwd(cwd: Option<&str>) -> Result<String, EngineError> {
    let Some(cwd) = cwd.filter(|c| !c.is_empty()) else {
        return Ok(WORKDIR.to_string());
    };
    let rel = if let Some(abs) = cwd.strip_prefix('/') {
        match abs.strip_prefix("work") {
            Some("") => "",
            Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
            _ => return Err(EngineError::BadCwd { cwd: cwd.to_string() }),
        }
    } else {
        cwd
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(EngineError::BadCwd { cwd: cwd.to_string() });
                }
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() { WORKDIR.to_string() } else { format!("{WORKDIR}/{}", parts.join("/")) })
}

/// The signal behind an exit code, by the shell convention 128+N. This is a
/// heuristic: a process that calls `exit(137)` itself looks the same as one
/// killed by SIGKILL; the engine reports only the number. Codes 129..=159
/// (Linux signals 1..=31) map to names; anything else gives None.
pub fn signal_from_exit(exit: i64) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let n = exit.checked_sub(128)?;
    if (1..=31).contains(&n) {
        NAMES.get(usize::try_from(n - 1).ok()?).copied()
    } else {
        None
    }
}

/// A request body fed from a blocking reader on its own thread, through a
/// small bounded channel: memory stays at a few chunks whatever the size.
fn streaming_body(
    mut source: impl Read + Send + 'static,
) -> (impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ReaderTask) {
    const CHUNK: usize = 64 * 1024;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let task = tokio::task::spawn_blocking(move || -> Option<std::io::Error> {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match source.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => {
                    buf.truncate(n);
                    // The engine hung up (request failed): stop reading.
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return None;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kept = std::io::Error::new(e.kind(), e.to_string());
                    // Fail the request body so the engine does not unpack half a tar.
                    let _ = tx.blocking_send(Err(e));
                    return Some(kept);
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    (stream, ReaderTask(task))
}

struct ReaderTask(tokio::task::JoinHandle<Option<std::io::Error>>);

impl ReaderTask {
    /// The reader's error, if it had one.
    async fn finish(self) -> Option<std::io::Error> {
        match self.0.await {
            Ok(err) => err,
            Err(join) => Some(std::io::Error::other(format!("the archive reader panicked: {join}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compile-time check: with Send callbacks, every operation's future is
    /// Send, so callers can `tokio::spawn` them (e.g. an exec raced against
    /// a cancel signal).
    #[allow(dead_code)]
    fn futures_are_send(e: &Engine, c: &RunContainer, s: &ExecSpec, r: &RunContainerSpec) {
        fn is_send<T: Send>(_: T) {}
        is_send(Engine::connect());
        is_send(e.exec(c, s, |_, _| {}));
        is_send(e.upload(c, std::io::empty()));
        is_send(e.ensure_image("x", PullPolicy::Missing, |_| {}));
        is_send(e.build_image(std::io::empty(), "Dockerfile", "t", |_| {}));
        is_send(e.create_run_container(r));
        is_send(e.kill(c));
        is_send(e.reap_orphans());
    }

    /// Consecutive frames of a stream come out joined, in order, never
    /// across a change of stream, and a lone frame as it was.
    #[test]
    fn merged_frames_keep_their_order_and_their_stream() {
        let frames = [
            (Stream::Stdout, "a"),
            (Stream::Stdout, "b"),
            (Stream::Stderr, "c"),
            (Stream::Stdout, "d"),
            (Stream::Stdout, "e"),
            (Stream::Stdout, "f"),
        ];
        let mut out: Vec<(Stream, String)> = Vec::new();
        let mut keep = |s: Stream, b: &[u8]| out.push((s, String::from_utf8_lossy(b).into_owned()));
        let mut merged = Merge::default();
        for (s, b) in frames {
            merged.push(s, bytes::Bytes::from(b), &mut keep);
        }
        merged.flush(&mut keep);
        merged.flush(&mut keep);
        let want = [(Stream::Stdout, "ab"), (Stream::Stderr, "c"), (Stream::Stdout, "def")];
        assert_eq!(out, want.map(|(s, b)| (s, b.to_string())));

        // A chunk grows to EXEC_COALESCE_BYTES, then the next one starts.
        let frame = bytes::Bytes::from(vec![7u8; 32 * 1024]);
        let mut sizes = Vec::new();
        let mut merged = Merge::default();
        for _ in 0..20 {
            merged.push(Stream::Stdout, frame.clone(), &mut |_, b: &[u8]| sizes.push(b.len()));
        }
        merged.flush(&mut |_, b: &[u8]| sizes.push(b.len()));
        assert_eq!(sizes, [EXEC_COALESCE_BYTES, EXEC_COALESCE_BYTES, 4 * 32 * 1024]);
    }

    /// Eight relays at once on a `block_on` thread, fed by senders on the
    /// runtime's workers, as eight jobs streaming output are: every frame
    /// arrives and the relays end. With `try_recv` in the relay this hung
    /// (the thread parked while a sender was mid-send and took the wake-up
    /// meant for `block_on`), so a hang is the failure this looks for.
    #[test]
    fn relays_under_block_on_with_senders_on_other_threads_never_hang() {
        const RELAYS: usize = 8;
        const FRAMES: usize = 40_000;
        // The old relay hung in about half of the rounds.
        const ROUNDS: usize = 6;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            for _ in 0..ROUNDS {
                let got = rt.block_on(async {
                    let mut relays = futures_util::stream::FuturesUnordered::new();
                    for _ in 0..RELAYS {
                        let (tx, mut rx) = tokio::sync::mpsc::channel(EXEC_FRAMES_IN_FLIGHT);
                        tokio::spawn(async move {
                            for _ in 0..FRAMES {
                                if tx.send((Stream::Stdout, bytes::Bytes::from_static(b"x"))).await.is_err() {
                                    break;
                                }
                            }
                        });
                        relays.push(async move {
                            let mut got = 0;
                            relay_frames(&mut rx, &mut |_, b: &[u8]| got += b.len()).await;
                            got
                        });
                    }
                    let mut total = 0;
                    while let Some(n) = relays.next().await {
                        total += n;
                    }
                    total
                });
                let _ = done_tx.send(got);
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        for round in 0..ROUNDS {
            match done_rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                Ok(got) => assert_eq!(got, RELAYS * FRAMES, "round {round}"),
                Err(_) => panic!("the relays hung in round {round}: a wake-up meant for block_on was lost"),
            }
        }
    }

    #[test]
    fn podman_states_are_read_from_the_raw_inspect() {
        // Podman 4.3's answer for a container killed from outside.
        let v: serde_json::Value = serde_json::from_str(
            r#"{"Status":"stopped","Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":137}"#,
        )
        .unwrap();
        assert_eq!(
            ContainerStateLite::from_json(&v),
            ContainerStateLite { running: false, restarting: false, oom_killed: false, exit_code: 137 }
        );
        let oom: serde_json::Value =
            serde_json::from_str(r#"{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137}"#).unwrap();
        assert!(ContainerStateLite::from_json(&oom).oom_killed);
    }

    #[test]
    fn oom_kills_are_counted_from_either_cgroup_version() {
        assert_eq!(oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 2);
        assert_eq!(oom_kill_count("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n"), 1);
        assert_eq!(oom_kill_count(""), 0);
    }

    #[test]
    fn docker_commands_reach_the_chosen_engine() {
        let mut c = Chosen {
            context: "remote".into(),
            why: "DOCKER_CONTEXT=remote".into(),
            source: select::Source::ContextEnv,
            endpoint: "tcp://127.0.0.1:2376".into(),
            how: "TLS",
            config_dir: None,
        };
        assert_eq!(c.docker_command(&["rm", "-f", "x"]), "docker --context remote rm -f x");
        c.context = "default".into();
        assert_eq!(c.docker_command(&["ps"]), "docker -H tcp://127.0.0.1:2376 --tlsverify ps");
        c.how = "plain";
        c.endpoint = "unix:///tmp/a b.sock".into();
        assert_eq!(c.docker_command(&["ps"]), "docker -H 'unix:///tmp/a b.sock' ps");
        assert!(c.describe().starts_with("context default (DOCKER_CONTEXT=remote): unix:///tmp/a b.sock"));
        c.endpoint = "unix:///var/run/docker.sock".into();
        assert_eq!(c.docker_command(&["ps"]), "docker ps", "the docker CLI's default needs no flag");
        c.source = select::Source::DockerHost;
        assert_eq!(c.docker_command(&["ps"]), "docker -H unix:///var/run/docker.sock ps");
    }

    #[test]
    fn default_tag_is_added_only_when_missing() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("busybox:1"), "busybox:1");
        assert_eq!(with_default_tag("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
        assert_eq!(with_default_tag("127.0.0.1:5000/a/b:x"), "127.0.0.1:5000/a/b:x");
        assert_eq!(with_default_tag("a@sha256:00"), "a@sha256:00");
    }

    #[test]
    fn cwd_stays_inside_work() {
        assert_eq!(resolve_cwd(None).ok().as_deref(), Some("/work"));
        assert_eq!(resolve_cwd(Some("src/x")).ok().as_deref(), Some("/work/src/x"));
        assert_eq!(resolve_cwd(Some("/work")).ok().as_deref(), Some("/work"));
        assert_eq!(resolve_cwd(Some("/work/a/../b")).ok().as_deref(), Some("/work/b"));
        for bad in ["/etc", "/workshop", "..", "a/../../x", "/work/.."] {
            assert!(matches!(resolve_cwd(Some(bad)), Err(EngineError::BadCwd { .. })), "{bad} accepted");
        }
    }

    #[test]
    fn signals_follow_128_plus_n() {
        assert_eq!(signal_from_exit(137), Some("SIGKILL"));
        assert_eq!(signal_from_exit(143), Some("SIGTERM"));
        assert_eq!(signal_from_exit(130), Some("SIGINT"));
        assert_eq!(signal_from_exit(3), None);
        assert_eq!(signal_from_exit(128), None);
        assert_eq!(signal_from_exit(160), None);
    }

    #[test]
    fn container_names_are_docker_safe() {
        assert_eq!(container_name("20261124T214338Z-ab/c d"), "quire-ci-20261124T214338Z-ab-c-d");
    }
}
