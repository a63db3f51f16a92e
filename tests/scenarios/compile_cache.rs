//! The compile cache (`<git-dir>/quire-ci/compile/`), through the real
//! binary: a warm start does not run the Fennel compiler (a macro that
//! prints at compile time stays silent, and `-v` says so per file), a
//! damaged entry is compiled again, a changed module or macro module is a
//! miss, and the diagnostics are the same warm and cold.

use std::path::PathBuf;

use sha2::Digest;

use crate::harness::{Repo, PRELUDE};

/// A ci.fnl whose compile is visible: the macro prints while Fennel expands
/// it, which only a real compile does.
fn loud_ci() -> String {
    format!(
        "{PRELUDE}(macro shout [] (print \"fennel is compiling\") nil)\n(shout)\n\
         (local h (require :helpers))\n(ci.job :test [:quire/push] (fn [{{: sh}}] (sh (h.cmd))))\n"
    )
}

const HELPERS: &str = "{:cmd (fn [] \"true\")}\n";

fn entries(repo: &Repo) -> Vec<PathBuf> {
    let dir = repo.path().join(".git/quire-ci/compile");
    let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d.map(|e| e.expect("an entry").path()).collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

fn validate_v(repo: &Repo) -> String {
    let out = repo.quire(&["-v", "validate"]).run();
    out.status(0);
    out.stderr.clone()
}

#[test]
fn warm_validate_skips_the_fennel_compiler() {
    let repo = Repo::new().ci(&loud_ci()).file(".quire/helpers.fnl", HELPERS);
    let cold = validate_v(&repo);
    assert!(cold.contains("ci.fnl (compile): fennel is compiling"), "{cold}");
    assert!(cold.contains("compile: .quire/ci.fnl compiled (no cache entry); cached"), "{cold}");
    assert!(cold.contains("compile: .quire/helpers.fnl compiled (no cache entry); cached"), "{cold}");
    let stored = entries(&repo);
    assert_eq!(stored.len(), 2, "one entry per file: {stored:?}");
    let mtimes: Vec<_> = stored.iter().map(|p| std::fs::metadata(p).unwrap().modified().unwrap()).collect();

    let warm = validate_v(&repo);
    assert!(!warm.contains("fennel is compiling"), "the macro ran again, so Fennel did:\n{warm}");
    assert!(warm.contains("compile: .quire/ci.fnl from the cache"), "{warm}");
    assert!(warm.contains("compile: .quire/helpers.fnl from the cache"), "{warm}");
    assert_eq!(entries(&repo), stored);
    let again: Vec<_> = stored.iter().map(|p| std::fs::metadata(p).unwrap().modified().unwrap()).collect();
    assert_eq!(again, mtimes, "a hit rewrites nothing");
    // Evaluation still runs each time: the job is there, warm as cold.
    repo.quire(&["list"]).run().status(0).stdout_has("test");
}

/// What a test does to an entry's bytes.
type Damage = fn(&[u8]) -> Vec<u8>;

#[test]
fn a_damaged_entry_is_compiled_again_and_replaced() {
    let repo = Repo::new().ci(&loud_ci()).file(".quire/helpers.fnl", HELPERS);
    validate_v(&repo);
    let stored = entries(&repo);
    let good: Vec<Vec<u8>> = stored.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let damages: [(&str, Damage); 4] = [
        ("truncated", |b| b[..b.len() / 2].to_vec()),
        ("empty", |_| Vec::new()),
        ("a flipped byte", |b| {
            let mut b = b.to_vec();
            let at = b.len() - 10;
            b[at] ^= 0x01;
            b
        }),
        ("another format", |b| [b"quire-ci compile cache 0\n".as_slice(), b].concat()),
    ];
    for (what, damage) in damages {
        for (p, g) in stored.iter().zip(&good) {
            std::fs::write(p, damage(g)).unwrap();
        }
        let err = validate_v(&repo);
        assert!(err.contains("fennel is compiling"), "{what}: the entry was used\n{err}");
        assert!(err.contains("compile: .quire/ci.fnl compiled (cache entry damaged: "), "{what}:\n{err}");
        assert!(err.contains("compile: .quire/helpers.fnl compiled (cache entry damaged: "), "{what}:\n{err}");
        let now: Vec<Vec<u8>> = stored.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert_eq!(now, good, "{what}: the entry is written again, whole");
        let warm = validate_v(&repo);
        assert!(warm.contains("compile: .quire/ci.fnl from the cache"), "{what}: not used once rewritten\n{warm}");
    }
}

#[test]
fn cached_lua_that_does_not_load_is_compiled_again() {
    // The entry's checksum is right but its Lua is not Lua: it is loaded as
    // text like any compile's output, refused, and compiled again.
    let repo = Repo::new().ci(&loud_ci()).file(".quire/helpers.fnl", HELPERS);
    validate_v(&repo);
    for p in entries(&repo) {
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines = text.splitn(3, '\n');
        let (header, _sum, body) = (lines.next().unwrap(), lines.next().unwrap(), lines.next().unwrap());
        let mut json: serde_json::Value = serde_json::from_str(body).unwrap();
        json["compiled"]["lua"] = "this is ( not lua".into();
        let body = json.to_string();
        let sum = format!("{:x}", sha2::Sha256::digest(body.as_bytes()));
        std::fs::write(&p, format!("{header}\n{sum}\n{body}")).unwrap();
    }
    let err = validate_v(&repo);
    assert!(err.contains("compile: .quire/ci.fnl compiled (cache entry damaged: its Lua does not load)"), "{err}");
    assert!(err.contains("fennel is compiling"), "{err}");
    assert!(validate_v(&repo).contains("compile: .quire/ci.fnl from the cache"));
}

#[test]
fn a_changed_module_or_macro_module_invalidates() {
    let ci = format!(
        "{PRELUDE}(import-macros {{: defjob}} :macros)\n(local h (require :helpers))\n\
         (defjob :test [:quire/push] (fn [{{: sh}}] (sh (h.cmd))))\n"
    );
    let macros = |name: &str| format!("{{:defjob (fn [id inputs f] `(ci.job ,(.. {name:?} id) ,inputs ,f))}}\n");
    let repo = Repo::new()
        .ci(&ci)
        .file(".quire/macros.fnl", macros("a-"))
        .file(".quire/helpers.fnl", "(import-macros {: defjob} :macros)\n{:cmd (fn [] \"true\")}\n");
    validate_v(&repo);
    repo.quire(&["list"]).run().status(0).stdout_has("a-test");
    let warm = validate_v(&repo);
    assert!(warm.contains("compile: .quire/ci.fnl from the cache"), "{warm}");

    // A module changes: only it is compiled.
    repo.write(".quire/helpers.fnl", "(import-macros {: defjob} :macros)\n{:cmd (fn [] \"false\")}\n");
    let err = validate_v(&repo);
    assert!(err.contains("compile: .quire/ci.fnl from the cache"), "{err}");
    assert!(err.contains("compile: .quire/helpers.fnl compiled (no cache entry); cached"), "{err}");

    // A macro module both import changes: both are compiled, and the new
    // macro is what the pipeline declares.
    repo.write(".quire/macros.fnl", macros("b-"));
    let err = validate_v(&repo);
    assert!(err.contains("compile: .quire/ci.fnl compiled (.quire/macros.fnl changed); cached"), "{err}");
    assert!(err.contains("compile: .quire/helpers.fnl compiled (.quire/macros.fnl changed); cached"), "{err}");
    repo.quire(&["list"]).run().status(0).stdout_has("b-test").stdout_lacks("a-test");

    // Back to the first texts: one entry per file text, so ci.fnl's (made
    // with the second macro module) is a miss, while the first helpers
    // text's entry, made with the first macro module, serves again.
    repo.write(".quire/macros.fnl", macros("a-"));
    repo.write(".quire/helpers.fnl", "(import-macros {: defjob} :macros)\n{:cmd (fn [] \"true\")}\n");
    let err = validate_v(&repo);
    assert!(err.contains("compile: .quire/ci.fnl compiled (.quire/macros.fnl changed); cached"), "{err}");
    assert!(err.contains("compile: .quire/helpers.fnl from the cache"), "{err}");
    repo.quire(&["list"]).run().status(0).stdout_has("a-test");
}

#[test]
fn validate_reports_the_same_problems_warm_and_cold() {
    // Problems of evaluation (an error at a line, inside a module too), of
    // the graph, and the server's warnings: all come after the compile, so
    // a cached compile must give them the same lines and spans.
    let ci = format!(
        "{PRELUDE}(local h (require :helpers))\n(ci.job :test [:quire/push]\n  (fn [] {{}}))\n\
         (ci.job :lint [:nope] (fn [] {{}}))\n(h.boom)\n"
    );
    let helpers = "{:boom (fn []\n  (error \"helpers went wrong\"))}\n";
    let repo = Repo::new().ci(&ci).file(".quire/helpers.fnl", helpers);
    let cold = repo.quire(&["validate"]).run();
    cold.status(2);
    assert!(cold.stderr.contains("helpers went wrong"), "{}", cold.stderr);
    assert!(cold.stderr.contains(".quire/helpers.fnl:2"), "the line inside the module: {}", cold.stderr);
    assert_eq!(entries(&repo).len(), 2, "both files compiled fine, so both are cached");
    let warm = repo.quire(&["validate"]).run();
    warm.status(2);
    assert_eq!(warm.stderr, cold.stderr);
    assert!(validate_v_fails(&repo).contains("compile: .quire/ci.fnl from the cache"));

    // A graph problem, its form spread over lines, with a suggestion.
    let ci = format!("{PRELUDE}(ci.job :test [:quire/push] (fn [] {{}}))\n\n(ci.job :lint\n  [:tst] (fn [] {{}}))\n");
    repo.write(".quire/ci.fnl", &ci);
    let cold = repo.quire(&["validate"]).run();
    cold.status(2);
    assert!(cold.stderr.contains(":tst"), "{}", cold.stderr);
    let warm = repo.quire(&["validate"]).run();
    assert_eq!(warm.stderr, cold.stderr);
    assert!(validate_v_fails(&repo).contains("compile: .quire/ci.fnl from the cache"));

    // A valid file with a warning about the server (a module), at its span.
    let ci = format!("{PRELUDE}(local h\n  (require :helpers))\n(ci.job :test [:quire/push] (fn [] {{}}))\n");
    repo.write(".quire/ci.fnl", &ci);
    repo.write(".quire/helpers.fnl", "{}\n");
    let cold = repo.quire(&["validate"]).run();
    cold.status(0);
    assert!(cold.stderr.contains("1 warning"), "{}", cold.stderr);
    let warm = repo.quire(&["validate"]).run();
    assert_eq!((warm.stdout.as_str(), warm.stderr.as_str()), (cold.stdout.as_str(), cold.stderr.as_str()));
    assert!(validate_v(&repo).contains("compile: .quire/ci.fnl from the cache"));
}

#[test]
fn a_compile_error_is_not_cached_and_reads_the_same_each_time() {
    let ci = format!("{PRELUDE}(ci.job :test [:quire/push]\n  (fn [] (undefined-thing)))\n");
    let repo = Repo::new().ci(&ci);
    let first = repo.quire(&["validate"]).run();
    first.status(2);
    assert!(first.stderr.contains("undefined-thing"), "{}", first.stderr);
    assert!(entries(&repo).is_empty(), "a failed compile stores nothing");
    let second = repo.quire(&["-v", "validate"]).run();
    second.status(2);
    assert!(
        second.stderr.contains("compile: .quire/ci.fnl failed to compile (failures are not cached)"),
        "{}",
        second.stderr
    );
    assert_eq!(
        second.stderr.replace("quire-ci: compile: .quire/ci.fnl failed to compile (failures are not cached)\n", ""),
        first.stderr
    );
}

fn validate_v_fails(repo: &Repo) -> String {
    let out = repo.quire(&["-v", "validate"]).run();
    out.status(2);
    out.stderr.clone()
}

#[test]
fn run_compiles_once_and_then_from_the_cache_docker() {
    let repo = Repo::new().ci(&loud_ci()).file(".quire/helpers.fnl", HELPERS).committed();
    // -v's notices go where the run's output goes (stdout when piped).
    let cold = repo.run(&["-v", "run", "--no-cache"]);
    cold.status(0);
    assert!(
        cold.terminal().contains("compile: .quire/ci.fnl compiled (no cache entry); cached"),
        "{}",
        cold.terminal()
    );
    assert_eq!(entries(&repo).len(), 2);
    let warm = repo.run(&["-v", "run", "--no-cache"]);
    warm.status(0);
    assert!(warm.terminal().contains("compile: .quire/ci.fnl from the cache"), "{}", warm.terminal());
    assert!(warm.terminal().contains("compile: .quire/helpers.fnl from the cache"), "{}", warm.terminal());
    assert!(!warm.terminal().contains("fennel is compiling"), "{}", warm.terminal());
    // `validate` on the same tree shares the entries.
    assert!(validate_v(&repo).contains("compile: .quire/ci.fnl from the cache"));
}
