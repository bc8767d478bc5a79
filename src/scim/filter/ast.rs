//! The filter AST (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2), with their canonical text.

use std::fmt;

/// Most comparisons (`pr` included) a listing filter may hold: each costs the database work on
/// every row the filter reaches.
pub const MAX_COMPARISONS: usize = 100;

/// Most substring comparisons (`co`, `sw`, `ew`) a listing filter may hold: no index serves
/// them, so each is a comparison on every row of the tenant.
pub const MAX_SUBSTRING_COMPARISONS: usize = 10;

/// Refuses a filter beyond [`MAX_COMPARISONS`] or [`MAX_SUBSTRING_COMPARISONS`], so one
/// request's cost stays within what other tenants can share a server with; the message names
/// the limit.
pub fn check_cost(filter: &Filter) -> Result<(), String> {
    fn count(filter: &Filter, all: &mut usize, substring: &mut usize) {
        match filter {
            Filter::Compare { op, .. } => {
                *all += 1;
                if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
                    *substring += 1;
                }
            }
            Filter::Present(_) => *all += 1,
            Filter::And(a, b) | Filter::Or(a, b) => {
                count(a, all, substring);
                count(b, all, substring);
            }
            Filter::Not(inner) | Filter::ValuePath { filter: inner, .. } => count(inner, all, substring),
        }
    }
    let (mut all, mut substring) = (0, 0);
    count(filter, &mut all, &mut substring);
    if all > MAX_COMPARISONS {
        return Err(format!("it has {all} comparisons; at most {MAX_COMPARISONS} are allowed"));
    }
    if substring > MAX_SUBSTRING_COMPARISONS {
        return Err(format!(
            "it has {substring} co/sw/ew comparisons; at most {MAX_SUBSTRING_COMPARISONS} are allowed"
        ));
    }
    Ok(())
}

/// An attribute reference: optional schema URN, attribute name, optional sub-attribute.
/// Names keep the case the client used; comparison elsewhere is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

/// The attribute operators of RFC 7644 §3.4.2.2 that take a value (`pr` is
/// [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value: a JSON string, boolean, null or number.
///
/// Unquoted words that are neither `true`/`false`/`null` nor a JSON number
/// become [`CompValue::Str`] (Entra sends `externalId eq jyoung`). An unquoted
/// integer too large for 64 bits also stays a string, because turning an
/// identifier such as `12345678901234567890123` into a lossy float would make
/// it match nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Bool(bool),
    Null,
    Number(serde_json::Number),
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work" and value co "@x"]` — the inner filter's paths are relative to `attr`
    /// (their `attr` is the sub-attribute name, e.g. `type`).
    ValuePath {
        attr: AttrPath,
        filter: Box<Filter>,
    },
}

/// A PATCH path: `attr`, `attr.sub`, `urn:...:attr(.sub)`, `attr[filter]`, `attr[filter].sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// `sub` is None when a filter is present; see `value_sub`.
    pub attr: AttrPath,
    /// The value filter between `[` and `]`, with paths relative to `attr`.
    pub filter: Option<Filter>,
    /// The sub-attribute after `]`, as in `emails[type eq "work"].value`.
    pub value_sub: Option<String>,
}

impl CompareOp {
    /// The lower-case operator keyword, e.g. `"eq"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Operators are case-insensitive (RFC 7644 §3.4.2.2: `Eq` equals `eq`).
    pub(super) fn from_keyword(word: &str) -> Option<Self> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ALL.into_iter().find(|op| word.eq_ignore_ascii_case(op.as_str()))
    }
}

/// Writes `s` as a JSON string literal.
pub(super) fn write_json_string(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing to a String cannot fail.
    let _ = write_json_string(&mut out, s);
    out
}

// ---------------------------------------------------------------------------
// Display: canonical text that parse_filter / parse_path read back unchanged.
// ---------------------------------------------------------------------------

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Str(s) => write_json_string(f, s),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
            CompValue::Number(n) => write!(f, "{n}"),
        }
    }
}

/// Binding strength, used to print only the parentheses the AST needs.
const PREC_OR: u8 = 1;
const PREC_AND: u8 = 2;
const PREC_ATOM: u8 = 3;

impl Filter {
    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => PREC_OR,
            Filter::And(..) => PREC_AND,
            _ => PREC_ATOM,
        }
    }

    fn write_prec(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            f.write_str("(")?;
            self.write_prec(f, 0)?;
            return f.write_str(")");
        }
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            // Left-associative: a same-level right operand needs parentheses.
            Filter::And(l, r) => {
                l.write_prec(f, PREC_AND)?;
                f.write_str(" and ")?;
                r.write_prec(f, PREC_ATOM)
            }
            Filter::Or(l, r) => {
                l.write_prec(f, PREC_OR)?;
                f.write_str(" or ")?;
                r.write_prec(f, PREC_AND)
            }
            Filter::Not(inner) => {
                f.write_str("not (")?;
                inner.write_prec(f, 0)?;
                f.write_str(")")
            }
            Filter::ValuePath { attr, filter } => {
                write!(f, "{attr}[")?;
                filter.write_prec(f, 0)?;
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_prec(f, 0)
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.value_sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter;

    #[test]
    fn filters_beyond_the_cost_bound_are_refused_naming_the_limit() {
        let chain =
            |op: &str, n: usize| (0..n).map(|i| format!("nickName {op} \"v{i}\"")).collect::<Vec<_>>().join(" or ");
        assert!(check_cost(&parse_filter(&chain("co", MAX_SUBSTRING_COMPARISONS)).unwrap()).is_ok());
        let err = check_cost(&parse_filter(&chain("co", MAX_SUBSTRING_COMPARISONS + 1)).unwrap()).unwrap_err();
        assert!(err.contains(&MAX_SUBSTRING_COMPARISONS.to_string()), "{err}");
        assert!(check_cost(&parse_filter(&chain("eq", MAX_COMPARISONS)).unwrap()).is_ok());
        let err = check_cost(&parse_filter(&chain("eq", MAX_COMPARISONS + 1)).unwrap()).unwrap_err();
        assert!(err.contains(&MAX_COMPARISONS.to_string()), "{err}");
        let nested = format!("emails[{}]", chain("ew", MAX_SUBSTRING_COMPARISONS + 1).replace("nickName", "value"));
        assert!(check_cost(&parse_filter(&nested).unwrap()).is_err(), "value paths count too");
    }
}
