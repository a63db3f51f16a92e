//! Embeds the Fennel compiler (`fennel.lua`) into the binary, both as text
//! and as Luau bytecode compiled here, so `validate` does not pay Luau's
//! compile of 290 KB of Lua on every start (about 13 ms of a 50 ms budget).
//!
//! fennel.lua is a dependency, never committed here: it is found through
//! `QUIRE_FENNEL_LUA`, then the standard install paths. `scripts/bootstrap`
//! provides it on a machine that has none.

use std::path::{Path, PathBuf};

const STANDARD_PATHS: &[&str] = &[
    "/usr/share/lua/5.4/fennel.lua",
    "/usr/local/share/lua/5.4/fennel.lua",
    "/usr/share/lua/5.3/fennel.lua",
    "/usr/local/share/lua/5.3/fennel.lua",
    "/usr/share/lua/5.1/fennel.lua",
    "/usr/local/share/lua/5.1/fennel.lua",
    "/opt/homebrew/share/lua/5.4/fennel.lua",
];

fn main() {
    println!("cargo:rerun-if-env-changed=QUIRE_FENNEL_LUA");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("QUIRE_FENNEL_LUA") {
        if !p.is_empty() {
            candidates.push(PathBuf::from(p));
        }
    }
    candidates.push(manifest.join(".deps/fennel.lua"));
    candidates.extend(STANDARD_PATHS.iter().map(PathBuf::from));

    let Some(found) = candidates.iter().find(|p| p.is_file()) else {
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "\nerror: quire-ci needs the Fennel compiler (fennel.lua) at build time.\n\
             looked in:\n  {}\n\
             fix: run `scripts/bootstrap` (fetches Debian's `fennel` package and\n\
             extracts fennel.lua into .deps/), or install it (`apt install fennel`\n\
             on Debian 13+) and/or set QUIRE_FENNEL_LUA=/path/to/fennel.lua.\n",
            looked.join("\n  ")
        );
        std::process::exit(1);
    };
    println!("cargo:rerun-if-changed={}", found.display());
    let text = std::fs::read_to_string(found).unwrap_or_else(|e| {
        eprintln!("error: cannot read {}: {e}", found.display());
        std::process::exit(1);
    });
    let version = fennel_version(&text).unwrap_or_else(|| "unknown".to_string());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    write(&out.join("fennel.lua"), text.as_bytes());
    // Same Luau as the binary links (one Cargo.lock), optimisation level 2
    // (inlining), line info kept for Fennel's own tracebacks.
    let bytecode =
        mlua::chunk::Compiler::new().set_optimization_level(2).set_debug_level(1).compile(&text).unwrap_or_else(|e| {
            eprintln!("error: Luau cannot compile {}: {e}", found.display());
            std::process::exit(1);
        });
    write(&out.join("fennel.luau"), &bytecode);
    precompile_builtin_macros(&text, &out);
    precompile_own_chunks(&manifest, &out);
    println!("cargo:rustc-env=QUIRE_FENNEL_VERSION={version}");
    println!("cargo:rustc-env=QUIRE_COMPILE_FINGERPRINT={}", compile_fingerprint(&manifest, &text));
}

/// The Rust files that decide what a Fennel compile produces: the compile
/// VM (shims, plugins, options), the server-compat plugin, the allowed
/// globals, and the compile cache's own format.
const COMPILE_INPUTS: &[&str] =
    &["src/fennel.rs", "src/fennel/reader.rs", "src/server_compat.rs", "src/sandbox.rs", "src/compile_cache.rs"];

/// FNV-1a (64 bits) over fennel.lua and [`COMPILE_INPUTS`]: a compile cache
/// entry written by a build that compiles differently is then never read,
/// even within one version (during development). No hash crate is needed
/// for a fingerprint that only has to change.
fn compile_fingerprint(manifest: &Path, fennel: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(fennel.as_bytes());
    for rel in COMPILE_INPUTS {
        let path = manifest.join(rel);
        println!("cargo:rerun-if-changed={}", path.display());
        eat(&std::fs::read(&path).unwrap_or_default());
    }
    format!("{h:016x}")
}

