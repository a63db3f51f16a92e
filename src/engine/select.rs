//! Which engine to talk to, decided as the docker CLI decides it:
//! `DOCKER_HOST`, then `DOCKER_CONTEXT`, then `currentContext` of the docker
//! config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), with
//! a named context's endpoint and TLS material read from the config's
//! context store; the `default` context is quire-ci's own socket search.
//! See docs/engine.md.
//!
//! Owns: reading the environment and the docker config's context store.
//! Must not know about: connecting (engine.rs does that with the result).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::EngineError;

/// The environment the choice is made from (the process's, or a test's).
#[derive(Debug, Clone, Default)]
pub struct SelectEnv {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub tls_verify: bool,
    /// `DOCKER_TLS`: TLS without `DOCKER_TLS_VERIFY`.
    pub tls: bool,
    pub cert_path: Option<PathBuf>,
    pub xdg_runtime_dir: Option<String>,
}

impl SelectEnv {
    pub fn from_process() -> SelectEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        SelectEnv {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            tls: var("DOCKER_TLS").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
        }
    }

    /// The docker config directory: `DOCKER_CONFIG`, else `~/.docker`.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.docker_config.clone().or_else(|| self.home.as_ref().map(|h| h.join(".docker")))
    }
}

/// TLS material for one endpoint. The server's certificate is always
/// verified against `ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Tls {
    fn in_dir(dir: &Path) -> Tls {
        Tls { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") }
    }
}

/// Why this engine: what the user set that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `DOCKER_HOST` (the `default` context with its host overridden).
    DockerHost,
    /// `DOCKER_CONTEXT`.
    ContextEnv,
    /// `currentContext` in this config file (`docker context use`).
    CurrentContext(PathBuf),
    /// Nothing set: the `default` context.
    Default,
}

/// The chosen context and the endpoints to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// `default` or the context's name.
    pub context: String,
    pub source: Source,
    /// One endpoint for anything the user named; the socket search for the
    /// `default` context without DOCKER_HOST.
    pub endpoints: Vec<(String, Option<Tls>)>,
}

impl Selection {
    /// The user named this engine (any source but the bare default): only
    /// it may be used, never a fallback.
    pub fn explicit(&self) -> bool {
        self.source != Source::Default || self.context != "default"
    }

    /// Why, in words: "DOCKER_CONTEXT=remote", "DOCKER_HOST", ...
    pub fn why(&self) -> String {
        match &self.source {
            Source::DockerHost => "DOCKER_HOST is set".to_string(),
            Source::ContextEnv if self.context == "default" => "DOCKER_CONTEXT=default".to_string(),
            Source::ContextEnv => format!("DOCKER_CONTEXT={}", self.context),
            Source::CurrentContext(file) => format!("currentContext in {}", file.display()),
            Source::Default => "no DOCKER_HOST, DOCKER_CONTEXT or currentContext".to_string(),
        }
    }

    /// The context as the docker CLI names it, with why.
    pub fn describe(&self) -> String {
        format!("context {} ({})", self.context, self.why())
    }
}

/// The docker CLI's order. `DOCKER_HOST` wins over everything (as it does
/// for `docker`), then `DOCKER_CONTEXT`, then `currentContext`.
pub fn select(env: &SelectEnv) -> Result<Selection, EngineError> {
    if let Some(host) = &env.docker_host {
        let tls = host_tls(env, host)?;
        return Ok(Selection {
            context: "default".into(),
            source: Source::DockerHost,
            endpoints: vec![(host.clone(), tls)],
        });
    }
    let config_dir = env.config_dir();
    let (name, source) = if let Some(c) = &env.docker_context {
        (c.clone(), Source::ContextEnv)
    } else {
        match config_dir.as_deref().map(|d| d.join("config.json")) {
            Some(file) => match current_context(&file)? {
                Some(c) => (c, Source::CurrentContext(file)),
                None => ("default".to_string(), Source::Default),
            },
            None => ("default".to_string(), Source::Default),
        }
    };
    if name == "default" {
        let endpoints = default_sockets(env.xdg_runtime_dir.as_deref()).into_iter().map(|s| (s, None)).collect();
        return Ok(Selection { context: name, source, endpoints });
    }
    let Some(dir) = config_dir else {
        return Err(EngineError::ContextNotFound {
            context: name,
            why: source_words(&source),
            looked: "no docker config directory: neither DOCKER_CONFIG nor HOME is set".into(),
        });
    };
    let endpoint = read_context(&dir, &name, &source)?;
    Ok(Selection { context: name, source, endpoints: vec![endpoint] })
}

