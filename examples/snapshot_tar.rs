//! Benchmark driver (no CLI framework on purpose): snapshot a repository and
//! stream the tar to stdout, so `scripts/bench-snapshot` can time exactly the
//! snapshot + tar path against `git ls-files | tar`.
//!
//! usage: snapshot_tar DIR [REV]   (REV: snapshot that commit instead)
//! The tree id and timings go to stderr. With SNAPSHOT_TAR_VIA_READER=1 the
//! tar goes through `Snapshot::tar_reader` (the uploader's path) instead.

use std::io::Write;
use std::time::Instant;

use quire_ci::snapshot::Snapshot;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: snapshot_tar DIR [REV] > out.tar");
        return std::process::ExitCode::from(2);
    };
    let rev = args.next();
    let start = Instant::now();
    let snapshot = match &rev {
        None => Snapshot::of_worktree(dir.as_ref()),
        Some(rev) => Snapshot::of_commit(dir.as_ref(), &rev.to_string_lossy()),
    };
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(err) => {
            eprintln!("snapshot_tar: {err}");
            return std::process::ExitCode::from(1);
        }
    };
    let took_snapshot = start.elapsed();
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout);
    let result = if std::env::var_os("SNAPSHOT_TAR_VIA_READER").is_some() {
        snapshot.tar_reader().and_then(|mut reader| {
            std::io::copy(&mut reader, &mut out).map_err(|source| quire_ci::snapshot::SnapshotError::Tar { source })
        })
    } else {
        snapshot.write_tar(&mut out)
    };
    let written = match result
        .and_then(|n| out.flush().map(|()| n).map_err(|source| quire_ci::snapshot::SnapshotError::Tar { source }))
    {
        Ok(n) => n,
        Err(err) => {
            eprintln!("snapshot_tar: {err}");
            return std::process::ExitCode::from(1);
        }
    };
    eprintln!(
        "tree {} files {} tar {} bytes; snapshot {:.1} ms, total {:.1} ms",
        snapshot.tree_id(),
        snapshot.files().len(),
        written,
        took_snapshot.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3
    );
    std::process::ExitCode::SUCCESS
}
