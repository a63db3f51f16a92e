//! A faster reader for Fennel source held in one string: the same forms,
//! with the same source fields, as fennel.lua's own parser makes of it.
//!
//! Fennel's parser reads a byte at a time through a closure that allocates
//! a table per byte, builds every symbol and string a character at a time,
//! and makes closures and tables in its per-byte helpers: about a third of
//! a cold `validate`. This one walks the string with `string.byte`, cuts
//! tokens out with `string.sub`, and builds each node with Fennel's own
//! constructors (`utils.sym`, `utils.list`, `utils.sequence`, ...), so the
//! tables it returns are the ones Fennel's parser would return, down to the
//! quirks of its column count.
//!
//! It only handles the plain case and gives up on anything else, which then
//! goes to Fennel's parser from the start: every parse error and every
//! warning (so the message is Fennel's own), the `comments` and
//! `whitespace` options, and a plugin with a `parse-form` hook. Fennel's
//! `compile-string` is the way in: it asks `parser["string-stream"]` for a
//! stream of the text and hands that stream to `parser.parser`; both are
//! replaced by wrappers that recognise the pair and serve the forms read
//! here. Anything else (a stream of another kind, the exported
//! `fennel.parser`) is Fennel's parser, untouched.

/// Installed on `package.loaded["fennel.parser"]` by [`super::Compiler::new`].
/// Called with that module table and `fennel.utils`; a fennel.lua without
/// the names used here is left as it is. The module table then holds this
/// reader as `["quire-ci-reader"]` (`read`, Fennel's own `parser`, and the
/// count of files it read: tests).
#[cfg_attr(not(test), allow(dead_code))] // build.rs compiles it (OWN_CHUNKS)
pub(super) const READER: &str = r#"
local parser, utils = ...
local string_stream, fennel_parser = parser["string-stream"], parser.parser
local sym, list, sequence, varg, copy, is_sym = utils.sym, utils.list, utils.sequence, utils.varg, utils.copy, utils["sym?"]
local root = utils.root
for _, f in ipairs({ string_stream, fennel_parser, sym, list, sequence, varg, copy, is_sym }) do
  if type(f) ~= "function" then return end
end
if type(root) ~= "table" then return end

local byte, sub, find, match, gsub, concat = string.byte, string.sub, string.find, string.match, string.gsub, table.concat
local setmetatable, getmetatable, tonumber, tostring, type, pairs, pcall, error, rawget =
  setmetatable, getmetatable, tonumber, tostring, type, pairs, pcall, error, rawget
local list_mt = getmetatable(list())

-- Byte classes, as fennel.lua's parser defines them.
local OPEN = { [40] = 41, [91] = 93, [123] = 125 }
local CLOSE = { [41] = true, [93] = true, [125] = true }
local PREFIX = { [35] = "hashfn", [39] = "quote", [44] = "unquote", [96] = "quote" }
local SYM, STARTER, SPACE = {}, {}, {}
for b = 0, 255 do
  SYM[b] = 32 < b and not OPEN[b] and not CLOSE[b] and b ~= 127 and b ~= 34 and b ~= 39
    and b ~= 126 and b ~= 59 and b ~= 44 and b ~= 64 and b ~= 96
  -- Fennel counts a column for each byte that may start a character.
  STARTER[b] = (((1 < b) and (b < 127)) or ((192 < b) and (b < 247))) and 1 or 0
  SPACE[b] = b == 32 or (9 <= b and b <= 13)
end
local ESCAPES = { [10] = "\\n", [11] = "\\v", [12] = "\\f", [13] = "\\r", [7] = "\\a", [8] = "\\b", [9] = "\\t" }
local function escape_char(c) return ESCAPES[byte(c)] end
local nan, negative_nan
if 45 == byte(tostring(0 / 0)) then
  nan, negative_nan = -(0 / 0), 0 / 0
else
  nan, negative_nan = 0 / 0, -(0 / 0)
end

-- Raised wherever Fennel's parser would raise an error or warn.
local GIVE_UP = {}
local function give_up() error(GIVE_UP, 0) end

