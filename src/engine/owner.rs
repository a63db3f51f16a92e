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
/// The owner's pid namespace (the inode of /proc/self/ns/pid): the pid label
/// means something only inside that namespace. A quire-ci under `unshare
/// --pid` or in a container (even with `--network host`: same hostname and
/// boot id) has pids of its own.
pub const LABEL_OWNER_PIDNS: &str = "quire-ci.owner-pidns";
pub const LABEL_REPO: &str = "quire-ci.repo";
/// The initial pid namespace's inode (PROC_PID_INIT_INO in the kernel): a
/// process in it sees every process of the machine.
const INIT_PIDNS: &str = "4026531836";
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
    /// Inode of the pid namespace, "" when /proc does not tell.
    pub pidns: String,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            boot: boot_id(),
            start: if proc_is_mine() { process_start(pid) } else { None },
            host: hostname(),
            pidns: pid_namespace(),
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
        if !self.pidns.is_empty() {
            l.push((LABEL_OWNER_PIDNS.to_string(), self.pidns.clone()));
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

/// What the judge may ask about processes. Real answers come from /proc
/// ([`ProcHost`]); unit tests give their own.
pub trait Processes {
    /// Is a process with this pid (in our own pid namespace) alive, and
    /// when `start` is given the one started then rather than a recycled pid?
    /// `None` when /proc is not our namespace's and cannot tell.
    fn alive_here(&self, pid: u32, start: Option<u64>) -> Option<bool>;
    /// `Some(answer)` when we can see every process of the machine (we are
    /// in the initial pid namespace with its /proc): is there a process, in
    /// any namespace, whose own pid is `pid` (and which started at `start`,
    /// when given)? `None` when processes of other namespaces may be hidden
    /// from us.
    fn alive_anywhere(&self, pid: u32, start: Option<u64>) -> Option<bool>;
}

/// The reaping rule. `me` is this process's view of the host. Conservative:
/// a container is an orphan only when its owner is proven gone; whatever
/// we cannot judge is kept, because removing a live run's container breaks
/// someone's run. A pid is only compared within the pid namespace that
/// wrote it; an owner in another namespace is proven gone only by a
/// quire-ci that sees every process (one in the initial namespace).
pub fn judge(labels: &HashMap<String, String>, me: &Owner, procs: &impl Processes) -> Verdict {
    if labels.get(LABEL_KEEP).is_some_and(|v| v == "true") {
        return Verdict::Keep;
    }
    let Some(pid) = labels.get(LABEL_OWNER_PID).and_then(|p| p.parse::<u32>().ok()) else {
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
            let start = labels.get(LABEL_OWNER_START).and_then(|s| s.parse::<u64>().ok());
            let same_ns = !me.pidns.is_empty() && labels.get(LABEL_OWNER_PIDNS).is_some_and(|ns| ns == &me.pidns);
            let alive = if same_ns {
                procs.alive_here(pid, start)
            } else {
                // Another (or an unrecorded) pid namespace: its pid 7 is not
                // our pid 7. Only a look from above every namespace can
                // prove the owner gone.
                procs.alive_anywhere(pid, start)
            };
            match alive {
                Some(false) => Verdict::Orphan,
                Some(true) | None => Verdict::Keep,
            }
        }
        None => Verdict::Keep,
    }
}

/// The first argument of a detached remover (src/executor/remover.rs):
/// `quire-ci __remove-containers ENDPOINT ID...`.
pub const REMOVER_ARG: &str = "__remove-containers";

