//! Validation of log lines against docs/log.schema.json: every run the
//! harness makes is checked with it, and tests of `--json` use it directly.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/log.schema.json");

/// The compiled schema, loaded once per test binary.
pub fn log_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_else(|e| panic!("cannot read {SCHEMA_PATH}: {e}"));
        let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{SCHEMA_PATH} is not JSON: {e}"));
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{SCHEMA_PATH} is not a valid draft 2020-12 schema: {e}"))
    })
}

/// Ok when `line` is one JSON object the schema accepts; otherwise every
/// complaint, joined.
pub fn validate_line(line: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let errors: Vec<String> =
        log_schema().iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Validate every line of one log.jsonl; panics naming file and line.
/// Returns the number of lines checked.
pub fn assert_log_file_valid(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if let Err(e) = validate_line(line) {
            panic!("{}:{}: {e}\n  line: {line}", path.display(), i + 1);
        }
        n += 1;
    }
    n
}

/// Validate every log.jsonl of a run directory (run level and every job).
/// Returns the number of lines checked.
pub fn assert_run_dir_valid(dir: &Path) -> usize {
    let mut n = assert_log_file_valid(&dir.join("log.jsonl"));
    if let Ok(entries) = std::fs::read_dir(dir.join("jobs")) {
        for entry in entries.flatten() {
            let log = entry.path().join("log.jsonl");
            if log.is_file() {
                n += assert_log_file_valid(&log);
            }
        }
    }
    n
}