-- Fennel's parser recurses where it means to loop: a call per token read
-- in the top-level form so far, plus one per byte of the string, symbol,
-- comment or run of whitespace being read. Luau has no tail calls and
-- stops at 20,000 calls ("stack overflow"), so a 30,000-byte string, or a
-- form of 100,000 tokens, is more than Fennel's parser can read here.
-- Where that count could come near the limit, this reader leaves the text
-- to Fennel's, which decides: such a text fails as it always has.
local DEPTH = 8000

-- Every top-level form of `s` (Fennel's string stream has turned a leading
-- `#!` into `;;`), or an error.
local function read_forms(s, filename)
  -- `idx` is the next byte; Fennel's `byteindex` (bytes read) is idx - 1.
  local idx, line, col = 1, 1, 0
  local stack, forms, nforms = {}, {}, 0
  local spaced = true -- Fennel's whitespace-since-dispatch
  local depth = 0 -- tokens read in this top-level form (see DEPTH)

  -- A form is done: into the innermost open one, or out as a top-level
  -- form (true). An open quoting prefix wraps it first.
  local function dispatch(v)
    spaced = false
    while true do
      local n = #stack
      local top = stack[n]
      if top == nil then
        nforms = nforms + 1
        forms[nforms] = v
        return true
      end
      local prefix = top.prefix
      if prefix == nil then
        top[#top + 1] = v
        return false
      end
      stack[n] = nil
      top.byteend, top.endcol, top.endline = idx - 1, col - 1, line
      v = copy(top, list(sym(prefix, top), v))
    end
  end

  local function close_sequence(tbl)
    local mt = getmetatable(sequence())
    for k, v in pairs(tbl) do
      if "number" ~= type(k) then
        mt[k] = v
        tbl[k] = nil
      end
    end
    return dispatch(setmetatable(tbl, mt))
  end

  local function close_curly(tbl)
    local keys, val = {}, {}
    if #tbl % 2 ~= 0 then give_up() end
    setmetatable(val, tbl)
    for i = 1, #tbl, 2 do
      if tostring(tbl[i]) == ":" and is_sym(tbl[i + 1]) and is_sym(tbl[i]) then
        tbl[i] = tostring(tbl[i + 1])
      end
      val[tbl[i]] = tbl[i + 1]
      keys[#keys + 1] = tbl[i]
    end
    -- No comment is ever read here (the `comments` option is off).
    tbl.comments = { keys = {}, last = {}, values = {} }
    tbl.keys = keys
    return dispatch(val)
  end

  local function read_string()
    if not spaced then give_up() end -- Fennel warns
    -- idx - 1 is the opening quote.
    local from, j, cuts = idx - 1, idx, nil
    local escaped = false
    while true do
      local c = byte(s, j)
      if c == nil then give_up() end
      col = col + STARTER[c]
      if c == 10 then
        line, col = line + 1, 0
        -- A backslash before a newline is dropped; the newline stays.
        if escaped then
          cuts = cuts or {}
          cuts[#cuts + 1] = j - 1
        end
        escaped = false
      elseif escaped then
        escaped = false
      elseif c == 92 then
        escaped = true
      elseif c == 34 then
        break
      end
      j = j + 1
    end
    if depth + (j - from) > DEPTH then give_up() end
    idx = j + 1
    local raw
    if cuts == nil then
      raw = sub(s, from, j)
    else
      local parts, at = {}, from
      for _, cut in ipairs(cuts) do
        parts[#parts + 1] = sub(s, at, cut - 1)
        at = cut + 1
      end
      parts[#parts + 1] = sub(s, at, j)
      raw = concat(parts)
    end
    local formatted = gsub(raw, "[\7-\13]", escape_char)
    local load_fn = (rawget(_G, "loadstring") or load)("return " .. formatted)
    if load_fn == nil then give_up() end
    return dispatch(load_fn())
  end

  local function read_prefix(b)
    local frame = { bytestart = idx - 1, col = col - 1, filename = filename, line = line, prefix = PREFIX[b] }
    stack[#stack + 1] = frame
    local nextb = byte(s, idx)
    if nextb == nil then give_up() end
    local trailing = SPACE[nextb] or CLOSE[nextb]
    if trailing and b ~= 35 then give_up() end
    -- Fennel reads the next byte and puts it back; a newline put back
    -- leaves its column one further on.
    if nextb == 10 then col = col + 1 end
    if trailing then
      stack[#stack] = nil
      frame.byteend, frame.endcol, frame.endline = idx - 1, col - 1, line
      return dispatch(sym('#', frame))
    end
    return false
  end

  local function read_number(rawstr)
    local trimmed = (not find(rawstr, "^_") and gsub(rawstr, "_", ""))
    if trimmed == "nan" or trimmed == "-nan" then
      return false
    elseif match(rawstr, "^%d") then
      local x = tonumber(trimmed)
      if x == nil then give_up() end
      return true, dispatch(x)
    else
      local x = tonumber(trimmed)
      if x ~= nil then return true, dispatch(x) end
      return false
    end
  end

  local function read_symbol()
    local from = idx - 1
    local source = { bytestart = from, col = col - 1, filename = filename, line = line }
    local j = idx
    local c = byte(s, j)
    while c ~= nil and SYM[c] do
      col = col + STARTER[c]
      j = j + 1
      c = byte(s, j)
    end
    if c == 10 then col = col + 1 end -- put back, as in read_prefix
    if depth + (j - from) > DEPTH then give_up() end
    idx = j
    local rawstr = sub(s, from, j - 1)
    source.byteend, source.endcol, source.endline = j - 1, col - 1, line
    if rawstr == "true" then
      return dispatch(true)
    elseif rawstr == "false" then
      return dispatch(false)
    elseif rawstr == "..." then
      return dispatch(varg(source))
    elseif rawstr == ".inf" then
      return dispatch(1 / 0)
    elseif rawstr == "-.inf" then
      return dispatch(-1 / 0)
    elseif rawstr == ".nan" then
      return dispatch(nan)
    elseif rawstr == "-.nan" then
      return dispatch(negative_nan)
    elseif match(rawstr, "^:.+$") then
      return dispatch(sub(rawstr, 2))
    end
    local number, done = read_number(rawstr)
    if number then return done end
    -- Fennel's check for malformed symbols, every branch an error.
    if (match(rawstr, "^~") and rawstr ~= "~=")
      or (match(rawstr, "[%.:][%.:]") and rawstr ~= ".." and rawstr ~= "$...")
      or (rawstr ~= ":" and match(rawstr, ":$"))
      or match(rawstr, ":.+[%.:]") then
      give_up()
    end
    if not spaced then give_up() end -- Fennel warns
    return dispatch(sym(rawstr, source))
  end

  while true do
    -- One top-level form (one call of Fennel's parse-stream).
    spaced = true
    depth = 0
    local done = false
    while not done do
      local b = byte(s, idx)
      local run = idx
      while b ~= nil and SPACE[b] do
        spaced = true
        col = col + 1
        if b == 10 then line, col = line + 1, 0 end
        idx = idx + 1
        b = byte(s, idx)
      end
      depth = depth + 1
      if depth + (idx - run) > DEPTH then give_up() end
      if b == nil then
        if stack[1] ~= nil then give_up() end
        return forms, nforms
      end
      idx = idx + 1
      col = col + STARTER[b]
      if b == 59 then
        -- A comment runs to its newline, which it takes.
        local nl = find(s, "\n", idx, true)
        if depth + ((nl or #s) - idx) > DEPTH then give_up() end
        if nl == nil then
          idx = #s + 1
        else
          idx, line, col = nl + 1, line + 1, 0
        end
      elseif OPEN[b] then
        if not spaced then give_up() end
        stack[#stack + 1] = { bytestart = idx - 1, closer = OPEN[b], col = col - 1, filename = filename, line = line }
      elseif CLOSE[b] then
        local n = #stack
        local top = stack[n]
        if top == nil then give_up() end
        if top.closer and top.closer ~= b then give_up() end
        stack[n] = nil
        top.byteend, top.endcol, top.endline = idx - 1, col - 1, line
        if b == 41 then
          done = dispatch(setmetatable(top, list_mt))
        elseif b == 93 then
          done = close_sequence(top)
        else
          done = close_curly(top)
        end
      elseif b == 34 then
        done = read_string()
      elseif PREFIX[b] then
        done = read_prefix(b)
      elseif SYM[b] or b == 126 then
        done = read_symbol()
      else
        give_up()
      end
    end
  end
end

local state = { hits = 0, fennel = fennel_parser }

-- The forms of `str` as Fennel's parser would read them, or nil where this
-- reader leaves it to Fennel's.
function state.read(str, filename, options)
  filename = filename or "unknown"
  options = options or root.options or {}
  if type(str) ~= "string" or type(filename) ~= "string" or options.comments or options.whitespace ~= nil then
    return nil
  end
  local plugins = options.plugins or (root.options and root.options.plugins)
  if plugins ~= nil then
    for _, plugin in ipairs(plugins) do
      if plugin["parse-form"] ~= nil then return nil end
    end
  end
  local ok, forms, n = pcall(read_forms, (gsub(str, "^#!", ";;")), filename)
  -- Any other error (a NaN as a table key, the memory cap, the deadline)
  -- is Fennel's parser's to raise as well, as it would have.
  if not ok then return nil end
  state.hits = state.hits + 1
  return forms, n
end

-- compile-string asks for a stream of the text, then hands it straight
-- to `parser.parser`: the last stream made is the one to recognise.
local last_stream, last_text = nil, nil
parser["string-stream"] = function(str, options)
  local stream = string_stream(str, options)
  last_stream, last_text = stream, str
  return stream
end
parser.parser = function(stream, filename, options)
  if stream ~= nil and stream == last_stream then
    local text = last_text
    last_stream, last_text = nil, nil
    local forms, n = state.read(text, filename, options)
    if forms ~= nil then
      local i = 0
      return function()
        if i >= n then return nil end
        i = i + 1
        return true, forms[i]
      end
    end
  end
  return fennel_parser(stream, filename, options)
end
parser["quire-ci-reader"] = state
"#;

#[cfg(test)]
mod tests {
    use super::super::{Compiled, Compiler};
    use crate::sandbox::Clock;
    use mlua::chunk::ChunkMode;
    use mlua::Function;
    use std::path::Path;

    /// Reads one text with both readers and says how each did:
    /// ("read" | "gave up", Fennel's "ok" | "warned" | "error: …", and where
    /// the forms differ when both read it, else "").
    const COMPARE: &str = r#"
local state = package.loaded["fennel.parser"]["quire-ci-reader"]
local function differ(a, b, path, seen)
  if rawequal(a, b) then return nil end
  local ta, tb = type(a), type(b)
  if ta ~= tb then return path .. ": " .. ta .. " vs " .. tb end
  if ta == "number" then
    if a ~= a and b ~= b and tostring(a) == tostring(b) then return nil end
    if a == b and (a ~= 0 or 1 / a == 1 / b) then return nil end
    return path .. ": " .. tostring(a) .. " vs " .. tostring(b)
  end
  -- Each sequence has a view function of its own: both having one will do.
  if ta == "function" then return nil end
  if ta ~= "table" then return path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
  if seen[a] ~= nil then
    if rawequal(seen[a], b) then return nil end
    return path .. ": shared differently"
  end
  seen[a] = b
  local na, nb = 0, 0
  for _ in pairs(b) do nb = nb + 1 end
  for k, v in pairs(a) do
    na = na + 1
    if type(k) == "table" then
      local found = false
      for kb, vb in pairs(b) do
        if type(kb) == "table" and differ(k, kb, path, setmetatable({}, { __index = seen })) == nil
          and differ(v, vb, path, setmetatable({}, { __index = seen })) == nil then
          found = true
          break
        end
      end
      if not found then return path .. ": no key like a table key" end
    else
      local d = differ(v, rawget(b, k), path .. "." .. tostring(k), seen)
      if d then return d end
    end
  end
  if na ~= nb then return path .. ": " .. na .. " vs " .. nb .. " entries" end
  return differ(getmetatable(a), getmetatable(b), path .. "<mt>", seen)
end
return function(src, filename)
  local warned = false
  local opts = { warn = function() warned = true end }
  local ours, n = state.read(src, filename, opts)
  local theirs, m = {}, 0
  local ok, err = pcall(function()
    for _, form in state.fennel(src, filename, { warn = opts.warn }) do
      m = m + 1
      theirs[m] = form
    end
  end)
  local verdict = (not ok and ("error: " .. tostring(err))) or (warned and "warned") or "ok"
  local diff = ""
  if ours ~= nil and ok then
    if n ~= m then
      diff = n .. " forms vs " .. m
    else
      for i = 1, n do
        local d = differ(ours[i], theirs[i], "form " .. i, {})
        if d then diff = d break end
      end
    end
  end
  return (ours ~= nil) and "read" or "gave up", verdict, diff
end
"#;

    fn compiler() -> Compiler {
        Compiler::new(&Clock::default(), 256 << 20).expect("the compile VM loads")
    }

    fn comparer(c: &Compiler) -> Function {
        // Thousands of reads: collect as they go (a compile does not).
        c.lua.gc_restart();
        c.lua.load(COMPARE).set_mode(ChunkMode::Text).eval().expect("the comparison loads")
    }

    fn compare(f: &Function, c: &Compiler, src: &[u8]) -> (String, String, String) {
        let text = c.lua.create_string(src).expect("a Lua string");
        let (ours, fennel, diff): (String, mlua::LuaString, String) =
            f.call((text, "t.fnl")).expect("the comparison runs");
        (ours, fennel.to_string_lossy(), diff)
    }

    /// What Fennel's reader makes of it, every quirk this reader copies:
    /// the column of a token that ends a line, a quote prefix on a line of
    /// its own, `#` alone, strings with every kind of escape and a
    /// backslash-newline, keywords, numbers of every form, multi-byte
    /// characters before tokens, table keys that are tables, `{: x}`.
    const TRICKY: &str = "#!/usr/bin/env fennel\n\
;; a comment ✓ with ünïcode\n\
(local ci (require :quire.ci)) ; trailing\n\
(local t {:a 1 \"b\" 2 [1 2] 3 {:k :v} 4 : ci :ci ci})\n\
(local s [\"plain\" \"é ü ✓\" \"tab\\tnl\\n\\\\ q\\\" \\x41\\u{48}\\065\\z   end\" \"line\\\n\
next\" \"raw\ttab\r\ncr\" \"\"])\n\
(local n [1 -1 1.5 -0.5 .5 1e3 1E-2 0x1F 0XaB 1_000 -1_0 .inf -.inf .nan -.nan 1. 0])\n\
(local syms [a.b.c a:b ~= .. $... $ $1 ... _ -x x- a# ?x &as])\n\
(local q ['x `(a ,b) #(+ $1 1) (# [1 2]) #\n\
 (fn [...] ...)])\n\
(local deep [[[[]]] {} () [{:x [{}]}]])\n\
(ci.job :build [:quire/push]\r\n\
  (fn [{: sh}]\r\n\
    (sh \"echo é\")))\r\n\
(let [ü 1 ✓ 2] (+ ü ✓))\n\
(print (.. \"a\" \"b\"))\n\
(';quoted past a comment\n\
) x)\n\
y\n\
true false nil\n\
:kw ; no newline at the end";

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = vec![("tricky".to_string(), TRICKY.as_bytes().to_vec())];
        for dir in std::fs::read_dir(root.join("fixtures")).expect("fixtures/") {
            let quire = dir.expect("an entry").path().join(".quire");
            for file in std::fs::read_dir(&quire).into_iter().flatten().flatten() {
                if file.path().extension().is_some_and(|e| e == "fnl") {
                    out.push((file.path().display().to_string(), std::fs::read(file.path()).expect("reads")));
                }
            }
        }
        // The pipelines the docs show, and the ones the scenario tests run
        // (their raw strings that mention a job).
        for dir in ["docs", "tests/scenarios"] {
            for file in std::fs::read_dir(root.join(dir)).expect("reads").flatten() {
                let text = std::fs::read_to_string(file.path()).unwrap_or_default();
                let (open, close) = if dir == "docs" { ("```fennel\n", "```") } else { ("r#\"", "\"#") };
                for (i, piece) in text.split(open).skip(1).enumerate() {
                    let body = piece.split(close).next().unwrap_or("");
                    if dir == "docs" || body.contains("ci.job") {
                        out.push((format!("{} #{i}", file.path().display()), body.as_bytes().to_vec()));
                    }
                }
            }
        }
        // Past what Fennel's parser can read under Luau (see DEPTH): the
        // corpus test wants Fennel's error, so this reader gave up.
        let long = "x".repeat(30_000);
        let deep = [
            format!("(local s \"{long}\")"),
            format!(";{long}\n(print 1)"),
            format!("(print{}1)", " ".repeat(30_000)),
            format!("(print :{long})"),
            format!("{}(print 1)", ";c\n".repeat(25_000)),
            format!("{}nil{}", "(do ".repeat(12_000), ")".repeat(12_000)),
        ];
        for (i, text) in deep.into_iter().enumerate() {
            out.push((format!("too deep #{i}"), text.into_bytes()));
        }
        // Well within it: read here.
        out.push((
            "long".to_string(),
            format!("(local s \"{}\") ;{}", "y".repeat(5000), "z".repeat(5000)).into_bytes(),
        ));
        let mut jobs = String::from("(local ci (require :quire.ci))\n(do\n");
        for i in (0..100).rev() {
            jobs.push_str(&format!("(ci.job :j{i} [:j{}] (fn [{{: sh}}] (sh \"echo {i}\")))\n", i / 10 * 10));
        }
        jobs.push(')');
        out.push(("100 jobs".to_string(), jobs.into_bytes()));
        out
    }

    #[test]
    fn reads_every_pipeline_here_into_the_forms_fennels_reader_makes() {
        let c = compiler();
        let f = comparer(&c);
        let corpus = fixtures();
        assert!(corpus.len() > 60, "the corpus is the repo's pipelines: {}", corpus.len());
        let mut read = 0;
        for (name, src) in &corpus {
            let (ours, fennel, diff) = compare(&f, &c, src);
            assert_eq!(diff, "", "{name}: the forms differ");
            if name == "tricky" || name == "100 jobs" || name.contains("fixtures") {
                assert_eq!(fennel, "ok", "{name} is meant to be read cleanly");
            }
            if name.starts_with("too deep") {
                assert!(fennel.contains("stack overflow"), "{name}: {}", &fennel[..fennel.len().min(300)]);
            }
            match fennel.as_str() {
                "ok" => {
                    assert_eq!(ours, "read", "{name}: Fennel read it without a word; so must this reader");
                    read += 1;
                }
                _ => assert_eq!(ours, "gave up", "{name}: Fennel said {fennel}; this reader must leave it to Fennel"),
            }
        }
        assert!(read > 60, "most of the corpus reads cleanly: {read}");
    }

    /// Thousands of broken and odd texts made from the corpus: wherever
    /// Fennel's reader errs or warns this one gives up (so the message is
    /// Fennel's), and wherever Fennel reads it cleanly this one reads the
    /// same forms.
    #[test]
    fn on_mangled_pipelines_it_reads_what_fennel_reads_and_gives_up_on_the_rest() {
        let c = compiler();
        let f = comparer(&c);
        let corpus = fixtures();
        let bytes: &[u8] = b"()[]{}\"\\;'`,#~:.@ \n\t\r09_-ex\x01\x7f\xc3\xa9\x80";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        let (mut read, mut gave_up) = (0, 0);
        for (name, src) in corpus.iter().filter(|(_, s)| s.len() < 6000) {
            for round in 0..40 {
                let mut text = src.clone();
                for _ in 0..1 + next(3) {
                    let at = next(text.len() + 1);
                    match next(4) {
                        0 if at < text.len() => {
                            text.remove(at);
                        }
                        1 => text.insert(at, bytes[next(bytes.len())]),
                        2 => text.truncate(at),
                        _ => {
                            let end = (at + next(40)).min(text.len());
                            let piece = text[at..end].to_vec();
                            let to = next(text.len() + 1);
                            text.splice(to..to, piece);
                        }
                    }
                }
                let (ours, fennel, diff) = compare(&f, &c, &text);
                let shown = String::from_utf8_lossy(&text);
                assert_eq!(diff, "", "{name}, round {round}: the forms differ for\n{shown}");
                if fennel == "ok" {
                    assert_eq!(ours, "read", "{name}, round {round}: Fennel read it cleanly; so must this\n{shown}");
                    read += 1;
                } else {
                    assert_eq!(ours, "gave up", "{name}, round {round}: Fennel said {fennel} for\n{shown}");
                    gave_up += 1;
                }
            }
        }
        assert!(read > 500 && gave_up > 500, "both kinds were tried: {read} read, {gave_up} given up");
    }

    /// Options and plugins that change what Fennel's parser reads leave
    /// the text to it.
    #[test]
    fn leaves_the_text_to_fennel_when_an_option_or_plugin_changes_the_reading() {
        let c = compiler();
        let said: Vec<bool> = c
            .lua
            .load(
                r#"
                local read = package.loaded["fennel.parser"]["quire-ci-reader"].read
                local src = "(print 1) ; hi"
                return {
                  read(src, "t.fnl", {}) ~= nil,
                  read(src, "t.fnl", { comments = true }) ~= nil,
                  read(src, "t.fnl", { whitespace = { [44] = true } }) ~= nil,
                  read(src, "t.fnl", { plugins = { { name = "p", ["parse-form"] = function() end } } }) ~= nil,
                  read(src, "t.fnl", { plugins = { { name = "p", call = function() end } } }) ~= nil,
                }
                "#,
            )
            .set_mode(ChunkMode::Text)
            .eval()
            .expect("reads");
        assert_eq!(said, [true, false, false, false, true]);
    }

    /// The compile, which is what a user sees: the same Lua, the same form
    /// lines, the same errors, with this reader as with Fennel's; and this
    /// reader was the one used.
    #[test]
    fn a_compile_with_it_is_the_compile_with_fennels_reader() {
        let ours = compiler();
        let theirs = compiler();
        theirs
            .lua
            .load("local p = package.loaded['fennel.parser'] p.parser = p['quire-ci-reader'].fennel")
            .set_mode(ChunkMode::Text)
            .exec()
            .expect("Fennel's reader back");
        let hits = |c: &Compiler| -> u32 {
            c.lua
                .load("return package.loaded['fennel.parser']['quire-ci-reader'].hits")
                .set_mode(ChunkMode::Text)
                .eval()
                .expect("reads the count")
        };
        let mut corpus = fixtures();
        for broken in [
            "(ci.job :a [:quire/push] (fn [] (sh \"x\"))",
            "(local x {:a})",
            "(print 'x) )",
            "(a b)(c d) @",
            "(local x \"\\q\")",
        ] {
            corpus.push((format!("broken {broken}"), broken.as_bytes().to_vec()));
        }
        let show = |r: Result<Compiled, super::super::CompileError>| match r {
            Ok(c) => format!("{}\n{:?}\n{:?}\n{:?}", c.lua, c.forms, c.calls, c.server_notes),
            Err(e) => format!("{e:?}"),
        };
        let mut compiled = 0;
        for (name, src) in &corpus {
            let Ok(src) = std::str::from_utf8(src) else { continue };
            let before = hits(&ours);
            let a = ours.compile("t.fnl", src);
            let read = hits(&ours) > before;
            compiled += usize::from(a.is_ok());
            if a.is_ok() {
                assert!(read, "{name}: compiled, but not from this reader's forms");
            }
            assert_eq!(show(a), show(theirs.compile("t.fnl", src)), "{name}");
        }
        assert_eq!(hits(&theirs), 0);
        assert!(compiled > 40, "most of the corpus compiles: {compiled}");
    }
}