fn source_words(source: &Source) -> String {
    match source {
        Source::ContextEnv => "DOCKER_CONTEXT".into(),
        Source::CurrentContext(f) => format!("currentContext in {}", f.display()),
        _ => "the default".into(),
    }
}

/// TLS for an endpoint named by DOCKER_HOST: `DOCKER_TLS_VERIFY` or
/// `DOCKER_TLS` or an `https://` host, with the certificates in
/// `DOCKER_CERT_PATH` (default: the docker config directory).
fn host_tls(env: &SelectEnv, host: &str) -> Result<Option<Tls>, EngineError> {
    if !(env.tls_verify || env.tls || host.starts_with("https://")) {
        return Ok(None);
    }
    let dir = env.cert_path.clone().or_else(|| env.config_dir()).ok_or_else(|| EngineError::TlsMaterial {
        endpoint: host.to_string(),
        problem: "TLS is asked for but neither DOCKER_CERT_PATH, DOCKER_CONFIG nor HOME is set".into(),
    })?;
    Ok(Some(Tls::in_dir(&dir)))
}

/// `currentContext` of a docker config file; None when the file is
/// missing or names none.
fn current_context(file: &Path) -> Result<Option<String>, EngineError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::DockerConfig { file: file.to_path_buf(), problem: e.to_string() }),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| EngineError::DockerConfig { file: file.to_path_buf(), problem: e.to_string() })?;
    Ok(v.get("currentContext").and_then(|c| c.as_str()).filter(|c| !c.is_empty()).map(str::to_string))
}

/// The context store's directory name for a context: the hex SHA-256 of
/// its name (the docker CLI's layout).
pub fn context_dir_name(name: &str) -> String {
    format!("{:x}", Sha256::digest(name.as_bytes()))
}

/// A named context's docker endpoint and TLS material.
fn read_context(config_dir: &Path, name: &str, source: &Source) -> Result<(String, Option<Tls>), EngineError> {
    let id = context_dir_name(name);
    let meta = config_dir.join("contexts").join("meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| EngineError::ContextNotFound {
        context: name.to_string(),
        why: source_words(source),
        looked: if e.kind() == std::io::ErrorKind::NotFound {
            format!("no such context: {} does not exist", meta.display())
        } else {
            format!("cannot read {}: {e}", meta.display())
        },
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| EngineError::DockerConfig { file: meta.clone(), problem: e.to_string() })?;
    let docker = v.get("Endpoints").and_then(|e| e.get("docker"));
    let host = docker.and_then(|d| d.get("Host")).and_then(|h| h.as_str()).filter(|h| !h.is_empty());
    let Some(host) = host else {
        return Err(EngineError::ContextNotFound {
            context: name.to_string(),
            why: source_words(source),
            looked: format!("{} has no docker endpoint Host", meta.display()),
        });
    };
    let skip_verify = docker.and_then(|d| d.get("SkipTLSVerify")).and_then(|s| s.as_bool()).unwrap_or(false);
    let tls_dir = config_dir.join("contexts").join("tls").join(&id).join("docker");
    let tls = if tls_dir.join("ca.pem").exists() {
        Some(Tls::in_dir(&tls_dir))
    } else if skip_verify || host.starts_with("https://") {
        return Err(EngineError::TlsMaterial {
            endpoint: host.to_string(),
            problem: format!(
                "context {name} asks for TLS{} but has no CA certificate ({}); quire-ci always verifies the engine's certificate",
                if skip_verify { " without verification" } else { "" },
                tls_dir.join("ca.pem").display()
            ),
        });
    } else {
        None
    };
    Ok((host.to_string(), tls))
}