/// fennel.lua carries its built-in macros (macros.fnl, match.fnl) as Lua
/// source in long strings, `load_macros([===[...]===], env)`, which it hands
/// to `loadstring` on every start: 69 KB for Luau to compile each time.
/// Compile them here too; `src/fennel.rs` serves the bytecode when
/// `loadstring` is given exactly that text. A fennel.lua shaped otherwise
/// just gets no precompiled macros.
fn precompile_builtin_macros(text: &str, out: &Path) {
    const OPEN: &str = "load_macros([===[";
    const CLOSE: &str = "]===]";
    let mut entries = Vec::new();
    let mut rest = text;
    // Lua turns a \r\n inside a long string into \n; keep to exact bytes.
    while let (Some(at), false) = (rest.find(OPEN), text.contains('\r')) {
        let body = &rest[at + OPEN.len()..];
        let Some(end) = body.find(CLOSE) else { break };
        let source = &body[..end];
        // A newline right after the opening bracket is not part of the string.
        let source = source.strip_prefix('\n').unwrap_or(source);
        let bytecode =
            mlua::chunk::Compiler::new().set_optimization_level(2).set_debug_level(1).compile(source).unwrap_or_else(
                |e| {
                    eprintln!("error: Luau cannot compile fennel.lua's built-in macros: {e}");
                    std::process::exit(1);
                },
            );
        let n = entries.len();
        write(&out.join(format!("fennel-macros-{n}.lua")), source.as_bytes());
        write(&out.join(format!("fennel-macros-{n}.luau")), &bytecode);
        entries.push(format!(
            "(include_str!(concat!(env!(\"OUT_DIR\"), \"/fennel-macros-{n}.lua\")), include_bytes!(concat!(env!(\"OUT_DIR\"), \"/fennel-macros-{n}.luau\")))"
        ));
        rest = &body[end + CLOSE.len()..];
    }
    let list = format!("&[{}]\n", entries.join(",\n"));
    write(&out.join("fennel_macros.rs"), list.as_bytes());
}

/// quire-ci's own Lua for the compile VM, written in the Rust files that
/// use it as `const NAME: &str = r#"..."#;` and compiled here as well, so a
/// start loads bytecode instead of running Luau's compiler on it (~4 M
/// instructions of a cold `validate`). Each is `$OUT_DIR/chunk-NAME.luau`;
/// the Rust file keeps the text, which a unit test compiles and compares.
const OWN_CHUNKS: &[(&str, &str)] = &[
    ("src/fennel.rs", "SHIMS"),
    ("src/fennel.rs", "LOADSTRING_SHIM"),
    ("src/fennel.rs", "POSITIONS_PLUGIN"),
    ("src/fennel.rs", "HOOK_DISPATCH"),
    ("src/fennel.rs", "MACRO_SEARCHER"),
    ("src/fennel/reader.rs", "READER"),
    ("src/server_compat.rs", "PLUGIN"),
];

fn precompile_own_chunks(manifest: &Path, out: &Path) {
    for (file, name) in OWN_CHUNKS {
        let path = manifest.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let open = format!("const {name}: &str = r#\"");
        let Some(start) = text.find(&open).map(|at| at + open.len()) else {
            panic!("{file} has no `{open}`: build.rs's OWN_CHUNKS lists it");
        };
        let Some(len) = text[start..].find("\"#;") else { panic!("{file}: {name} is not closed with \"#;") };
        // As fennel.lua above: the unit test compiles the text the same way.
        let bytecode = mlua::chunk::Compiler::new()
            .set_optimization_level(2)
            .set_debug_level(1)
            .compile(&text[start..start + len])
            .unwrap_or_else(|e| panic!("Luau cannot compile {name} in {file}: {e}"));
        write(&out.join(format!("chunk-{name}.luau")), &bytecode);
    }
}

fn fennel_version(text: &str) -> Option<String> {
    // fennel.lua declares `local version = "1.5.3"` (or `utils.version`).
    text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("local version = \"").or_else(|| l.strip_prefix("version = \""))?;
        Some(rest.split('"').next()?.to_string())
    })
}

fn write(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(bytes) {
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}
