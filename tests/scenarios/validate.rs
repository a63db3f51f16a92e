//! `quire-ci validate` and `quire-ci list`, through the real binary: every
//! validation rule and compile-error kind (rendered diagnostics as insta
//! snapshots), module loading, the sandbox against hostile ci.fnl, the CLI
//! surface, and the committed completions and man page.

use std::time::Duration;

use crate::harness::{self, Output, Test, PRELUDE};

/// `validate` on a ci.fnl made of the prelude and `body`.
fn validate(body: &str) -> Output<'static> {
    Test::new().ci(&format!("{PRELUDE}{body}")).args(&["validate"]).run()
}

/// Asserts a rejected ci.fnl and returns its rendered diagnostics.
fn rejected(body: &str) -> String {
    let out = validate(body);
    out.status(2);
    assert!(out.stdout.is_empty(), "nothing on stdout for a bad ci.fnl: {}", out.stdout);
    out.stderr_normalized()
}

const NOOP: &str = "(fn [] {})";

fn job(id: &str, inputs: &str) -> String {
    format!("(ci.job {id} [{inputs}] {NOOP})\n")
}

// ---------------------------------------------------------------- validation rules

#[test]
fn cycle_is_named() {
    let body = [job(":test", ":quire/push"), job(":a", ":test :c"), job(":b", ":a"), job(":c", ":b")].concat();
    let err = rejected(&body);
    assert!(err.contains("× jobs form a cycle: :a → :c → :b → :a\n"), "{err}");
    assert_eq!(err.matches("quire_ci::").count(), 1, "the cycle is the only problem (no knock-on):\n{err}");
    insta::assert_snapshot!("cycle", err);
}

#[test]
fn self_cycle() {
    let err = rejected(&[job(":test", ":quire/push :test")].concat());
    assert!(err.contains("jobs form a cycle: :test → :test"), "{err}");
}

#[test]
fn empty_inputs() {
    let err = rejected(&job(":lonely", ""));
    assert!(err.contains("job :lonely has no inputs"), "{err}");
    insta::assert_snapshot!("empty_inputs", err);
}

#[test]
fn unreachable_names_the_orphans() {
    // Inputs that name real jobs can only leave a job unreachable through a
    // cycle: :after-cycle hangs off the :x/:y loop, which nothing triggers.
    // It is named as an orphan; the cycle's members are named by the cycle.
    let body = [job(":test", ":quire/push"), job(":x", ":y"), job(":y", ":x"), job(":after-cycle", ":x")].concat();
    let err = rejected(&body);
    assert!(err.contains("job :after-cycle is not reachable from :quire/push"), "{err}");
    assert!(!err.contains("job :test is not reachable"), "{err}");
    insta::assert_snapshot!("unreachable", err);
}

#[test]
fn slash_in_id() {
    let err = rejected(&[job(":test", ":quire/push"), job(":lint/fast", ":test")].concat());
    assert!(err.contains("job id :lint/fast contains '/'"), "{err}");
    insta::assert_snapshot!("slash_in_id", err);
}

#[test]
fn duplicate_id() {
    let err = rejected(&[job(":test", ":quire/push"), job(":test", ":quire/push")].concat());
    assert!(err.contains("job :test is declared twice (first at .quire/ci.fnl:2)"), "{err}");
    insta::assert_snapshot!("duplicate_id", err);
}

#[test]
fn unknown_input_suggests_the_near_name() {
    let err = rejected(&[job(":test", ":quire/push"), job(":build", ":tset"), job(":odd", ":quire/pull")].concat());
    assert!(err.contains("job :build has unknown input :tset"), "{err}");
    assert!(err.contains("did you mean :test?"), "{err}");
    assert!(err.contains("unknown source :quire/pull"), "{err}");
    assert!(!err.contains("not reachable"), "an unknown input is not also called unreachable: {err}");
    insta::assert_snapshot!("unknown_input", err);
}

