//! Registry credentials from the docker config, as `docker pull` and
//! `docker build` find them: `credHelpers`, `auths` (inline `auth`,
//! username/password, identity tokens) and `credsStore`, through the
//! `docker_credential` crate (it runs `docker-credential-*` helpers).
//!
//! Owns: which registry an image lives in, the credentials for it, and
//! recognising a registry's "log in first". Must not know about: the API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::auth::DockerCredentials;
use docker_credential::{CredentialRetrievalError, DockerCredential};

/// Docker Hub's name in references, and its key in the docker config.
const HUB: &str = "docker.io";
const HUB_KEY: &str = "https://index.docker.io/v1/";

/// The registry a reference is pulled from: its first component when that
/// looks like a host (has a `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => HUB.to_string(),
    }
}

/// What `docker login` takes for this registry.
pub fn login_host(registry: &str) -> &str {
    if registry == HUB {
        ""
    } else {
        registry
    }
}

/// Credentials for `registry` from the docker config in `config_dir`;
/// None when the config has none for it (or there is no config).
pub fn credentials(config_dir: Option<&Path>, registry: &str) -> Result<Option<DockerCredentials>, String> {
    let Some(file) = config_file(config_dir) else {
        return Ok(None);
    };
    let text = match std::fs::read(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let key = if registry == HUB { HUB_KEY } else { registry };
    match docker_credential::get_credential_from_reader(text.as_slice(), key) {
        Ok(c) => Ok(Some(to_bollard(c, key))),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(None),
        Err(e) => Err(format!("the credentials for {registry} in {}: {e}", file.display())),
    }
}

/// Every registry the docker config knows credentials for (its `auths`
/// and `credHelpers` keys; `docker login` with a `credsStore` still writes
/// an empty `auths` entry), each with its credentials: what the docker CLI
/// sends with a classic build, for the Dockerfile's `FROM` images.
pub fn all_credentials(config_dir: Option<&Path>) -> Result<HashMap<String, DockerCredentials>, String> {
    let mut out = HashMap::new();
    let Some(file) = config_file(config_dir) else {
        return Ok(out);
    };
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(out);
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut keys: Vec<String> = Vec::new();
    for section in ["auths", "credHelpers"] {
        if let Some(map) = v.get(section).and_then(|m| m.as_object()) {
            keys.extend(map.keys().cloned());
        }
    }
    for key in keys {
        let registry = normalize(&key);
        if out.contains_key(&registry) {
            continue;
        }
        if let Some(c) = credentials(config_dir, &registry)? {
            out.insert(registry, c);
        }
    }
    Ok(out)
}

fn config_file(config_dir: Option<&Path>) -> Option<PathBuf> {
    config_dir.map(|d| d.join("config.json"))
}

/// A config key (`https://host/v1/`, `host`) as a registry name.
fn normalize(key: &str) -> String {
    if key == HUB_KEY || key == "index.docker.io" {
        return HUB.to_string();
    }
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    k.split('/').next().unwrap_or(k).to_string()
}

fn to_bollard(c: DockerCredential, server: &str) -> DockerCredentials {
    match c {
        DockerCredential::IdentityToken(t) => {
            DockerCredentials { identitytoken: Some(t), serveraddress: Some(server.to_string()), ..Default::default() }
        }
        DockerCredential::UsernamePassword(u, p) => DockerCredentials {
            username: Some(u),
            password: Some(p),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        },
    }
}

/// Does the engine's message say the registry wants (other) credentials?
/// Docker: "no basic auth credentials", "unauthorized: authentication
/// required", "pull access denied ... may require 'docker login'"; Podman:
/// "authentication required", "401 Unauthorized".
pub fn is_auth_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["no basic auth credentials", "unauthorized", "authentication required", "may require 'docker login'", "401"]
        .iter()
        .any(|p| m.contains(p))
}

/// The registry a build's auth refusal is about, from the URL in the
/// builder's message (`Head "https://host:port/v2/...": ...`).
pub fn registry_in_message(message: &str) -> Option<String> {
    let at = message.find("://")?;
    let rest = &message[at + 3..];
    let host: String = rest.chars().take_while(|c| !matches!(c, '/' | '"' | ' ')).collect();
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_the_first_component_when_it_is_a_host() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5001/team/img"), "127.0.0.1:5001");
        assert_eq!(registry_of("registry.example/team/img:tag"), "registry.example");
        assert_eq!(registry_of("localhost/img"), "localhost");
        assert_eq!(login_host("docker.io"), "");
    }

    #[test]
    fn credentials_come_from_auths_by_registry() {
        let tmp = tempfile::tempdir().unwrap();
        // "u:p" in base64; a second registry by its https://…/v1/ key.
        std::fs::write(
            tmp.path().join("config.json"),
            r#"{"auths":{"127.0.0.1:5001":{"auth":"dTpw"},"https://reg.example/v1/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let c = credentials(Some(tmp.path()), "127.0.0.1:5001").unwrap().unwrap();
        assert_eq!((c.username.as_deref(), c.password.as_deref()), (Some("u"), Some("p")));
        assert!(credentials(Some(tmp.path()), "other:5000").unwrap().is_none());
        let all = all_credentials(Some(tmp.path())).unwrap();
        let mut names: Vec<_> = all.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["127.0.0.1:5001", "reg.example"]);
        assert_eq!(all["reg.example"].username.as_deref(), Some("a"));
        assert!(credentials(None, "x").unwrap().is_none());
    }

    #[test]
    fn auth_refusals_are_recognised() {
        assert!(is_auth_refusal("Head \"https://127.0.0.1:5001/v2/a/manifests/latest\": no basic auth credentials"));
        assert!(is_auth_refusal("pull access denied for x, repository does not exist or may require 'docker login'"));
        assert!(!is_auth_refusal("manifest for x:latest not found: manifest unknown"));
        assert_eq!(
            registry_in_message("Head \"https://127.0.0.1:5001/v2/a/manifests/latest\": no basic auth credentials")
                .as_deref(),
            Some("127.0.0.1:5001")
        );
    }
}
