//! Lua 5.4 functions the forge's server has and Luau lacks, added to the
//! execute VM so a ci.fnl written for the server runs here: `math.type` and
//! `math.tointeger` (docs/server-differences.md).
//!
//! Owns: how one Luau number (a double) answers Lua 5.4's integer/float
//! questions, and Lua 5.4's string-to-number conversion for them. Must not
//! know about: jobs, Docker, the terminal.
//!
//! Luau has one number type, so "integer" here means what a Lua 5.4 integer
//! can hold: an integral value in [-2^63, 2^63). Integer arithmetic gives the
//! same answers as on the server; a float that happens to be integral (`(/ 10
//! 2)`, `3.0`) says "integer" here and "float" there, and `-0.0`, which no
//! Lua 5.4 integer can be, stays a float.

use mlua::{Lua, MultiValue, Table, Value};

/// 2^63: the first double past Lua 5.4's integer range.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// Adds `math.type` and `math.tointeger` to `math` (before the VM is sealed).
pub fn install(lua: &Lua, math: &Table) -> mlua::Result<()> {
    math.raw_set(
        "type",
        lua.create_function(|lua, args: MultiValue| {
            let v = first_arg(&args, "math.type")?;
            Ok(match number_kind(v) {
                Some(kind) => Value::String(lua.create_string(kind)?),
                None => Value::Nil,
            })
        })?,
    )?;
    math.raw_set(
        "tointeger",
        lua.create_function(|_, args: MultiValue| {
            let v = first_arg(&args, "math.tointeger")?;
            Ok(match to_integer(v) {
                Some(n) => Value::Number(n),
                None => Value::Nil,
            })
        })?,
    )?;
    Ok(())
}

/// Lua's `luaL_checkany`: a missing argument is an error, an explicit nil is not.
fn first_arg<'a>(args: &'a MultiValue, name: &str) -> mlua::Result<&'a Value> {
    args.front().ok_or_else(|| mlua::Error::runtime(format!("bad argument #1 to '{name}' (value expected)")))
}

/// `math.type`: "integer", "float", or None for a value that is not a number
/// (strings included: Lua 5.4 does not convert them here).
pub fn number_kind(v: &Value) -> Option<&'static str> {
    match v {
        Value::Integer(_) => Some("integer"),
        // -0.0 converts to the integer 0 but is not one: no integer is -0.
        Value::Number(n) => Some(if float_as_integer(*n).is_some() && !(*n == 0.0 && n.is_sign_negative()) {
            "integer"
        } else {
            "float"
        }),
        _ => None,
    }
}

/// `math.tointeger`: the integer a value converts to, or None. Numbers
/// convert when integral and in range; strings when Lua 5.4 reads them as
/// such a number (`"8"`, `" 0x10 "`, `"1e2"`, but not `"8.5"` or `"inf"`).
pub fn to_integer(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => float_as_integer(*n),
        Value::String(s) => match string_to_number(&s.as_bytes())? {
            LuaNumber::Integer(i) => Some(i as f64),
            LuaNumber::Float(f) => float_as_integer(f),
        },
        _ => None,
    }
}

/// An integral double in Lua 5.4's integer range, as that integer (`-0.0`
/// becomes `0`).
fn float_as_integer(n: f64) -> Option<f64> {
    let integral = n.is_finite() && n.fract() == 0.0 && (-TWO_63..TWO_63).contains(&n);
    integral.then_some(n + 0.0)
}

/// A number as Lua 5.4 reads it from a string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LuaNumber {
    Integer(i64),
    Float(f64),
}

/// Lua 5.4's string-to-number conversion (`lua_stringtonumber`): an integer
/// numeral (decimal, or hex that wraps around), else a float numeral
/// (decimal or hex, never `inf`/`nan`), with spaces allowed around it.
pub fn string_to_number(s: &[u8]) -> Option<LuaNumber> {
    if s.contains(&0) {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let trimmed = text.trim_matches(is_lua_space);
    if let Some(i) = str_to_int(trimmed) {
        return Some(LuaNumber::Integer(i));
    }
    if trimmed.contains(['n', 'N']) {
        return None;
    }
    str_to_float(trimmed).map(LuaNumber::Float)
}

fn is_lua_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

fn strip_hex_prefix(s: &str) -> Option<&str> {
    s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
}

/// Lua 5.4's `l_str2int`: a decimal numeral that fits an i64 (else it is
/// read as a float), or a hex numeral taken modulo 2^64.
fn str_to_int(s: &str) -> Option<i64> {
    let (neg, body) = split_sign(s);
    let mut a: u64 = 0;
    if let Some(hex) = strip_hex_prefix(body) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        for b in hex.bytes() {
            a = a.wrapping_mul(16).wrapping_add(u64::from((b as char).to_digit(16)?));
        }
    } else {
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let max_by_10 = i64::MAX as u64 / 10;
        let max_last = i64::MAX as u64 % 10;
        for b in body.bytes() {
            let d = u64::from(b - b'0');
            if a >= max_by_10 && (a > max_by_10 || d > max_last + u64::from(neg)) {
                return None;
            }
            a = a * 10 + d;
        }
    }
    let a = if neg { 0u64.wrapping_sub(a) } else { a };
    Some(a as i64)
}