#[test]
fn unknown_input_is_reported_alone_without_knock_on_unreachable() {
    // :deploy and :notify hang off the typo; fixing it fixes them.
    let body =
        [job(":build", ":quire/push"), job(":test", ":biuld"), job(":deploy", ":test"), job(":notify", ":deploy")]
            .concat();
    let err = rejected(&body);
    assert!(err.contains("job :test has unknown input :biuld"), "{err}");
    assert!(err.contains("did you mean :build?"), "{err}");
    assert!(!err.contains("not reachable"), "a knock-on of the typo is reported:\n{err}");
    assert!(err.contains("1 problem in .quire/ci.fnl"), "{err}");
}

#[test]
fn image_twice() {
    let err = rejected(&format!("(ci.image \"busybox\")\n(ci.image \"alpine\")\n{}", job(":test", ":quire/push")));
    assert!(err.contains("ci.image is declared twice"), "{err}");
    insta::assert_snapshot!("image_twice", err);
}

#[test]
fn wrong_argument_types() {
    let body = [
        "(ci.job 42 [:quire/push] (fn [] {}))\n",
        "(ci.job :a :quire/push (fn [] {}))\n",
        "(ci.job :b [:quire/push 7] (fn [] {}))\n",
        "(ci.job :c {:x :quire/push} (fn [] {}))\n",
        "(ci.job :d [:quire/push] \"echo hi\")\n",
        "(ci.image 3)\n",
        "(ci.image \"busybox\" \"alpine\")\n",
    ]
    .concat();
    let err = rejected(&body);
    for needle in [
        "the job id must be a string or keyword, got the number 42",
        "job :a: inputs must be a sequence, got the string \"quire/push\"",
        "item 2 is the number 7",
        "non-sequence key",
        "job :d: the run-fn must be a function, got the string \"echo hi\"",
        "ci.image expects one image name (a string), got the number 3",
        "ci.image expects one image name, got 2 arguments",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    insta::assert_snapshot!("wrong_argument_types", err);
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let body = [
        job(":test", ":quire/push"),
        job(":test", ":quire/push"),
        job(":a/b", ":test"),
        job(":c", ":nope"),
        job(":e", ""),
    ]
    .concat();
    let out = validate(&body);
    out.status(2).stderr_has("4 problems in .quire/ci.fnl");
    for code in ["quire_ci::duplicate_job", "quire_ci::job_id", "quire_ci::unknown_input", "quire_ci::empty_inputs"] {
        out.stderr_has(code);
    }
}

// ---------------------------------------------------------------- compile errors

#[test]
fn parse_error_unclosed_paren() {
    let err = rejected("(ci.job :test [:quire/push] (fn [] {})\n");
    assert!(err.contains("quire_ci::parse"), "{err}");
    assert!(err.contains("this ( is never closed"), "{err}");
    // The opener, not the end of the file: line 2 of this ci.fnl.
    assert!(err.contains("[.quire/ci.fnl:2:1]"), "{err}");
    // Far from the end, as in a real ci.fnl: still the opener's line.
    let body = format!("(ci.job :a [:quire/push]\n  (fn [] {{}})\n{}", job(":b", ":a").repeat(30));
    let far = rejected(&body);
    assert!(far.contains("[.quire/ci.fnl:2:1]") && far.contains("this ( is never closed"), "{far}");
    insta::assert_snapshot!("parse_unclosed", err);
}

#[test]
fn parse_error_mismatched_delimiter() {
    let err = rejected("(ci.job :test [:quire/push} (fn [] {}))\n");
    assert!(err.contains("mismatched closing delimiter }, expected ]"), "{err}");
    insta::assert_snapshot!("parse_mismatched", err);
}

#[test]
fn compile_error_unknown_identifier() {
    let err = rejected("(ci.job :test [:quire/push]\n  (fn [] (shh \"make\")))\n");
    assert!(err.contains("unknown identifier: shh"), "{err}");
    assert!(err.contains(".quire/ci.fnl:3:"), "points at line 3: {err}");
    insta::assert_snapshot!("compile_unknown_identifier", err);
}

#[test]
fn compile_error_bad_binding_form() {
    let err = rejected("(let [x] (ci.job :test [:quire/push] (fn [] {})))\n");
    assert!(err.contains("expected even number of name/value bindings"), "{err}");
    insta::assert_snapshot!("compile_bad_binding", err);
}

#[test]
fn runtime_error_at_top_level() {
    let err = rejected("(local t nil)\n(ci.job :test [:quire/push] (fn [] {}))\n(t.x)\n");
    assert!(err.contains("quire_ci::eval"), "{err}");
    assert!(err.contains("attempt to index nil"), "{err}");
    assert!(err.contains(".quire/ci.fnl:4:"), "points at line 4: {err}");
    insta::assert_snapshot!("runtime_top_level", err);
}

#[test]
fn runtime_error_in_a_module_points_into_the_module() {
    let out = Test::new()
        .ci(&format!("{PRELUDE}(local h (require :broken))\n"))
        .file(".quire/broken.fnl", "(local x nil)\n\n(x.boom)\n")
        .args(&["validate"])
        .run();
    out.status(2).stderr_has(".quire/broken.fnl:3:");
}

// ---------------------------------------------------------------- both require styles, modules

#[test]
fn require_as_a_table() {
    let out = validate(&[job(":test", ":quire/push"), job(":build", ":test")].concat());
    out.status(0).stdout_has("2 jobs: test → build");
}

#[test]
fn require_destructured() {
    let out = Test::new()
        .ci("(local {: job : image} (require :quire.ci))\n(image \"busybox\")\n(job :test [:quire/push] (fn [] {}))\n")
        .args(&["validate"])
        .run();
    out.status(0).stdout_has("1 job: test; image busybox");
}

#[test]
fn repo_local_module_declares_jobs_from_a_function() {
    let out = Test::new().fixture("helpers").args(&["list", "--json"]).run();
    out.status(0);
    let v = out.stdout_json();
    let ids: Vec<&str> = v["jobs"].as_array().expect("jobs").iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, ["lint", "unit", "package"]);
    // A job declared inside a helper function points at the helper's call
    // in ci.fnl, where its id and inputs were written: one line per job.
    let at = |i: usize| (v["jobs"][i]["file"].as_str().map(str::to_owned), v["jobs"][i]["line"].as_u64());
    assert_eq!(at(1), (Some(".quire/ci.fnl".into()), Some(9)));
    assert_eq!(at(2), (Some(".quire/ci.fnl".into()), Some(10)));
}