/// Is a detached remover that was handed container `id` on `endpoint` (or
/// on the engine its environment selects, `-`) alive in our pid namespace?
/// A run hands its container to one and exits at once, so for a moment the
/// container's owner is gone while its removal is under way: not an
/// orphan. A remover that reaches the engine another way (a socket that
/// has gone, a relay) may be stuck retrying: its container is reaped.
/// Reads every process's command line: called only for a container
/// already judged an orphan.
pub fn remover_alive(id: &str, endpoint: &str) -> bool {
    if !proc_is_mine() {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    dir.flatten().any(|e| {
        if !e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            return false;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { return false };
        let mut args = cmdline.split(|b| *b == 0);
        args.nth(1) == Some(REMOVER_ARG.as_bytes())
            && args.next().is_some_and(|e| e == b"-" || e == endpoint.as_bytes())
            && args.any(|a| a == id.as_bytes())
    })
}

/// The machine's processes as /proc shows them to this process.
pub struct ProcHost;

impl Processes for ProcHost {
    fn alive_here(&self, pid: u32, start: Option<u64>) -> Option<bool> {
        proc_is_mine().then(|| process_alive(pid, start))
    }

    fn alive_anywhere(&self, pid: u32, start: Option<u64>) -> Option<bool> {
        if !sees_every_process() {
            return None;
        }
        let dir = std::fs::read_dir("/proc").ok()?;
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // NSpid lists the process's pid in each namespace, outermost
            // first; the owner wrote the innermost one.
            let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
                continue;
            };
            let own = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|n| n.parse::<u32>().ok());
            if own == Some(pid) && (start.is_none() || process_start(p) == start) {
                return Some(true);
            }
        }
        Some(false)
    }
}

/// True when this process is in the initial pid namespace and /proc is that
/// namespace's (its `self` is us): then no process is hidden from /proc.
fn sees_every_process() -> bool {
    proc_is_mine() && pid_namespace() == INIT_PIDNS
}

/// True when /proc numbers processes as our pid namespace does (after
/// `unshare --pid` without `--mount-proc` it is the parent's).
fn proc_is_mine() -> bool {
    let mine = std::fs::read_link("/proc/self").ok().and_then(|p| p.to_str().and_then(|s| s.parse::<u32>().ok()));
    mine == Some(std::process::id())
}