/// A float numeral as C's `strtod` reads one (whole string, no `inf`/`nan`).
fn str_to_float(s: &str) -> Option<f64> {
    let (neg, body) = split_sign(s);
    let value = match strip_hex_prefix(body) {
        Some(hex) => hex_float(hex)?,
        None => {
            // Rust's grammar is strtod's decimal one, minus the sign (split off
            // above so "+-1" stays refused) and the inf/nan words (excluded).
            if body.starts_with(['+', '-']) || body.is_empty() {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if neg { -value } else { value })
}

/// `0x` already removed: hex digits, an optional fraction, an optional
/// binary exponent `p[+-]digits`.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = match s.find(['p', 'P']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut value = 0.0f64;
    for c in int_part.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exponent {
        let (eneg, digits) = split_sign(e);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let e: i32 = digits.parse().unwrap_or(i32::MAX);
        value *= 2f64.powi(if eneg { -e } else { e });
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: (Lua expression, math.type, math.tointeger) as Lua 5.4.4
    /// (Debian's lua5.4) answered them; None for fail. Where Luau cannot hold
    /// the distinction (an integral float), the expected value is ours and
    /// the comment says what the server answers.
    const CASES: &[(&str, Option<&str>, Option<f64>)] = &[
        ("3", Some("integer"), Some(3.0)),
        ("-7", Some("integer"), Some(-7.0)),
        ("3.5", Some("float"), None),
        ("-0.0", Some("float"), Some(0.0)),
        ("2^53", Some("integer"), Some(9007199254740992.0)), // server: float
        ("2^63", Some("float"), None),
        ("-2^63", Some("integer"), Some(-TWO_63)), // server: float
        ("1/0", Some("float"), None),
        ("-1/0", Some("float"), None),
        ("0/0", Some("float"), None),
        ("10/2", Some("integer"), Some(5.0)),  // server: float
        ("1e15", Some("integer"), Some(1e15)), // server: float
        ("'8'", None, Some(8.0)),
        ("'8.0'", None, Some(8.0)),
        ("' 8 '", None, Some(8.0)),
        ("'0x10'", None, Some(16.0)),
        ("'-0x10'", None, Some(-16.0)),
        ("'8.5'", None, None),
        ("'abc'", None, None),
        ("''", None, None),
        ("'1e2'", None, Some(100.0)),
        ("'-0'", None, Some(0.0)),
        ("'  0x1p4  '", None, Some(16.0)),
        ("'0x.8p1'", None, Some(1.0)),
        ("'inf'", None, None),
        ("'nan'", None, None),
        ("'1e400'", None, None),
        ("'9223372036854775808'", None, None),
        ("'-9223372036854775808'", None, Some(-TWO_63)),
        ("'0x'", None, None),
        ("'1e'", None, None),
        ("'+-1'", None, None),
        ("'5.'", None, Some(5.0)),
        ("'.5e1'", None, Some(5.0)),
        ("true", None, None),
        ("{}", None, None),
        ("print", None, None),
        ("nil", None, None),
    ];

    fn vm() -> Lua {
        crate::sandbox::execute_vm(&crate::sandbox::Limits::default(), &crate::sandbox::Clock::default(), |_, _| Ok(()))
            .expect("execute VM")
    }

    #[test]
    fn math_type_and_tointeger_answer_as_lua_5_4_does() {
        let lua = vm();
        let mut wrong = Vec::new();
        for (expr, want_type, want_int) in CASES {
            let code = format!("local v = {expr}; return math.type(v), math.tointeger(v)");
            let (t, i): (Option<String>, Option<f64>) =
                lua.load(&code).eval().unwrap_or_else(|e| panic!("{expr}: {e}"));
            // Compared by bits: tointeger(-0.0) must be +0.
            let same = t.as_deref() == *want_type && i.map(f64::to_bits) == want_int.map(f64::to_bits);
            if !same {
                wrong.push(format!("{expr}: got ({t:?}, {i:?}), want ({want_type:?}, {want_int:?})"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_missing_argument_is_an_error_naming_the_function() {
        let lua = vm();
        for name in ["type", "tointeger"] {
            let err = lua.load(format!("return math.{name}()")).exec().unwrap_err().to_string();
            assert!(err.contains(&format!("bad argument #1 to 'math.{name}' (value expected)")), "{err}");
        }
        // An explicit nil is a value: fail, not an error.
        let (a, b): (Value, Value) = lua.load("return math.type(nil), math.tointeger(nil)").eval().unwrap();
        assert!(a.is_nil() && b.is_nil());
    }

    #[test]
    fn integers_read_from_strings_wrap_in_hex_and_spill_to_float_in_decimal() {
        assert_eq!(string_to_number(b"0xffffffffffffffff"), Some(LuaNumber::Integer(-1)));
        assert_eq!(string_to_number(b"9223372036854775807"), Some(LuaNumber::Integer(i64::MAX)));
        assert_eq!(string_to_number(b"9223372036854775808"), Some(LuaNumber::Float(TWO_63)));
        assert_eq!(string_to_number(b"1\0"), None);
        assert_eq!(string_to_number(b"\t-12\n"), Some(LuaNumber::Integer(-12)));
    }
}