#[test]
fn job_location_is_where_the_job_was_written() {
    let ci = [
        "(local ci (require :quire.ci))",          // 1
        "(local {: module-job} (require :mods))",  // 2
        "(fn mk [id]",                             // 3
        "  (ci.job id [:quire/push]",              // 4
        "    (fn [] {})))",                        // 5
        "(mk :a)",                                 // 6
        "(mk",                                     // 7
        "  :b)",                                   // 8
        "(each [_ id (ipairs [:c :d])]",           // 9
        "  (ci.job id [:quire/push] (fn [] {})))", // 10
        "(module-job",                             // 11
        "  :e)",                                   // 12
    ]
    .join("\n");
    let module = [
        "(local ci (require :quire.ci))",                               // 1
        "(ci.job :in-module [:quire/push] (fn [] {}))",                 // 2
        "{:module-job (fn [id] (ci.job id [:quire/push] (fn [] {})))}", // 3
    ]
    .join("\n");
    let out = Test::new()
        .ci(&format!("{ci}\n"))
        .file(".quire/mods.fnl", format!("{module}\n"))
        .args(&["list", "--json"])
        .run();
    out.status(0);
    let v = out.stdout_json();
    let got: Vec<String> = v["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| format!("{} {}:{}", j["id"].as_str().unwrap_or("?"), j["file"].as_str().unwrap_or("?"), j["line"]))
        .collect();
    assert_eq!(
        got,
        [
            // Declared at the top level of the module: the module's line.
            "in-module .quire/mods.fnl:2",
            // Through a helper: the helper's call, where it opens.
            "a .quire/ci.fnl:6",
            "b .quire/ci.fnl:7",
            // In a loop at the top level: the ci.job form itself.
            "c .quire/ci.fnl:10",
            "d .quire/ci.fnl:10",
            // Through a module's function: the call in ci.fnl.
            "e .quire/ci.fnl:11",
        ]
    );
}

#[test]
fn macros_local_and_imported_from_quire_declare_at_their_call() {
    let ci = [
        "(macro defjob [id inputs cmd]",                          // 2
        "  `(ci.job ,id ,inputs (fn [ctx#] (ctx#.sh ,cmd) {})))", // 3
        "(defjob :lint [:quire/push] \"make lint\")",             // 4
        "(import-macros {: checked} :macros)",                    // 5
        "(checked :unit",                                         // 6
        "  [:lint] \"make test\")",                               // 7
        "(require-macros :lib.more)",                             // 8
        "(later :docs)",                                          // 9
    ]
    .join("\n");
    let out = Test::new()
        .ci(&format!("{PRELUDE}{ci}\n"))
        .file(
            ".quire/macros.fnl",
            "(fn checked [id inputs cmd]\n  `(ci.job ,id ,inputs (fn [ctx#] (ctx#.sh ,cmd) {})))\n{: checked}\n",
        )
        .file(".quire/lib/more.fnl", "{:later (fn [id] `(ci.job ,id [:unit] (fn [] {})))}\n")
        .args(&["list", "--json"])
        .run();
    out.status(0);
    let v = out.stdout_json();
    let got: Vec<String> = v["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| format!("{} {}", j["id"].as_str().unwrap_or("?"), j["line"]))
        .collect();
    assert_eq!(got, ["lint 4", "unit 6", "docs 9"]);
}

#[test]
fn macro_module_errors_point_into_the_module() {
    let t = |macros: &str, ci: &str| {
        Test::new().ci(&format!("{PRELUDE}{ci}\n")).file(".quire/macros.fnl", macros).args(&["validate"]).run()
    };
    // The sandbox holds in a macro module too.
    let out = t("(fn x []\n  (os.execute \"touch /tmp/x\"))\n{: x}\n", "(import-macros {: x} :macros)\n(x)");
    out.status(2)
        .stderr_has("compile error in .quire/macros.fnl: unknown identifier: os")
        .stderr_has("2 │   (os.execute");
    let out = t("(fn x []\n  (let [a (+ 1\n{: x}\n", "(import-macros {: x} :macros)");
    out.status(2).stderr_has("parse error in .quire/macros.fnl: expected closing delimiters");
    let out = t("{}\n", "(import-macros {: x} :nope)");
    out.status(2).stderr_has("macro module 'nope' not found: there is no .quire/nope.fnl");
    let out = t("{}\n", "(import-macros {: x} \"../../etc/passwd\")");
    out.status(2).stderr_has("import-macros of \"../../etc/passwd\" is refused");
    // A loop in a macro module meets the deadline like any macro.
    let out = Test::new()
        .ci(&format!("{PRELUDE}(import-macros {{: x}} :macros)\n(x)\n"))
        .file(".quire/macros.fnl", "(fn x [] (while true nil))\n{: x}\n")
        .args(&["validate", "--eval-timeout", "1"])
        .run();
    out.status(2).stderr_has("exceeded its 1 s deadline");
}

#[test]
fn duplicate_id_through_a_helper_labels_both_calls() {
    let ci = "(fn mk [id] (ci.job id [:quire/push] (fn [] {})))\n(mk :x)\n(mk :x)\n";
    let err = rejected(ci);
    assert!(err.contains("job :x is declared twice (first at .quire/ci.fnl:3)"), "{err}");
    assert!(err.contains("4 │ (mk :x)"), "{err}");
}

#[test]
fn nested_module_path() {
    let out = Test::new()
        .ci(&format!("{PRELUDE}(local u (require :lib.util))\n(ci.job u.name [:quire/push] (fn [] {{}}))\n"))
        .file(".quire/lib/util.fnl", "{:name :from-util}\n")
        .args(&["validate"])
        .run();
    out.status(0).stdout_has("1 job: from-util");
}

#[test]
fn require_outside_quire_is_refused() {
    for (name, needle) in [
        ("\"../x\"", "require of \"../x\" is refused"),
        ("\"/etc/passwd\"", "require of \"/etc/passwd\" is refused"),
        (":os", "require of \"os\" is refused: ci.fnl cannot load host libraries"),
        (":string", "module 'string' is not loaded with require"),
        (":missing", "there is no .quire/missing.fnl"),
    ] {
        let out = validate(&format!("(require {name})\n"));
        out.status(2).stderr_has(needle);
    }
}

// ---------------------------------------------------------------- hostile input

/// A hostile ci.fnl: must be refused with `needle`, exit 2, and leave no
/// marker file on the host. `{MARKER}` in `text` is replaced by a path the
/// script tries to create. Cases about the deadline get a 2 s one; the
/// others a deadline so long that a loaded machine never reaches it first
/// (the harness's timeout still catches a hang).
fn hostile(text: &str, extra: &[&str], needle: &str) {
    let t = Test::new();
    let marker = t.path().join("marker");
    let text = text.replace("{MARKER}", &marker.to_string_lossy());
    let deadline = if needle == DEADLINE { "2" } else { "120" };
    let out =
        t.ci(&text).args(&["validate", "--eval-timeout", deadline]).args(extra).timeout(Duration::from_secs(180)).run();
    out.status(2).stderr_has(needle);
    assert!(!marker.exists(), "the script created {}", marker.display());
}

const DEADLINE: &str = "exceeded its 2 s deadline";

#[test]
fn hostile_infinite_loop() {
    hostile(&format!("{PRELUDE}(while true nil)"), &[], DEADLINE);
}

#[test]
fn hostile_huge_string_rep() {
    hostile(
        &format!("{PRELUDE}(string.rep \"x\" (^ 2 31))"),
        &[],
        "string.rep would build a string of 2147483648 bytes",
    );
}

#[test]
fn hostile_deep_nesting_and_recursing_macro() {
    let deep = format!("{PRELUDE}{}nil{}", "(do ".repeat(100_000), ")".repeat(100_000));
    hostile(&deep, &[], "the Fennel compiler ran out of stack");
    hostile(&format!("{PRELUDE}{}{}", "[".repeat(100_000), "]".repeat(100_000)), &[], "stack overflow");
    hostile("(macro m [] (fn f [] (+ 1 (f))) (f))\n(m)", &[], "stack overflow");
}

#[test]
fn hostile_unbounded_recursion() {
    hostile(&format!("{PRELUDE}(fn f [x] (+ 1 (f x)))\n(f 1)"), &[], "stack overflow");
}

#[test]
fn hostile_catastrophic_pattern() {
    hostile(&format!("{PRELUDE}(string.find (string.rep \"a\" 3000) \".-.-.-.-.-.-.-.-b\")"), &[], DEADLINE);
}

#[test]
fn hostile_pcall_cannot_swallow_the_deadline() {
    // If the deadline were not sticky, the pcall would return false and the
    // job below would register and validate.
    hostile(
        &format!("{PRELUDE}(pcall (fn [] (while true nil)))\n(ci.job :after [:quire/push] (fn [] {{}}))"),
        &[],
        DEADLINE,
    );
    hostile(&format!("{PRELUDE}(while true (pcall (fn [] (while true nil))))"), &[], DEADLINE);
    // Safepoints are checked in batches; bodies of every size around a batch
    // must still end, because a tripped limit is re-raised at every safepoint.
    for n in [1, 31, 63, 64, 65] {
        hostile(&format!("{PRELUDE}(while true (pcall (fn [] (for [i 1 {n}] nil))))"), &[], DEADLINE);
    }
}

#[test]
fn hostile_loop_in_a_macro() {
    hostile("(macro forever [] (while true nil) nil)\n(forever)", &[], DEADLINE);
}

#[test]
fn hostile_loop_in_eval_compiler() {
    hostile("(eval-compiler (while true nil))", &[], DEADLINE);
}

#[test]
fn hostile_host_access_is_refused() {
    let cases: &[(&str, &str)] = &[
        ("(os.execute \"touch {MARKER}\")", "os.execute is not available in ci.fnl"),
        ("(io.open \"{MARKER}\" :w)", "io.open is not available in ci.fnl"),
        ("((loadstring \"x = 1\"))", "loadstring is not available in ci.fnl"),
        ("((load \"x = 1\"))", "load is not available in ci.fnl"),
        ("(getfenv 1)", "getfenv is not available in ci.fnl"),
        ("(setfenv 1 {})", "setfenv is not available in ci.fnl"),
        ("(debug.getinfo 1)", "debug.getinfo is not available in ci.fnl"),
        ("(os.getenv :HOME)", "os.getenv is not available in ci.fnl"),
        ("(require :io)", "require of \"io\" is refused"),
        ("(set string.x 1)", "attempt to modify a readonly table"),
        ("(tset table :insert nil)", "attempt to modify a readonly table"),
        ("(set _G.x 1)", "attempt to modify a readonly table"),
        ("(tset (getmetatable \"\") :__index {})", "attempt to modify a readonly table"),
    ];
    for (code, needle) in cases {
        hostile(&format!("{PRELUDE}{code}\n"), &[], needle);
    }
}

#[test]
fn hostile_memory_exhaustion() {
    hostile(
        &format!("{PRELUDE}(local t [])\n(for [i 1 100000000] (tset t i (.. \"x\" i)))"),
        &["--lua-memory", "16"],
        "exceeded its memory cap",
    );
}

#[test]
fn hostile_job_flood_is_cut_off() {
    // A million jobs used to exhaust mlua's reference stack and panic; the
    // declared jobs live outside --lua-memory, so their number is capped.
    hostile(
        &format!("{PRELUDE}(for [i 1 1000000] (ci.job (.. \"j\" i) [:quire/push] (fn [] {{}})))"),
        &[],
        "declares more than 10000 jobs",
    );
    // A pcall around each call does not get past the cap either.
    hostile(
        &format!("{PRELUDE}(for [i 1 1000000] (pcall ci.job (.. \"j\" i) [:quire/push] (fn [] {{}})))"),
        &[],
        "declares more than 10000 jobs",
    );
}

#[test]
fn hostile_macros_get_no_more_than_ci_fnl() {
    hostile("(macro m [] (os.execute \"touch {MARKER}\") nil)\n(m)", &[], "unknown identifier: os");
    hostile("(macro m [] (io.open \"{MARKER}\" :w) nil)\n(m)", &[], "unknown identifier: io");
    // Fennel's compiler environment has no os at all, not even through _G.
    hostile(
        "(eval-compiler (let [o (. _G :os)] (o.execute \"touch {MARKER}\")))",
        &[],
        "attempt to index nil with 'execute'",
    );
}

#[test]
fn hostile_huge_generated_pipelines_validate_in_bounded_time() {
    // Validation runs after the deadline's clock stops, so it must be fast
    // by construction: 10 000 jobs (the most ci.fnl may declare) as one
    // chain declared backwards, closed into a cycle (deep search), and
    // 10 000 unknown inputs.
    let cycle = format!(
        "{PRELUDE}(for [i 10000 1 -1] (ci.job (.. \"j\" i) [(if (= i 1) :j10000 (.. \"j\" (- i 1)))] (fn [] {{}})))"
    );
    let unknown = format!("{PRELUDE}(for [i 1 10000] (ci.job (.. \"j\" i) [(.. \"k\" i)] (fn [] {{}})))");
    for (text, needle) in [(cycle, "jobs form a cycle: :j10000 → :j9999"), (unknown, "10000 problems")] {
        // How fast is scripts/bench-validate's business; here: it ends.
        let out =
            Test::new().ci(&text).args(&["validate", "--eval-timeout", "60"]).timeout(Duration::from_secs(180)).run();
        out.status(2).stderr_has(needle);
    }
}

// ---------------------------------------------------------------- CLI

#[test]
fn no_repository() {
    let out = Test::without_git().ci(PRELUDE).args(&["validate"]).run();
    out.status(2).stderr_has("is not inside a git repository").stderr_has("quire_ci::no_repo");
}

#[test]
fn no_ci_fnl() {
    let out = Test::new().file("README", "hi").args(&["validate"]).run();
    out.status(2).stderr_has("no .quire/ci.fnl in this repository");
}

#[test]
fn a_long_order_is_shortened_on_the_ok_line() {
    let body: String = (1..=20).map(|i| format!("(ci.job :j{i} [:quire/push] {NOOP})\n")).collect();
    let out = validate(&body);
    out.status(0).stdout_has(
        "20 jobs: j1 → j2 → j3 → j4 → j5 → j6 → j7 → j8 → j9 → … 9 more … → j19 → j20 (-v or quire-ci list shows all)",
    );
    let all = (1..=20).map(|i| format!("j{i}")).collect::<Vec<_>>().join(" → ");
    Test::new()
        .ci(&format!("{PRELUDE}{body}"))
        .args(&["-v", "validate"])
        .run()
        .status(0)
        .stdout_has(&format!("20 jobs: {all};"));
}

#[test]
fn empty_ci_fnl_is_valid_with_zero_jobs() {
    let out = Test::new().ci("").args(&["validate"]).run();
    out.status(0).stdout_has("0 jobs");
}

#[test]
fn not_utf8_names_line_and_byte() {
    let out =
        Test::new().file(".quire/ci.fnl", b"(local ci (require :quire.ci))\n;; caf\xe9\n").args(&["validate"]).run();
    let out = out.status(2);
    out.stderr_has("not valid UTF-8: line 2, byte 7").stderr_has("0xe9");
}

/// A 100-job pipeline: a chain with a fan-out, declared in reverse so the
/// topological order differs from the declaration order.
pub fn hundred_jobs() -> String {
    let mut s = String::from(PRELUDE);
    s.push_str("(ci.image \"busybox:latest\")\n");
    for i in (0..100).rev() {
        let inputs = if i == 0 {
            ":quire/push".to_string()
        } else if i % 10 == 0 {
            format!(":j{}", i - 10)
        } else {
            format!(":j{}", i - i % 10)
        };
        s.push_str(&format!("(ci.job :j{i} [{inputs}] (fn [{{: sh}}] (sh \"echo {i}\")))\n"));
    }
    s
}

#[test]
fn hundred_jobs_in_topological_order() {
    let out = Test::new().ci(&hundred_jobs()).args(&["list", "--json"]).run();
    out.status(0);
    let v = out.stdout_json();
    let jobs = v["jobs"].as_array().expect("jobs array");
    assert_eq!(jobs.len(), 100);
    let position: std::collections::HashMap<&str, u64> =
        jobs.iter().map(|j| (j["id"].as_str().unwrap_or(""), j["position"].as_u64().unwrap_or(0))).collect();
    for j in jobs {
        for input in j["inputs"].as_array().expect("inputs") {
            let input = input.as_str().unwrap_or("");
            if let Some(p) = position.get(input) {
                assert!(p < &j["position"].as_u64().unwrap_or(0), "{input} must come before {}", j["id"]);
            }
        }
    }
    assert_eq!(jobs[0]["id"], "j0");
    Test::new().ci(&hundred_jobs()).args(&["validate"]).run().status(0).stdout_has("100 jobs");
}

#[test]
fn validate_file_flag() {
    let out = Test::new()
        .ci(&format!("{PRELUDE}(ci.job :in-repo [:quire/push] {NOOP})\n"))
        .file("candidate.fnl", format!("{PRELUDE}(ci.job :candidate [:quire/push] {NOOP})\n"))
        .args(&["validate", "--file", "candidate.fnl"])
        .run();
    out.status(0).stdout_has("1 job: candidate");
}

#[test]
fn directory_flag() {
    let t = Test::new().ci(&format!("{PRELUDE}(ci.job :there [:quire/push] {NOOP})\n")).file("sub/dir/.keep", "");
    let root = t.path().to_path_buf();
    let out = t.current_dir("/").arg("-C").arg(root.join("sub/dir")).arg("validate").run();
    out.status(0).stdout_has("1 job: there");
}

#[test]
fn list_table() {
    let out = Test::new().fixture("example").commit().args(&["list"]).run();
    out.status(0);
    insta::assert_snapshot!("list_table", out.stdout);
}

#[test]
fn list_without_image_or_jobs() {
    let out = Test::new().ci(PRELUDE).args(&["list"]).run();
    out.status(0).stdout_has("image: not declared").stdout_has("no jobs");
    let json = Test::new().ci(PRELUDE).args(&["list", "--json"]).run();
    json.status(0);
    let v = json.stdout_json();
    assert!(v["image"].is_null() && v["jobs"].as_array().is_some_and(|j| j.is_empty()), "{v}");
}

#[test]
fn print_never_reaches_stdout() {
    // Top-level print and print inside a macro both go to stderr, so the
    // JSON on stdout stays parseable.
    let text =
        format!("(eval-compiler (print :from-macro))\n{PRELUDE}(print :from-top)\n(ci.job :t [:quire/push] {NOOP})\n");
    let out = Test::new().ci(&text).args(&["list", "--json"]).run();
    out.status(0).stderr_has("from-macro").stderr_has("from-top");
    assert_eq!(out.stdout_json()["jobs"][0]["id"], "t");
}

#[test]
fn list_json_fields() {
    let out = Test::new().fixture("example").commit().args(&["list", "--json"]).run();
    out.status(0);
    let v = out.stdout_json();
    assert_eq!(v["image"]["name"], "busybox:latest");
    assert_eq!(v["image"]["line"], 5);
    let jobs = v["jobs"].as_array().expect("jobs");
    let ids: Vec<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, ["test", "build", "deploy", "publish"]);
    assert_eq!(jobs[0]["inputs"], serde_json::json!(["quire/push"]));
    assert_eq!(jobs[2]["inputs"], serde_json::json!(["build"]));
    assert_eq!(jobs[3]["position"], 4);
    assert_eq!(jobs[0]["line"], 7);
    assert_eq!(jobs[0]["file"], ".quire/ci.fnl");
}

#[test]
fn list_dot() {
    let out = Test::new().fixture("example").args(&["list", "--dot"]).run();
    out.status(0);
    assert!(out.stdout.starts_with("digraph"), "{}", out.stdout);
    assert!(out.stdout.contains("\"test\" -> \"build\";"), "{}", out.stdout);
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let bad = format!("{PRELUDE}(ci.job :x [] {NOOP})\n");
    let always = Test::new().ci(&bad).args(&["--color", "always", "validate"]).run();
    always.status(2);
    assert!(always.stderr.contains('\u{1b}'), "--color always gives escape codes: {:?}", always.stderr);
    let never = Test::new().ci(&bad).args(&["--color", "never", "validate"]).env_remove("NO_COLOR").run();
    assert!(!never.stderr.contains('\u{1b}'), "--color never gives none: {:?}", never.stderr);
    // The harness sets NO_COLOR=1; auto with a pipe gives none either way.
    let auto = Test::new().ci(&bad).args(&["validate"]).run();
    assert!(!auto.stderr.contains('\u{1b}'), "NO_COLOR gives none: {:?}", auto.stderr);
}

#[test]
fn eval_timeout_must_be_a_sane_number() {
    for bad in ["inf", "nan", "0", "1e30", "soon"] {
        let out = Test::new().ci("").args(&["validate", "--eval-timeout", bad]).run();
        out.status(2).stderr_has("--eval-timeout").stderr_lacks("panicked");
    }
    Test::new().ci("").args(&["validate", "--eval-timeout", "0.5"]).run().status(0);
}

#[test]
fn quiet_validate_prints_nothing_on_success() {
    let out = validate(&job(":test", ":quire/push"));
    out.status(0);
    let quiet = Test::new().ci(&format!("{PRELUDE}{}", job(":test", ":quire/push"))).args(&["-q", "validate"]).run();
    quiet.status(0);
    assert!(quiet.stdout.is_empty(), "{}", quiet.stdout);
}

// ---------------------------------------------------------------- generated docs

/// The committed completions and man page must equal what the binary prints.
#[test]
fn completions_and_man_page_are_fresh() {
    let root = harness::repo_root();
    let mut stale = Vec::new();
    let mut check = |args: &[&str], path: std::path::PathBuf| {
        let out = Test::without_git().args(args).run();
        out.status(0);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != out.stdout {
            stale.push(path.strip_prefix(&root).unwrap_or(&path).display().to_string());
        }
    };
    for (shell, file) in [
        ("bash", "quire-ci.bash"),
        ("zsh", "_quire-ci"),
        ("fish", "quire-ci.fish"),
        ("elvish", "quire-ci.elv"),
        ("powershell", "_quire-ci.ps1"),
    ] {
        check(&["completions", shell], root.join("completions").join(file));
    }
    check(&["man"], root.join("man/quire-ci.1"));
    assert!(stale.is_empty(), "stale generated files: {stale:?}; run scripts/gen-docs and commit the result");
}