/// The inode number of this process's pid namespace ("pid:[N]" → "N").
fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| {
            let s = l.to_string_lossy().into_owned();
            s.strip_prefix("pid:[").and_then(|r| r.strip_suffix(']')).map(str::to_string)
        })
        .unwrap_or_default()
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
        Owner { pid: 10, boot: "boot-a".into(), start: Some(5), host: "h".into(), pidns: "ns-a".into() }
    }

    /// /proc as a test wants it: `here` answers for our namespace,
    /// `anywhere` (None: we cannot see every namespace) for the machine.
    struct Fake {
        here: fn(u32, Option<u64>) -> bool,
        anywhere: Option<fn(u32, Option<u64>) -> bool>,
    }

    impl Processes for Fake {
        fn alive_here(&self, pid: u32, start: Option<u64>) -> Option<bool> {
            Some((self.here)(pid, start))
        }
        fn alive_anywhere(&self, pid: u32, start: Option<u64>) -> Option<bool> {
            self.anywhere.map(|f| f(pid, start))
        }
    }

    fn here(f: fn(u32, Option<u64>) -> bool) -> Fake {
        Fake { here: f, anywhere: None }
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn kept_containers_are_never_orphans() {
        let l = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-a"),
            (LABEL_OWNER_HOST, "h"),
            (LABEL_OWNER_PIDNS, "ns-a"),
            (LABEL_KEEP, "true"),
        ]);
        assert_eq!(judge(&l, &me(), &here(|_, _| false)), Verdict::Keep);
    }

    #[test]
    fn dead_pid_same_boot_is_orphan_live_is_kept() {
        let l = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-a"),
            (LABEL_OWNER_HOST, "h"),
            (LABEL_OWNER_PIDNS, "ns-a"),
        ]);
        assert_eq!(judge(&l, &me(), &here(|_, _| false)), Verdict::Orphan);
        assert_eq!(judge(&l, &me(), &here(|_, _| true)), Verdict::Keep);
    }

    #[test]
    fn other_boot_same_host_is_orphan_even_if_pid_exists() {
        let l = labels(&[(LABEL_OWNER_PID, "77"), (LABEL_OWNER_BOOT, "boot-old"), (LABEL_OWNER_HOST, "h")]);
        assert_eq!(judge(&l, &me(), &here(|_, _| true)), Verdict::Orphan);
    }

    #[test]
    fn other_host_or_unparseable_labels_are_kept() {
        let other = labels(&[(LABEL_OWNER_PID, "77"), (LABEL_OWNER_BOOT, "boot-b"), (LABEL_OWNER_HOST, "elsewhere")]);
        assert_eq!(judge(&other, &me(), &here(|_, _| false)), Verdict::Keep);
        let junk = labels(&[(LABEL_OWNER_PID, "x"), (LABEL_OWNER_BOOT, "boot-a")]);
        assert_eq!(judge(&junk, &me(), &here(|_, _| false)), Verdict::Keep);
    }

    #[test]
    fn start_time_is_passed_to_the_liveness_check() {
        let l = labels(&[
            (LABEL_OWNER_PID, "77"),
            (LABEL_OWNER_BOOT, "boot-a"),
            (LABEL_OWNER_START, "123"),
            (LABEL_OWNER_PIDNS, "ns-a"),
        ]);
        assert_eq!(judge(&l, &me(), &here(|_, s| s == Some(123))), Verdict::Keep);
        assert_eq!(judge(&l, &me(), &here(|_, s| s == Some(999))), Verdict::Orphan);
    }

    #[test]
    fn an_owner_in_another_pid_namespace_is_never_judged_by_our_pids() {
        // Its pid 1 is not our pid 1; from inside a namespace of our own (we
        // cannot see the others) it is kept whatever our /proc says.
        let l = labels(&[
            (LABEL_OWNER_PID, "1"),
            (LABEL_OWNER_BOOT, "boot-a"),
            (LABEL_OWNER_HOST, "h"),
            (LABEL_OWNER_START, "123"),
            (LABEL_OWNER_PIDNS, "ns-b"),
        ]);
        assert_eq!(judge(&l, &me(), &here(|_, _| false)), Verdict::Keep);
        // Seen from the initial namespace: alive somewhere is kept, gone
        // everywhere is an orphan.
        let above = |alive: fn(u32, Option<u64>) -> bool| Fake { here: |_, _| false, anywhere: Some(alive) };
        assert_eq!(judge(&l, &me(), &above(|p, s| p == 1 && s == Some(123))), Verdict::Keep);
        assert_eq!(judge(&l, &me(), &above(|_, _| false)), Verdict::Orphan);
        // An old label without a namespace is judged the same way: its pid
        // (any start) alive in some namespace keeps it.
        let old = labels(&[(LABEL_OWNER_PID, "1"), (LABEL_OWNER_BOOT, "boot-a"), (LABEL_OWNER_HOST, "h")]);
        assert_eq!(judge(&old, &me(), &above(|p, s| p == 1 && s.is_none())), Verdict::Keep);
        assert_eq!(judge(&old, &me(), &above(|_, _| false)), Verdict::Orphan);
        assert_eq!(judge(&old, &me(), &here(|_, _| false)), Verdict::Keep);
    }

    #[test]
    fn a_remover_protects_its_container_only_on_the_same_engine() {
        // A process whose command line is a remover's: `sh __remove-containers
        // ENDPOINT ID` (the script file is named so), sleeping.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(REMOVER_ARG), "sleep 30\n").expect("script");
        let id = format!("{:064x}", std::process::id());
        let mut child = std::process::Command::new("sh")
            .current_dir(dir.path())
            .args([REMOVER_ARG, "unix:///run/a.sock", &id])
            .spawn()
            .expect("spawn sh");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !remover_alive(&id, "unix:///run/a.sock") {
            assert!(std::time::Instant::now() < deadline, "the remover's command line was not seen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!remover_alive(&id, "unix:///run/other.sock"), "a remover on another endpoint");
        assert!(!remover_alive(&format!("{:064x}", 1), "unix:///run/a.sock"), "another container");
        let _ = child.kill();
        let _ = child.wait();
        assert!(!remover_alive(&id, "unix:///run/a.sock"), "a dead remover");
    }

    #[test]
    fn this_process_is_alive_and_its_start_time_matches() {
        let me = Owner::current();
        assert!(me.start.is_some(), "/proc/self/stat should give a start time on Linux");
        assert!(!me.pidns.is_empty(), "/proc/self/ns/pid names the namespace");
        assert!(process_alive(me.pid, me.start));
        assert!(!process_alive(me.pid, me.start.map(|s| s + 1)), "a recycled pid must not count");
        if sees_every_process() {
            assert_eq!(ProcHost.alive_anywhere(me.pid, me.start), Some(true));
            assert_eq!(ProcHost.alive_anywhere(me.pid, me.start.map(|s| s + 1)), Some(false));
        }
    }
}
