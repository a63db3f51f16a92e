//! Version negotiation by `GET /_ping` on a local socket.
//!
//! bollard negotiates by asking `/version`, for which the engine first
//! gathers its components' versions (containerd, runc): 15-60 ms on a
//! loaded machine, against about 1 ms for `/_ping`, whose `Api-Version`
//! header says the same thing. That difference is most of what the
//! pre-push hook costs on a tree that already passed, so a local socket
//! is pinged by hand, one request that both proves the engine answers and
//! gives its API version. An engine whose ping has no such header (or any
//! failure) goes the old way, which also words the errors.
//!
//! Owns: that one request and reading its answer. Must not know about:
//! anything after the connection.

use bollard::ClientVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most of an answer read: a ping's head is a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

/// Pings the engine on the unix socket at `path`: `Ok(Some(v))` when it
/// answered 200 with an `Api-Version` header, `Ok(None)` when the header
/// was missing or unreadable.
pub async fn api_version(path: &str) -> std::io::Result<Option<ClientVersion>> {
    let mut stream = tokio::net::UnixStream::connect(path).await?;
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: quire-ci\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    read_head(&String::from_utf8_lossy(&head))
}

/// Reads an HTTP answer's head: an error unless its status is 200, then
/// the `Api-Version` header as a version, if there is one.
fn read_head(head: &str) -> std::io::Result<Option<ClientVersion>> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(std::io::Error::other(format!("the ping was answered {status:?}")));
    }
    Ok(lines.take_while(|l| !l.is_empty()).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("api-version") {
            return None;
        }
        let (major, minor) = value.trim().split_once('.')?;
        Some(ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
    }))
}

/// The version to speak: the engine's, when it is older than bollard's.
pub fn lower(server: ClientVersion, ours: &ClientVersion) -> ClientVersion {
    if server < *ours {
        server
    } else {
        *ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: usize, minor: usize) -> ClientVersion {
        ClientVersion { major_version: major, minor_version: minor }
    }

    #[test]
    fn reads_the_api_version_header_of_a_200() {
        let head = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 0\r\n\r\n";
        let got = read_head(head).unwrap().unwrap();
        assert_eq!((got.major_version, got.minor_version), (1, 41));
        let podman = "HTTP/1.1 200 OK\r\nLibpod-Api-Version: 5.4.2\r\nAPI-VERSION: 1.44\r\n\r\n";
        let got = read_head(podman).unwrap().unwrap();
        assert_eq!((got.major_version, got.minor_version), (1, 44));
    }

    #[test]
    fn no_header_is_none_and_another_status_an_error() {
        assert!(read_head("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nApi-Version: 1.2\r\n").unwrap().is_none());
        assert!(read_head("HTTP/1.1 200 OK\r\nApi-Version: one\r\n\r\n").unwrap().is_none());
        assert!(read_head("HTTP/1.1 404 Not Found\r\nApi-Version: 1.41\r\n\r\n").is_err());
        assert!(read_head("").is_err());
    }

    #[test]
    fn speaks_the_older_of_the_two() {
        let ours = v(1, 47);
        assert!(lower(v(1, 41), &ours) == v(1, 41));
        assert!(lower(v(1, 52), &ours) == v(1, 47));
        assert!(lower(v(2, 0), &ours) == v(1, 47));
    }
}