/// The `default` context without DOCKER_HOST: the rootful Docker socket,
/// then Docker rootless and Podman sockets of this user, then rootful Podman.
pub fn default_sockets(xdg_runtime_dir: Option<&str>) -> Vec<String> {
    let mut c = vec!["unix:///var/run/docker.sock".to_string()];
    if let Some(x) = xdg_runtime_dir.filter(|x| !x.is_empty()) {
        c.push(format!("unix://{x}/docker.sock"));
        c.push(format!("unix://{x}/podman/podman.sock"));
    }
    c.push("unix:///run/podman/podman.sock".to_string());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_context(dir: &Path, name: &str, host: &str) {
        let meta = dir.join("contexts/meta").join(context_dir_name(name));
        std::fs::create_dir_all(&meta).unwrap();
        let json = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(meta.join("meta.json"), json.to_string()).unwrap();
    }

    #[test]
    fn context_directory_is_the_sha256_of_the_name() {
        // `docker context create remote` stores it under this directory.
        assert_eq!(context_dir_name("remote"), "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a");
        assert_eq!(context_dir_name("default").len(), 64);
    }

    #[test]
    fn order_is_docker_host_then_docker_context_then_current_context() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().to_path_buf();
        write_context(&cfg, "remote", "tcp://127.0.0.1:2376");
        write_context(&cfg, "other", "unix:///tmp/other.sock");
        std::fs::write(cfg.join("config.json"), r#"{"currentContext":"other"}"#).unwrap();
        let mut env = SelectEnv { docker_config: Some(cfg.clone()), ..Default::default() };

        let s = select(&env).unwrap();
        assert_eq!(s.context, "other");
        assert_eq!(s.source, Source::CurrentContext(cfg.join("config.json")));
        assert_eq!(s.endpoints, vec![("unix:///tmp/other.sock".to_string(), None)]);

        env.docker_context = Some("remote".into());
        let s = select(&env).unwrap();
        assert_eq!((s.context.as_str(), &s.source), ("remote", &Source::ContextEnv));
        assert_eq!(s.endpoints[0].0, "tcp://127.0.0.1:2376");

        env.docker_host = Some("tcp://10.1.1.1:2375".into());
        let s = select(&env).unwrap();
        assert_eq!((s.context.as_str(), &s.source), ("default", &Source::DockerHost));
        assert_eq!(s.endpoints, vec![("tcp://10.1.1.1:2375".to_string(), None)]);

        env.docker_host = None;
        env.docker_context = Some("default".into());
        let s = select(&env).unwrap();
        assert_eq!(s.endpoints.len(), 2, "default: the socket search");
        assert!(s.explicit(), "DOCKER_CONTEXT=default is still the user's word");
        assert!(s.describe().contains("DOCKER_CONTEXT=default"));
    }

    #[test]
    fn a_missing_context_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let env = SelectEnv {
            docker_config: Some(tmp.path().into()),
            docker_context: Some("gone".into()),
            ..Default::default()
        };
        match select(&env) {
            Err(EngineError::ContextNotFound { context, why, .. }) => {
                assert_eq!(context, "gone");
                assert_eq!(why, "DOCKER_CONTEXT");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_comes_from_the_context_store_or_docker_cert_path() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().to_path_buf();
        write_context(&cfg, "secure", "tcp://127.0.0.1:2376");
        let tls_dir = cfg.join("contexts/tls").join(context_dir_name("secure")).join("docker");
        std::fs::create_dir_all(&tls_dir).unwrap();
        std::fs::write(tls_dir.join("ca.pem"), "x").unwrap();
        let env =
            SelectEnv { docker_config: Some(cfg.clone()), docker_context: Some("secure".into()), ..Default::default() };
        let s = select(&env).unwrap();
        assert_eq!(s.endpoints[0].1, Some(Tls::in_dir(&tls_dir)));

        let env = SelectEnv {
            docker_host: Some("tcp://127.0.0.1:2376".into()),
            tls_verify: true,
            cert_path: Some("/certs".into()),
            ..Default::default()
        };
        assert_eq!(select(&env).unwrap().endpoints[0].1, Some(Tls::in_dir(Path::new("/certs"))));
        let env = SelectEnv { docker_host: Some("tcp://127.0.0.1:2375".into()), ..Default::default() };
        assert_eq!(select(&env).unwrap().endpoints[0].1, None);
    }

    #[test]
    fn default_sockets_in_order() {
        assert_eq!(
            default_sockets(Some("/run/user/1")),
            vec![
                "unix:///var/run/docker.sock",
                "unix:///run/user/1/docker.sock",
                "unix:///run/user/1/podman/podman.sock",
                "unix:///run/podman/podman.sock"
            ]
        );
        assert_eq!(default_sockets(None).len(), 2);
    }
}
