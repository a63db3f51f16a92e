//! The engine room's errors: every way talking to a Docker-API engine can go
//! wrong, each naming the thing it is about (socket, image, container) and
//! saying what to do. Owns: `EngineError`. Must not know about: Lua, the
//! terminal (miette renders these; this file only describes them).

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum EngineError {
    /// No engine answered at any place we looked.
    #[error("no container engine answered; tried:\n{}", .tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"))]
    #[diagnostic(
        code(quire_ci::engine::unreachable),
        help(
            "start Docker (`sudo systemctl start docker`, or `sudo dockerd &`) or Podman \
             (`systemctl --user start podman.socket`), or point DOCKER_HOST at a running \
             engine, e.g. DOCKER_HOST=unix:///run/user/1000/podman/podman.sock or \
             DOCKER_HOST=tcp://127.0.0.1:2375"
        )
    )]
    Unreachable { tried: Vec<String> },

    /// `DOCKER_HOST` names a scheme we cannot speak.
    #[error("DOCKER_HOST={host} uses a scheme quire-ci cannot speak")]
    #[diagnostic(
        code(quire_ci::engine::unsupported_host),
        help("use unix:///path/to/docker.sock, tcp://HOST:PORT (with DOCKER_TLS_VERIFY=1 for TLS), https://HOST:PORT or ssh://[USER@]HOST[:PORT]")
    )]
    UnsupportedHost { host: String },

    /// A context named by DOCKER_CONTEXT or `currentContext` that does not
    /// exist (or has no docker endpoint): never a silent fallback.
    #[error("docker context {context} (from {why}) cannot be used: {looked}")]
    #[diagnostic(
        code(quire_ci::engine::context_not_found),
        help("`docker context ls` lists the contexts; `docker context use default` or DOCKER_CONTEXT=default goes back to the local engine")
    )]
    ContextNotFound { context: String, why: String, looked: String },

    /// The engine the user chose (a context or DOCKER_HOST) did not answer.
    #[error("{chosen} points at {endpoint}, which does not answer: {why}")]
    #[diagnostic(
        code(quire_ci::engine::chosen_unreachable),
        help("start that engine, or choose another: `docker context use NAME`, DOCKER_CONTEXT=NAME, DOCKER_HOST=...; DOCKER_CONTEXT=default is the local engine")
    )]
    ChosenUnreachable { chosen: String, endpoint: String, why: String },

    /// The docker config (config.json, a context's meta.json) cannot be read.
    #[error("cannot read the docker config {}: {problem}", .file.display())]
    #[diagnostic(code(quire_ci::engine::docker_config), help("fix or remove the file (docker itself reads it too)"))]
    DockerConfig { file: std::path::PathBuf, problem: String },

    /// TLS asked for, without what it needs.
    #[error("TLS to {endpoint}: {problem}")]
    #[diagnostic(
        code(quire_ci::engine::tls),
        help("put ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (or the context's TLS store: `docker context create NAME --docker host=...,ca=...,cert=...,key=...`)")
    )]
    TlsMaterial { endpoint: String, problem: String },

    /// The registry refused the pull for want of (valid) credentials.
    /// `hint` is part of the message: runs report engine errors as text.
    #[error("registry {registry} refused {image}: {reason}; {hint}")]
    #[diagnostic(code(quire_ci::engine::registry_auth))]
    RegistryAuth { image: String, registry: String, reason: String, hint: String },

    /// The docker config's credentials for a registry cannot be read
    /// (a credential helper failed, a malformed `auth`).
    #[error("credentials for {registry}: {problem}")]
    #[diagnostic(
        code(quire_ci::engine::credentials),
        help("check `docker login {registry}` works; a credential helper must be on PATH")
    )]
    Credentials { registry: String, problem: String },

    /// The image is not present and could not be pulled (or pulling was not allowed).
    #[error("image {image} is not available: {reason}")]
    #[diagnostic(
        code(quire_ci::engine::image_unavailable),
        help("check the image name and tag, `docker login` for a private registry, or build/pull it yourself")
    )]
    ImageUnavailable { image: String, reason: String },

    /// `docker build` failed; `message` is the builder's own message.
    #[error("building image {tag} failed: {message}")]
    #[diagnostic(code(quire_ci::engine::build_failed))]
    BuildFailed { tag: String, message: String },

    /// The run container stopped existing or running under a command; distinct
    /// from the command's own non-zero exit. `reason` is one of `oom-killed`,
    /// `killed (exit 137)`, `exited (exit N)`, `removed`, `engine connection lost, was it stopped or restarted? (...)`.
    #[error("container {container} died: {reason}")]
    #[diagnostic(
        code(quire_ci::engine::container_died),
        help("the run's container was OOM-killed, killed or removed from outside, or the engine restarted")
    )]
    ContainerDied { container: String, reason: String },

    /// A working directory for `sh` outside `/work`.
    #[error("working directory {cwd:?} is outside /work")]
    #[diagnostic(
        code(quire_ci::engine::bad_cwd),
        help("give :cwd relative to the repository root, or an absolute path under /work")
    )]
    BadCwd { cwd: String },

    /// Anything else the engine said no to, with what we were doing at the time.
    #[error("container engine error while {action}: {}", message_of(.source))]
    #[diagnostic(code(quire_ci::engine::api))]
    Api {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// Reading the tar we were streaming into the engine failed.
    #[error("reading the archive for {target} failed: {source}")]
    #[diagnostic(code(quire_ci::engine::archive_read))]
    ArchiveRead {
        target: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    pub(crate) fn api(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        EngineError::Api { action: action.into(), source }
    }
}

/// The engine's HTTP status for an error, when it answered with one.
pub(crate) fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words for an error, without bollard's wrapping. When the
/// engine did not answer at all, what the socket said ("connection refused",
/// "no such socket") rather than the HTTP client's layers of wrapping.
pub(crate) fn message_of(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => match transport_failure(other) {
            Some(cause) => format!("the engine is not answering ({cause})"),
            None => other.to_string(),
        },
    }
}

/// Why no HTTP exchange with the engine happened, if that is what `e` is:
/// the I/O error at the bottom of its source chain, in words.
pub(crate) fn transport_failure(e: &bollard::errors::Error) -> Option<String> {
    use std::io::ErrorKind;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".to_string(),
                ErrorKind::NotFound => "its socket is gone".to_string(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => {
                    "the connection was cut".to_string()
                }
                ErrorKind::PermissionDenied => "permission denied on its socket".to_string(),
                _ => io.to_string(),
            });
        }
        cause = c.source();
    }
    match e {
        bollard::errors::Error::HyperLegacyError { .. } | bollard::errors::Error::RequestTimeoutError => {
            Some("no answer".to_string())
        }
        _ => None,
    }
}
