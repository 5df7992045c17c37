//! RFC 8785, the JSON Canonicalization Scheme (JCS): one byte sequence per
//! JSON value, for signing. Objects' members are sorted by the UTF-16 code
//! units of their names, there is no whitespace, strings escape only what
//! JSON requires, and numbers are IEEE 754 doubles written the way
//! ECMAScript's `Number.prototype.toString` writes them.
//!
//! serde_json keeps each number's text as it was written (the crate's
//! `arbitrary_precision` feature), so every number is read as a double and
//! written again: `1.0`, `1E0` and `1` all become `1`.

use serde_json::Value;
use std::fmt::Write;

/// A value with no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A number out of the range of a double (`1e400`).
    #[error("the number {0} is not a finite double, so it has no canonical form")]
    Number(String),
}

/// The canonical form of `value` (RFC 8785 defines it as the UTF-8 of this
/// text).
pub fn canonicalize(value: &Value) -> Result<String, Error> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut String, value: &Value) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let x = n
                .as_f64()
                .ok_or_else(|| Error::Number(n.as_str().to_owned()))?;
            out.push_str(&format_number(x));
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (name, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, name);
                out.push(':');
                write_value(out, item)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A JSON string as JCS writes it: `"` and `\` escaped, the control
/// characters below U+0020 escaped (the five with a short form by it, the
/// others as `\u00xx`), everything else as it is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The shortest decimal digits that read back as `x` (positive, finite) and
/// the position of the decimal point: `x = 0.DIGITS × 10^point`. Of two
/// candidates equally near `x`, the even one (ECMA-262 and Python's `repr`
/// agree on that; Rust's own formatting rounds such a tie up).
pub(crate) fn shortest_digits(x: f64) -> (String, i32) {
    // Rust's `{:e}` writes the shortest round-tripping digits, `d.ddde±n`.
    let (mut digits, point) = split_exponential(&format!("{x:e}"));
    // A tie is when x, written out exactly (no double needs more than 767
    // significant digits), is the midpoint of two candidates: one digit
    // more than they have, and that digit a 5.
    let (exact, exact_point) = split_exponential(&format!("{x:.800e}"));
    let exact = exact.trim_end_matches('0');
    let k = digits.len();
    if exact_point == point && exact.len() == k + 1 && exact.ends_with('5') {
        let low = &exact[..k];
        let last = low.as_bytes()[k - 1];
        if last != b'9' {
            let even = if last % 2 == 0 {
                low.to_owned()
            } else {
                format!("{}{}", &low[..k - 1], char::from(last + 1))
            };
            if format!("0.{even}e{point}").parse::<f64>() == Ok(x) {
                digits = even;
            }
        }
    }
    (digits, point)
}

/// `d.ddde±n` as its digits and the position of the decimal point.
fn split_exponential(text: &str) -> (String, i32) {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exponent.parse::<i32>().unwrap_or(0) + 1)
}

/// A finite double as ECMAScript writes it (ECMA-262 `Number::toString`,
/// which RFC 8785 adopts): `-0` is `0`, integers up to 10^21 in full,
/// fractions down to 10^-6 in full, exponents otherwise (`1e+21`).
pub fn format_number(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    if x < 0.0 {
        return format!("-{}", format_number(-x));
    }
    let (digits, n) = shortest_digits(x);
    let k = digits.len() as i32;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{sign}{}", e.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(text: &str) -> String {
        canonicalize(&serde_json::from_str(text).unwrap()).unwrap()
    }

    /// RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
    #[test]
    fn numbers_are_written_as_the_rfc_8785_appendix_says() {
        let vectors = [
            (0x0000000000000000_u64, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in vectors {
            assert_eq!(format_number(f64::from_bits(bits)), expected, "{bits:016x}");
        }
    }

    #[test]
    fn the_rfc_8785_example_object_canonicalizes_as_published() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        assert_eq!(
            canonical(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 section 3.2.3: names are ordered by UTF-16 code unit, which
    /// puts an emoji (a surrogate pair from U+D83D) before U+FB33, unlike
    /// code point or UTF-8 order.
    #[test]
    fn members_are_sorted_by_utf16_code_units_as_the_rfc_8785_example_shows() {
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let names: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, Value>>(&canonicalize(&value).unwrap())
                .unwrap()
                .into_iter()
                .map(|(_, v)| v.as_str().unwrap().to_owned())
                .collect();
        assert_eq!(
            names,
            [
                "Carriage Return",
                "One",
                "Control",
                "Latin Small Letter O With Diaeresis",
                "Euro Sign",
                "Emoji: Grinning Face",
                "Hebrew Letter Dalet With Dagesh"
            ]
        );
    }

    #[test]
    fn strings_escape_only_quotes_backslashes_and_control_characters() {
        let value = json!({"s": "é\u{7f}\u{1f}\u{8}\u{c}\t/€😀"});
        assert_eq!(
            canonicalize(&value).unwrap(),
            "{\"s\":\"é\u{7f}\\u001f\\b\\f\\t/€😀\"}"
        );
    }

    #[test]
    fn nested_values_have_no_whitespace_and_integers_lose_their_fraction() {
        assert_eq!(
            canonical(r#"{ "b" : [ 1.0 , 10E-1, -0, {"z": {}, "a": []} ] , "a" : 1 }"#),
            r#"{"a":1,"b":[1,1,0,{"a":[],"z":{}}]}"#
        );
    }

    #[test]
    fn a_number_beyond_a_double_has_no_canonical_form() {
        let value: Value = serde_json::from_str(r#"{"n": 1e400}"#).unwrap();
        assert!(matches!(canonicalize(&value), Err(Error::Number(_))));
    }
}
