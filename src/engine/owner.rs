//! Who owns a run container: the labels written at create time and the rule
//! that decides, later and possibly from another quire-ci process, whether
//! that owner is still alive. Owns: label names, boot id, process start
//! time, the liveness rule. Must not know about: Docker calls (the caller
//! lists containers and removes them; this file only judges labels).

use std::collections::HashMap;

pub const LABEL_RUN: &str = "quire-ci.run";
pub const LABEL_OWNER_PID: &str = "quire-ci.owner-pid";
/// /proc/sys/kernel/random/boot_id: a pid is only meaningful within one boot.
pub const LABEL_OWNER_BOOT: &str = "quire-ci.owner-boot";
/// The owner's start time in clock ticks since boot (/proc/PID/stat field 22),
/// so a pid recycled by an unrelated process is not mistaken for the owner.
pub const LABEL_OWNER_START: &str = "quire-ci.owner-start";
/// The owner's hostname: with a shared or remote engine, a different boot id
/// may just be another machine whose quire-ci is alive.
pub const LABEL_OWNER_HOST: &str = "quire-ci.owner-host";
pub const LABEL_REPO: &str = "quire-ci.repo";
/// Set on a container kept with `--keep`: the user asked for it to outlive
/// its run, so reaping never takes it (they remove it with `docker rm -f`).
pub const LABEL_KEEP: &str = "quire-ci.keep";

/// This process as an owner, as written into labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub boot: String,
    pub start: Option<u64>,
    pub host: String,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            boot: boot_id(),
            start: process_start(pid),
            host: hostname(),
        }
    }

    pub fn labels(&self) -> Vec<(String, String)> {
        let mut l = vec![
            (LABEL_OWNER_PID.to_string(), self.pid.to_string()),
            (LABEL_OWNER_BOOT.to_string(), self.boot.clone()),
            (LABEL_OWNER_HOST.to_string(), self.host.clone()),
        ];
        if let Some(s) = self.start {
            l.push((LABEL_OWNER_START.to_string(), s.to_string()));
        }
        l
    }
}

/// The verdict on one labelled container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its owner is gone: remove it.
    Orphan,
    /// Its owner is alive, or we cannot be sure it is not: keep it.
    Keep,
}

/// The reaping rule. `me` is this process's view of the host; `alive(pid,
/// start)` answers whether a process with that pid (and start time, when
/// known) exists on this host now. Conservative: whatever we cannot judge is
/// kept, because removing a live run's container would break someone's run.
pub fn judge(
    labels: &HashMap<String, String>,
    me: &Owner,
    alive: impl Fn(u32, Option<u64>) -> bool,
) -> Verdict {
    if labels.get(LABEL_KEEP).is_some_and(|v| v == "true") {
        return Verdict::Keep;
    }
    let Some(pid) = labels
        .get(LABEL_OWNER_PID)
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return Verdict::Keep;
    };
    let host = labels.get(LABEL_OWNER_HOST);
    if host.is_some_and(|h| h != &me.host) {
        // Another machine's container on a shared engine: we cannot see its processes.
        return Verdict::Keep;
    }
    match labels.get(LABEL_OWNER_BOOT) {
        Some(boot) if boot != &me.boot => {
            // Same host (or an old label without one), another boot: every
            // process of that boot is gone. Without a host label we cannot
            // tell a reboot from another machine, so keep.
            if host.is_some() {
                Verdict::Orphan
            } else {
                Verdict::Keep
            }
        }
        Some(_) => {
            let start = labels
                .get(LABEL_OWNER_START)
                .and_then(|s| s.parse::<u64>().ok());
            if alive(pid, start) {
                Verdict::Keep
            } else {
                Verdict::Orphan
            }
        }
        None => Verdict::Keep,
    }
}

/// Is `pid` alive on this host, and (when `start` is given) the same process
/// that wrote the label rather than a recycled pid?
pub fn process_alive(pid: u32, start: Option<u64>) -> bool {
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return false;
    }
    match (start, process_start(pid)) {
        (Some(want), Some(have)) => want == have,
        // No start time to compare: a live pid counts as the owner.
        _ => true,
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Field 22 (starttime) of /proc/PID/stat. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after the last ')'.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')' come fields 3, 4, ...; field 22 is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owner {
        Owner {
            pid: 10,
            boot: "boot-a".into(),
            start: Some(5),
            host: "h".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kept_containers_are_never_orphans() {
        let l = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-a"),
            (LABEL_OWNER_HOST, "h"),
            (LABEL_KEEP, "true"),
        ]);
        assert_eq!(judge(&l, &me(), |_, _| false), Verdict::Keep);
    }

    #[test]
    fn dead_pid_same_boot_is_orphan_live_is_kept() {
        let l = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-a"),
            (LABEL_OWNER_HOST, "h"),
        ]);
        assert_eq!(judge(&l, &me(), |_, _| false), Verdict::Orphan);
        assert_eq!(judge(&l, &me(), |_, _| true), Verdict::Keep);
    }

    #[test]
    fn other_boot_same_host_is_orphan_even_if_pid_exists() {
        let l = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-old"),
            (LABEL_OWNER_HOST, "h"),
        ]);
        assert_eq!(judge(&l, &me(), |_, _| true), Verdict::Orphan);
    }

    #[test]
    fn other_host_or_unparseable_labels_are_kept() {
        let other = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-b"),
            (LABEL_OWNER_HOST, "elsewhere"),
        ]);
        assert_eq!(judge(&other, &me(), |_, _| false), Verdict::Keep);
        let junk = labels(&[(LABEL_OWNER_PID, "x"), (LABEL_OWNER_BOOT, "boot-a")]);
        assert_eq!(judge(&junk, &me(), |_, _| false), Verdict::Keep);
    }

    #[test]
    fn start_time_is_passed_to_the_liveness_check() {
        let l = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-a"),
            (LABEL_OWNER_START, "123"),
        ]);
        assert_eq!(judge(&l, &me(), |_, s| s == Some(123)), Verdict::Keep);
        assert_eq!(judge(&l, &me(), |_, s| s == Some(999)), Verdict::Orphan);
    }

    #[test]
    fn this_process_is_alive_and_its_start_time_matches() {
        let me = Owner::current();
        assert!(
            me.start.is_some(),
            "/proc/self/stat should give a start time on Linux"
        );
        assert!(process_alive(me.pid, me.start));
        assert!(
            !process_alive(me.pid, me.start.map(|s| s + 1)),
            "a recycled pid must not count"
        );
    }
}
