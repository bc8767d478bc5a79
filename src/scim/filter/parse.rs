//! The filter and PATCH path parser (RFC 7644 §3.4.2.2 and §3.5.2).

use std::fmt;

use super::ast::{quote, AttrPath, CompValue, CompareOp, Filter, PatchPath};

/// Longest filter or path accepted, in characters.
pub const MAX_INPUT_CHARS: usize = 8192;

/// Deepest nesting of `(...)`, `not (...)` and `[...]` accepted.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Why a filter or path was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Character (not byte) offset into the input.
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a SCIM filter (RFC 7644 §3.4.2.2, the "filter" rule).
pub fn parse_filter(input: &str) -> Result<Filter, ParseError> {
    let mut p = Parser::new(input)?;
    p.skip_ws();
    if p.at_end() {
        return p.fail(p.pos, "expected a filter expression, found end of input".into());
    }
    let filter = p.parse_or(false)?;
    p.skip_ws();
    p.expect_end("\"and\", \"or\" or end of input")?;
    Ok(filter)
}

/// Parses a SCIM PATCH path (RFC 7644 §3.5.2, `PATH = attrPath / valuePath [subAttr]`).
pub fn parse_path(input: &str) -> Result<PatchPath, ParseError> {
    let mut p = Parser::new(input)?;
    p.skip_ws();
    if p.at_end() {
        return p.fail(p.pos, "expected an attribute path, found end of input".into());
    }
    let attr = p.parse_attr_path()?;
    let mut filter = None;
    let mut value_sub = None;
    if p.peek() == Some('[') {
        p.reject_filter_after_sub(&attr)?;
        filter = Some(p.parse_bracket()?);
        value_sub = p.parse_opt_sub()?;
    }
    p.skip_ws();
    p.expect_end("end of path")?;
    Ok(PatchPath { attr, filter, value_sub })
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/// Recursive-descent parser over the input's chars, so that positions in
/// errors are character offsets whatever the encoding of the input.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

type PResult<T> = Result<T, ParseError>;

impl Parser {
    fn new(input: &str) -> PResult<Self> {
        // `nth` stops early, so a multi-megabyte input costs no more than the limit.
        if input.chars().nth(MAX_INPUT_CHARS).is_some() {
            return Err(ParseError {
                position: MAX_INPUT_CHARS,
                message: format!("input is longer than {MAX_INPUT_CHARS} characters"),
            });
        }
        Ok(Parser { chars: input.chars().collect(), pos: 0, depth: 0 })
    }

    // -- low-level helpers --------------------------------------------------

    fn fail<T>(&self, position: usize, message: String) -> PResult<T> {
        Err(ParseError { position, message })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    /// Skips whitespace; returns the position after it.
    fn skip_ws(&mut self) -> usize {
        self.pos = self.ws_end(self.pos);
        self.pos
    }

    fn ws_end(&self, mut at: usize) -> usize {
        while self.chars.get(at).is_some_and(|&c| is_ws(c)) {
            at += 1;
        }
        at
    }

    fn text(&self, from: usize, to: usize) -> String {
        let to = to.min(self.chars.len());
        self.chars[from.min(to)..to].iter().collect()
    }

    /// End of the run of ASCII letters starting at `at`.
    fn letters_end(&self, mut at: usize) -> usize {
        while self.chars.get(at).is_some_and(|c| c.is_ascii_alphabetic()) {
            at += 1;
        }
        at
    }

    /// True when `keyword` (any case) stands at `at` as a whole word.
    fn keyword_at(&self, at: usize, keyword: &str) -> bool {
        let end = self.letters_end(at);
        end - at == keyword.len() && self.text(at, end).eq_ignore_ascii_case(keyword) && self.is_boundary(end)
    }

    /// A keyword ends where no attribute-path character follows it.
    fn is_boundary(&self, at: usize) -> bool {
        match self.chars.get(at) {
            None => true,
            Some(&c) => !(is_name_char(c) || matches!(c, '.' | ':' | '$')),
        }
    }

    /// Describes what stands at `at`, for "found ..." in error messages.
    fn found(&self, at: usize) -> String {
        const MAX_SHOWN: usize = 24;
        let Some(&first) = self.chars.get(at) else {
            return "end of input".to_string();
        };
        if is_delimiter(first) {
            return quote(&first.to_string());
        }
        let mut end = at;
        while self.chars.get(end).is_some_and(|&c| !is_ws(c) && !is_delimiter(c)) {
            end += 1;
        }
        if end - at > MAX_SHOWN {
            quote(&format!("{}…", self.text(at, at + MAX_SHOWN)))
        } else {
            quote(&self.text(at, end))
        }
    }

    fn expect_end(&self, expected: &str) -> PResult<()> {
        match self.peek() {
            None => Ok(()),
            Some(')') => self.fail(self.pos, "found \")\" without a matching \"(\"".to_string()),
            Some(']') => self.fail(self.pos, "found \"]\" without a matching \"[\"".to_string()),
            Some(_) => self.fail(self.pos, format!("expected {expected}, found {}", self.found(self.pos))),
        }
    }

    /// Counts one level of nesting; the limit bounds this parser's recursion.
    /// (`and`/`or` chains are built in loops, not by recursion.)
    fn enter(&mut self, at: usize) -> PResult<()> {
        if self.depth >= MAX_NESTING_DEPTH {
            return self.fail(at, format!("expression nests deeper than {MAX_NESTING_DEPTH} levels"));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // -- logical structure --------------------------------------------------
    //
    // RFC 7644 §3.4.2.2 precedence: grouping, then attribute operators, then
    // `not` over `and` over `or`. `and`/`or` are left-associative.
    // `in_value_filter` is true between `[` and `]`, where another `[` is
    // invalid (valFilter contains no valuePath).

    fn parse_or(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let mut left = self.parse_and(in_value_filter)?;
        loop {
            let at = self.skip_ws();
            if !self.keyword_at(at, "or") {
                return Ok(left);
            }
            self.pos = at + 2;
            let right = self.parse_and(in_value_filter)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
    }

    fn parse_and(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let mut left = self.parse_unary(in_value_filter)?;
        loop {
            let at = self.skip_ws();
            if !self.keyword_at(at, "and") {
                return Ok(left);
            }
            self.pos = at + 3;
            let right = self.parse_unary(in_value_filter)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    fn parse_unary(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let start = self.skip_ws();
        match self.peek() {
            None | Some(')' | ']') => {
                self.fail(start, format!("expected an attribute path, \"(\" or \"not\", found {}", self.found(start)))
            }
            Some('(') => self.parse_group(in_value_filter),
            Some(_) if self.keyword_at(start, "not") => self.parse_not_or_attr(in_value_filter),
            Some(_) => self.parse_attr_expr(in_value_filter),
        }
    }

    /// `"(" valFilter ")"`
    fn parse_group(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        let inner = self.parse_or(in_value_filter)?;
        self.expect_close(')', "group", open)?;
        self.leave();
        Ok(inner)
    }

    /// `"not" [SP] "(" valFilter ")"`. ATTRNAME also admits the word `not`,
    /// so `not pr` / `not eq 1` compare an attribute called "not".
    fn parse_not_or_attr(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let start = self.pos;
        let after = self.ws_end(start + 3);
        match self.chars.get(after) {
            Some('(') => {}
            Some('[') if after == start + 3 => return self.parse_attr_expr(in_value_filter),
            _ if self.is_operator_word(after) => return self.parse_attr_expr(in_value_filter),
            _ => return self.fail(after, format!("expected \"(\" after \"not\", found {}", self.found(after))),
        }
        self.enter(start)?;
        self.pos = after + 1;
        let inner = self.parse_or(in_value_filter)?;
        self.expect_close(')', "\"not\" group", after)?;
        self.leave();
        Ok(Filter::Not(Box::new(inner)))
    }

    fn is_operator_word(&self, at: usize) -> bool {
        let end = self.letters_end(at);
        let word = self.text(at, end);
        self.is_boundary(end) && (word.eq_ignore_ascii_case("pr") || CompareOp::from_keyword(&word).is_some())
    }

    fn expect_close(&mut self, close: char, what: &str, open: usize) -> PResult<()> {
        let at = self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        self.fail(
            at,
            format!("expected \"{close}\" to close the {what} opened at position {open}, found {}", self.found(at)),
        )
    }

    // -- attribute expressions ---------------------------------------------

    /// `attrPath SP "pr"`, `attrPath SP compareOp SP compValue` or
    /// `attrPath "[" valFilter "]"`.
    fn parse_attr_expr(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let start = self.pos;
        let path = self.parse_attr_path()?;
        if self.peek() != Some('[') {
            let shown = self.text(start, self.pos);
            return self.parse_operator_tail(path, &shown);
        }
        if in_value_filter {
            return self.fail(
                self.pos,
                "expected an attribute operator, found \"[\": value filters cannot be nested (RFC 7644 §3.4.2.2)"
                    .to_string(),
            );
        }
        self.reject_filter_after_sub(&path)?;
        let inner = self.parse_bracket()?;
        if self.peek() != Some('.') {
            return Ok(Filter::ValuePath { attr: path, filter: Box::new(inner) });
        }
        // Entra sends `emails[type eq "work"].value eq "a@b"` as a filter. It
        // means "an emails item that is work and has that value", so the
        // comparison joins the bracket filter for the same item.
        self.pos += 1;
        let sub_start = self.pos;
        let sub = self.parse_name("a sub-attribute name after \"].\"")?;
        let shown = self.text(sub_start, self.pos);
        let tail = self.parse_operator_tail(relative(sub), &shown)?;
        Ok(Filter::ValuePath { attr: path, filter: Box::new(Filter::And(Box::new(inner), Box::new(tail))) })
    }

    /// `"[" valFilter "]"`; returns the inner filter.
    fn parse_bracket(&mut self) -> PResult<Filter> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        let inner = self.parse_or(true)?;
        self.expect_close(']', "value filter", open)?;
        self.leave();
        Ok(inner)
    }

    /// A value filter selects items of a multi-valued attribute; `name.x[...]`
    /// has no meaning in SCIM's schema, so it is refused up front.
    fn reject_filter_after_sub(&self, path: &AttrPath) -> PResult<()> {
        match &path.sub {
            None => Ok(()),
            Some(sub) => self.fail(
                self.pos,
                format!(
                    "found \"[\" after sub-attribute {}: expected the value filter right after the multi-valued attribute, as in emails[type eq \"work\"]",
                    quote(sub)
                ),
            ),
        }
    }

    /// After an attribute path: `pr`, or a comparison operator and a value.
    fn parse_operator_tail(&mut self, path: AttrPath, shown: &str) -> PResult<Filter> {
        let at = self.skip_ws();
        let end = self.letters_end(at);
        let word = self.text(at, end);
        if !self.is_boundary(end) || end == at {
            return self.expected_operator(at, shown);
        }
        if word.eq_ignore_ascii_case("pr") {
            self.pos = end;
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::from_keyword(&word) else {
            return self.expected_operator(at, shown);
        };
        self.pos = end;
        let value_at = self.ws_end(end);
        let value = self.parse_value(&word)?;
        if matches!(&value, CompValue::Str(s) if s.contains('\0')) {
            // PostgreSQL text cannot hold U+0000, so such a value would fail in the database.
            return self.fail(value_at, "expected a value without U+0000 (NUL)".to_string());
        }
        Ok(Filter::Compare { path, op, value })
    }

    fn expected_operator<T>(&self, at: usize, shown: &str) -> PResult<T> {
        self.fail(at, format!("expected a comparison operator after {}, found {}", quote(shown), self.found(at)))
    }

    // -- attribute paths ----------------------------------------------------

    /// `attrPath = [URI ":"] ATTRNAME *1subAttr`
    fn parse_attr_path(&mut self) -> PResult<AttrPath> {
        if self.starts_with_urn() {
            return self.parse_urn_attr_path();
        }
        let attr = self.parse_name("an attribute name")?;
        let sub = self.parse_opt_sub()?;
        Ok(AttrPath { urn: None, attr, sub })
    }

    fn starts_with_urn(&self) -> bool {
        self.text(self.pos, self.pos + 4).eq_ignore_ascii_case("urn:")
    }

    /// A schema URN contains ':' and '.' itself ("...:2.0:User"), so the URN
    /// is everything up to the last ':' of the token and the rest is
    /// `ATTRNAME [.subAttr]` (RFC 7644 §3.10, RFC 7643 §3.3).
    fn parse_urn_attr_path(&mut self) -> PResult<AttrPath> {
        let start = self.pos;
        let mut end = start;
        while self.chars.get(end).is_some_and(|&c| !is_ws(c) && !is_delimiter(c)) {
            end += 1;
        }
        // "urn:" is at `start`, so a ':' exists in the token.
        let colon = (start..end).rev().find(|&i| self.chars[i] == ':').unwrap_or(start + 3);
        if colon <= start + 4 {
            return self.fail(
                start,
                format!(
                    "expected a schema URN such as \"urn:ietf:params:scim:schemas:core:2.0:User\" before the attribute name, found {}",
                    self.found(start)
                ),
            );
        }
        if let Some(bad) = (start..colon).find(|&i| !self.chars[i].is_ascii_graphic()) {
            return self.fail(
                bad,
                format!(
                    "expected a schema URN of printable ASCII characters, found {}",
                    quote(&self.chars[bad].to_string())
                ),
            );
        }
        let urn = self.text(start, colon);
        self.pos = colon + 1;
        let attr = self.parse_name("an attribute name after the schema URN")?;
        let sub = self.parse_opt_sub()?;
        Ok(AttrPath { urn: Some(urn), attr, sub })
    }

    /// `[ "." ATTRNAME ]`, at most once.
    fn parse_opt_sub(&mut self) -> PResult<Option<String>> {
        if self.peek() != Some('.') {
            return Ok(None);
        }
        self.pos += 1;
        let sub = self.parse_name("a sub-attribute name after \".\"")?;
        if self.peek() == Some('.') {
            return self
                .fail(self.pos, format!("expected at most one sub-attribute, found \".\" after {}", quote(&sub)));
        }
        Ok(Some(sub))
    }

    /// `ATTRNAME = ALPHA *(nameChar)`, or `$ref` (RFC 7643 §2.3.7 reference
    /// sub-attribute, e.g. `members[$ref eq "..."]`).
    fn parse_name(&mut self, expected: &str) -> PResult<String> {
        let start = self.pos;
        let first = self.peek();
        let valid_start = match first {
            Some('$') => self.keyword_at(start + 1, "ref"),
            Some(c) => c.is_ascii_alphabetic(),
            None => false,
        };
        if !valid_start {
            return self.fail(start, format!("expected {expected}, found {}", self.found(start)));
        }
        self.pos += 1;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        Ok(self.text(start, self.pos))
    }

    // -- values -------------------------------------------------------------

    /// `compValue = false / null / true / number / string`, plus unquoted
    /// words (Entra: `externalId eq jyoung`, `userName sw O`).
    fn parse_value(&mut self, op_word: &str) -> PResult<CompValue> {
        let at = self.skip_ws();
        match self.peek() {
            Some('"') => self.parse_json_string().map(CompValue::Str),
            None | Some(')' | ']' | '(' | '[') => self.expected_value(at, op_word),
            Some(_) => {
                // A bare word runs until whitespace, ')' or ']'.
                while self.peek().is_some_and(|c| !is_ws(c) && c != ')' && c != ']') {
                    self.pos += 1;
                }
                let word = self.text(at, self.pos);
                if word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or") {
                    // `userName eq and ...` is a missing value, not the string "and".
                    return self.expected_value(at, op_word);
                }
                Ok(classify_bare_word(word))
            }
        }
    }

    fn expected_value<T>(&self, at: usize, op_word: &str) -> PResult<T> {
        self.fail(at, format!("expected a value after {}, found {}", quote(op_word), self.found(at)))
    }

    /// A JSON string (RFC 7644 §3.4.2.2: "String literals MUST be valid JSON
    /// strings"). The closing quote is found here; serde_json decodes escapes.
    fn parse_json_string(&mut self) -> PResult<String> {
        let open = self.pos;
        let mut i = open + 1;
        loop {
            match self.chars.get(i) {
                None => {
                    return self.fail(
                        open,
                        "expected a closing '\"' for the string starting here, found end of input".to_string(),
                    )
                }
                Some('\\') => i += 2,
                Some('"') => break,
                Some(_) => i += 1,
            }
        }
        let literal = self.text(open, i + 1);
        self.pos = i + 1;
        serde_json::from_str::<String>(&literal).map_err(|e| {
            let (offset, reason) = describe_json_error(&literal, &e);
            ParseError { position: open + offset, message: format!("expected a valid JSON string: {reason}") }
        })
    }
}

/// Maps a serde_json error inside `literal` to (char offset, short reason).
fn describe_json_error(literal: &str, err: &serde_json::Error) -> (usize, String) {
    let full = err.to_string();
    let reason = match full.find(" at line ") {
        Some(cut) => full[..cut].to_string(),
        None => full,
    };
    // serde_json reports a 1-based byte column; convert it to chars.
    let byte = err.column().saturating_sub(1);
    let offset = literal.char_indices().take_while(|&(b, _)| b < byte).count();
    (offset, reason)
}

/// Types an unquoted value: boolean, null, JSON number or else a string.
fn classify_bare_word(word: String) -> CompValue {
    match word.to_ascii_lowercase().as_str() {
        "true" => return CompValue::Bool(true),
        "false" => return CompValue::Bool(false),
        "null" => return CompValue::Null,
        _ => {}
    }
    let numeric_start = word.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if numeric_start {
        // serde_json accepts exactly the JSON number grammar, so
        // "2015-10-10T14:38:21" or "07" fail here and stay strings.
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(&word) {
            if word.contains(['.', 'e', 'E']) {
                // serde_json's default float parsing can be one unit in the last place off, and
                // then the printed filter reads back as another number; Rust's parser rounds
                // correctly, so the value is exact and Display round-trips.
                let exact = word.parse::<f64>().ok().and_then(serde_json::Number::from_f64);
                return CompValue::Number(exact.unwrap_or(n));
            }
            // An integer literal is kept only when it is exact in 64 bits.
            if let Ok(i) = word.parse::<i64>() {
                return CompValue::Number(i.into());
            }
            if let Ok(u) = word.parse::<u64>() {
                return CompValue::Number(u.into());
            }
        }
    }
    CompValue::Str(word)
}

fn relative(attr: String) -> AttrPath {
    AttrPath { urn: None, attr, sub: None }
}

/// RFC 7644 §3.4.2.2: `nameChar = "-" / "_" / DIGIT / ALPHA`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The RFC asks for SP; tabs and line breaks (the RFC's own examples wrap
/// lines) are tolerated too.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_delimiter(c: char) -> bool {
    matches!(c, '(' | ')' | '[' | ']' | '"')
}

#[cfg(test)]
mod tests {
    use super::*;

    // -- AST builders -------------------------------------------------------

    fn ap(attr: &str) -> AttrPath {
        AttrPath { urn: None, attr: attr.into(), sub: None }
    }

    fn ap_sub(attr: &str, sub: &str) -> AttrPath {
        AttrPath { urn: None, attr: attr.into(), sub: Some(sub.into()) }
    }

    fn ap_urn(urn: &str, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath { urn: Some(urn.into()), attr: attr.into(), sub: sub.map(Into::into) }
    }

    fn s(v: &str) -> CompValue {
        CompValue::Str(v.into())
    }

    fn num(v: i64) -> CompValue {
        CompValue::Number(v.into())
    }

    fn cmp(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare { path, op, value }
    }

    fn pr(path: AttrPath) -> Filter {
        Filter::Present(path)
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    fn vp(attr: AttrPath, f: Filter) -> Filter {
        Filter::ValuePath { attr, filter: Box::new(f) }
    }

    const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const MEMBER_ID: &str = "2819c223-7f76-453a-919d-413861904646";

    #[track_caller]
    fn parses_to(input: &str, expected: Filter) {
        match parse_filter(input) {
            Ok(f) => assert_eq!(f, expected, "parsing {input:?}"),
            Err(e) => panic!("parsing {input:?} failed: {e}"),
        }
        assert_round_trips(input);
    }

    #[track_caller]
    fn assert_round_trips(input: &str) {
        let first = parse_filter(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        let text = first.to_string();
        let second = parse_filter(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(first, second, "round trip of {input:?} via {text:?}");
    }

    #[track_caller]
    fn path_parses_to(input: &str, attr: AttrPath, filter: Option<Filter>, value_sub: Option<&str>) {
        let expected = PatchPath { attr, filter, value_sub: value_sub.map(Into::into) };
        match parse_path(input) {
            Ok(p) => assert_eq!(p, expected, "parsing path {input:?}"),
            Err(e) => panic!("parsing path {input:?} failed: {e}"),
        }
        let text = expected.to_string();
        assert_eq!(parse_path(&text).ok(), Some(expected), "round trip via {text:?}");
    }

    #[track_caller]
    fn fails_at(input: &str, position: usize, message_part: &str) -> ParseError {
        let err = match parse_filter(input) {
            Ok(f) => panic!("{input:?} parsed as {f:?}, expected an error"),
            Err(e) => e,
        };
        assert_eq!(err.position, position, "position for {input:?}: {err}");
        assert!(
            err.message.contains(message_part),
            "message for {input:?} is {:?}, expected it to contain {message_part:?}",
            err.message
        );
        err
    }

    #[track_caller]
    fn path_fails_at(input: &str, position: usize, message_part: &str) {
        let err = match parse_path(input) {
            Ok(p) => panic!("path {input:?} parsed as {p:?}, expected an error"),
            Err(e) => e,
        };
        assert_eq!(err.position, position, "position for {input:?}: {err}");
        assert!(
            err.message.contains(message_part),
            "message for {input:?} is {:?}, expected it to contain {message_part:?}",
            err.message
        );
    }

    // -- RFC 7644 §3.4.2.2 examples ------------------------------------------

    #[test]
    fn rfc_user_name_eq() {
        parses_to(r#"userName eq "bjensen""#, cmp(ap("userName"), CompareOp::Eq, s("bjensen")));
    }

    #[test]
    fn rfc_family_name_contains_apostrophe() {
        parses_to(r#"name.familyName co "O'Malley""#, cmp(ap_sub("name", "familyName"), CompareOp::Co, s("O'Malley")));
    }

    #[test]
    fn rfc_user_name_starts_with() {
        parses_to(r#"userName sw "J""#, cmp(ap("userName"), CompareOp::Sw, s("J")));
    }

    #[test]
    fn rfc_fully_qualified_user_name() {
        parses_to(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            cmp(ap_urn(USER_URN, "userName", None), CompareOp::Sw, s("J")),
        );
    }

    #[test]
    fn rfc_title_present() {
        parses_to("title pr", pr(ap("title")));
    }

    #[test]
    fn rfc_last_modified_orderings() {
        let cases = [("gt", CompareOp::Gt), ("ge", CompareOp::Ge), ("lt", CompareOp::Lt), ("le", CompareOp::Le)];
        for (word, op) in cases {
            parses_to(
                &format!(r#"meta.lastModified {word} "2011-05-13T04:42:34Z""#),
                cmp(ap_sub("meta", "lastModified"), op, s("2011-05-13T04:42:34Z")),
            );
        }
    }

    #[test]
    fn rfc_present_and_equal() {
        parses_to(
            r#"title pr and userType eq "Employee""#,
            and(pr(ap("title")), cmp(ap("userType"), CompareOp::Eq, s("Employee"))),
        );
    }

    #[test]
    fn rfc_present_or_equal() {
        parses_to(
            r#"title pr or userType eq "Intern""#,
            or(pr(ap("title")), cmp(ap("userType"), CompareOp::Eq, s("Intern"))),
        );
    }

    #[test]
    fn rfc_schemas_eq_urn_value() {
        parses_to(
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            cmp(ap("schemas"), CompareOp::Eq, s(ENTERPRISE_URN)),
        );
    }

    fn emails_example_com_or_org() -> Filter {
        or(
            cmp(ap("emails"), CompareOp::Co, s("example.com")),
            cmp(ap_sub("emails", "value"), CompareOp::Co, s("example.org")),
        )
    }

    #[test]
    fn rfc_and_with_grouped_or() {
        parses_to(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            and(cmp(ap("userType"), CompareOp::Eq, s("Employee")), emails_example_com_or_org()),
        );
    }

    #[test]
    fn rfc_wrapped_line_is_whitespace() {
        // The RFC prints this example across two lines.
        parses_to(
            "userType eq \"Employee\" and (emails co \"example.com\" or\n  emails.value co \"example.org\")",
            and(cmp(ap("userType"), CompareOp::Eq, s("Employee")), emails_example_com_or_org()),
        );
    }

    #[test]
    fn rfc_ne_and_not_group() {
        parses_to(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            and(cmp(ap("userType"), CompareOp::Ne, s("Employee")), not(emails_example_com_or_org())),
        );
    }

    #[test]
    fn rfc_and_with_grouped_sub_attribute() {
        parses_to(
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            and(
                cmp(ap("userType"), CompareOp::Eq, s("Employee")),
                cmp(ap_sub("emails", "type"), CompareOp::Eq, s("work")),
            ),
        );
    }

    fn work_example_com() -> Filter {
        vp(
            ap("emails"),
            and(cmp(ap("type"), CompareOp::Eq, s("work")), cmp(ap("value"), CompareOp::Co, s("@example.com"))),
        )
    }

    #[test]
    fn rfc_and_with_value_path() {
        parses_to(
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            and(cmp(ap("userType"), CompareOp::Eq, s("Employee")), work_example_com()),
        );
    }

    #[test]
    fn rfc_value_paths_joined_by_or() {
        parses_to(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            or(
                work_example_com(),
                vp(
                    ap("ims"),
                    and(cmp(ap("type"), CompareOp::Eq, s("xmpp")), cmp(ap("value"), CompareOp::Co, s("@foo.com"))),
                ),
            ),
        );
    }

    // -- operators, keywords, precedence --------------------------------------

    #[test]
    fn every_comparison_operator_is_recognised() {
        for (word, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            parses_to(&format!("a {word} 1"), cmp(ap("a"), op, num(1)));
            assert_eq!(op.to_string(), word);
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        parses_to(
            "a eq 1 or b eq 2 and c eq 3",
            or(
                cmp(ap("a"), CompareOp::Eq, num(1)),
                and(cmp(ap("b"), CompareOp::Eq, num(2)), cmp(ap("c"), CompareOp::Eq, num(3))),
            ),
        );
        parses_to(
            "a eq 1 and b eq 2 or c eq 3",
            or(
                and(cmp(ap("a"), CompareOp::Eq, num(1)), cmp(ap("b"), CompareOp::Eq, num(2))),
                cmp(ap("c"), CompareOp::Eq, num(3)),
            ),
        );
    }

    #[test]
    fn not_binds_tighter_than_and() {
        parses_to("not (a pr) and b pr", and(not(pr(ap("a"))), pr(ap("b"))));
        parses_to("a pr or not (b pr) and c pr", or(pr(ap("a")), and(not(pr(ap("b"))), pr(ap("c")))));
    }

    #[test]
    fn and_or_are_left_associative() {
        parses_to("a pr and b pr and c pr", and(and(pr(ap("a")), pr(ap("b"))), pr(ap("c"))));
        parses_to("a pr or b pr or c pr", or(or(pr(ap("a")), pr(ap("b"))), pr(ap("c"))));
    }

    #[test]
    fn parentheses_override_precedence() {
        parses_to("(a pr or b pr) and c pr", and(or(pr(ap("a")), pr(ap("b"))), pr(ap("c"))));
        parses_to("a pr and (b pr and c pr)", and(pr(ap("a")), and(pr(ap("b")), pr(ap("c")))));
    }

    #[test]
    fn keywords_and_operators_are_case_insensitive() {
        parses_to(
            r#"userName Eq "john" AND title PR Or NOT (x gE 2)"#,
            or(
                and(cmp(ap("userName"), CompareOp::Eq, s("john")), pr(ap("title"))),
                not(cmp(ap("x"), CompareOp::Ge, num(2))),
            ),
        );
    }

    #[test]
    fn not_accepts_optional_space_before_parenthesis() {
        parses_to("not(a pr)", not(pr(ap("a"))));
        parses_to("not (a pr)", not(pr(ap("a"))));
        parses_to("NOT\t(a pr)", not(pr(ap("a"))));
    }

    #[test]
    fn attribute_named_like_a_keyword_is_an_attribute() {
        parses_to("not pr", pr(ap("not")));
        parses_to("and eq 1 or or pr", or(cmp(ap("and"), CompareOp::Eq, num(1)), pr(ap("or"))));
        parses_to("prefix pr", pr(ap("prefix")));
    }

    #[test]
    fn surrounding_and_repeated_whitespace_is_ignored() {
        parses_to(
            "  \t userName   eq\t\t\"x\"   and  ( a pr )  ",
            and(cmp(ap("userName"), CompareOp::Eq, s("x")), pr(ap("a"))),
        );
    }

    #[test]
    fn names_keep_client_case() {
        parses_to(r#"DisplayName eq "BobIsAmazing""#, cmp(ap("DisplayName"), CompareOp::Eq, s("BobIsAmazing")));
    }

    #[test]
    fn ref_is_a_valid_attribute_name() {
        parses_to(
            r#"members[$ref eq "https://x/Users/1"]"#,
            vp(ap("members"), cmp(ap("$ref"), CompareOp::Eq, s("https://x/Users/1"))),
        );
        parses_to("manager.$ref pr", pr(ap_sub("manager", "$ref")));
    }

    #[test]
    fn urn_prefix_splits_at_last_colon() {
        parses_to(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\"",
            cmp(ap_urn(ENTERPRISE_URN, "employeeNumber", None), CompareOp::Eq, s("701984")),
        );
        parses_to(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "Jensen""#,
            cmp(ap_urn(USER_URN, "name", Some("familyName")), CompareOp::Eq, s("Jensen")),
        );
        parses_to(
            "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr",
            pr(ap_urn("URN:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", Some("value"))),
        );
    }

    // -- values -------------------------------------------------------------

    #[test]
    fn json_string_escapes_are_decoded() {
        parses_to(r#"a eq "a\"b""#, cmp(ap("a"), CompareOp::Eq, s("a\"b")));
        parses_to(r#"a eq "caf\u00e9""#, cmp(ap("a"), CompareOp::Eq, s("café")));
        parses_to(r#"a eq "x\\""#, cmp(ap("a"), CompareOp::Eq, s("x\\")));
        parses_to(r#"a eq "(]) and or""#, cmp(ap("a"), CompareOp::Eq, s("(]) and or")));
        parses_to(r#"a eq """#, cmp(ap("a"), CompareOp::Eq, s("")));
    }

    #[test]
    fn booleans_null_and_numbers() {
        parses_to("active eq true", cmp(ap("active"), CompareOp::Eq, CompValue::Bool(true)));
        parses_to("active eq FALSE", cmp(ap("active"), CompareOp::Eq, CompValue::Bool(false)));
        parses_to("title eq Null", cmp(ap("title"), CompareOp::Eq, CompValue::Null));
        parses_to("n gt -12", cmp(ap("n"), CompareOp::Gt, num(-12)));
        let f = parse_filter("n le 1.5e3").ok();
        let expected = serde_json::Number::from_f64(1500.0).map(CompValue::Number);
        assert_eq!(f, expected.map(|v| cmp(ap("n"), CompareOp::Le, v)));
        assert_round_trips("n le 1.5e3");
    }

    #[test]
    fn quoted_literals_stay_strings() {
        parses_to(r#"a eq "true""#, cmp(ap("a"), CompareOp::Eq, s("true")));
        parses_to(r#"a eq "42""#, cmp(ap("a"), CompareOp::Eq, s("42")));
    }

    #[test]
    fn bare_words_that_are_not_json_numbers_are_strings() {
        for word in ["2015-10-10T14:38:21", "07", "1.", "+1", "1e", "0x10", "-", "Infinity"] {
            parses_to(&format!("a eq {word}"), cmp(ap("a"), CompareOp::Eq, s(word)));
        }
    }

    #[test]
    fn negative_zero_is_a_number() {
        parses_to("x eq -0", cmp(ap("x"), CompareOp::Eq, num(0)));
    }

    #[test]
    fn huge_bare_integer_stays_a_string() {
        let id = "123456789012345678901234567890";
        parses_to(&format!("externalId eq {id}"), cmp(ap("externalId"), CompareOp::Eq, s(id)));
    }

    // -- Entra / Microsoft tolerance ----------------------------------------

    #[test]
    fn entra_unquoted_values_in_grouped_filter() {
        parses_to(
            "name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)",
            and(
                cmp(ap_sub("name", "FamilyName"), CompareOp::Eq, s("Employee")),
                or(
                    cmp(ap_sub("emails", "Value"), CompareOp::Co, s("example.com")),
                    cmp(ap_sub("emails", "Value"), CompareOp::Co, s("example.org")),
                ),
            ),
        );
    }

    #[test]
    fn entra_unquoted_external_id() {
        parses_to("externalId eq jyoung", cmp(ap("externalId"), CompareOp::Eq, s("jyoung")));
    }

    #[test]
    fn entra_unquoted_timestamp_with_offset() {
        parses_to(
            "meta.Created gt 2015-10-10T14:38:21.8617979-07:00",
            cmp(ap_sub("meta", "Created"), CompareOp::Gt, s("2015-10-10T14:38:21.8617979-07:00")),
        );
    }

    #[test]
    fn entra_single_letter_bare_word() {
        parses_to("userName sw O", cmp(ap("userName"), CompareOp::Sw, s("O")));
    }

    #[test]
    fn bare_word_stops_at_closing_bracket_and_parenthesis() {
        parses_to(
            "(emails[type eq work] and x eq y)",
            and(vp(ap("emails"), cmp(ap("type"), CompareOp::Eq, s("work"))), cmp(ap("x"), CompareOp::Eq, s("y"))),
        );
    }

    #[test]
    fn entra_value_path_with_sub_attribute_comparison() {
        parses_to(
            r#"emails[type eq "work"].value eq "a@b""#,
            vp(ap("emails"), and(cmp(ap("type"), CompareOp::Eq, s("work")), cmp(ap("value"), CompareOp::Eq, s("a@b")))),
        );
    }

    #[test]
    fn entra_value_path_with_sub_attribute_present() {
        parses_to(
            r#"emails[type eq "work"].value pr and active eq true"#,
            and(
                vp(ap("emails"), and(cmp(ap("type"), CompareOp::Eq, s("work")), pr(ap("value")))),
                cmp(ap("active"), CompareOp::Eq, CompValue::Bool(true)),
            ),
        );
    }

    #[test]
    fn entra_value_path_keeps_inner_or_grouped() {
        let f = parse_filter(r#"emails[type eq "work" or type eq "home"].value co "@x""#);
        let expected = vp(
            ap("emails"),
            and(
                or(cmp(ap("type"), CompareOp::Eq, s("work")), cmp(ap("type"), CompareOp::Eq, s("home"))),
                cmp(ap("value"), CompareOp::Co, s("@x")),
            ),
        );
        assert_eq!(f.ok(), Some(expected));
        assert_round_trips(r#"emails[type eq "work" or type eq "home"].value co "@x""#);
    }

    // -- Display --------------------------------------------------------------

    #[test]
    fn display_is_canonical() {
        let cases = [
            (r#"userName Eq "bjensen""#, r#"userName eq "bjensen""#),
            ("a pr AND (b pr OR c pr)", "a pr and (b pr or c pr)"),
            ("a pr or (b pr and c pr)", "a pr or b pr and c pr"),
            ("NOT(a pr)", "not (a pr)"),
            ("externalId eq jyoung", r#"externalId eq "jyoung""#),
            ("x eq TRUE", "x eq true"),
            (r#"x eq "a\/b\u0041""#, r#"x eq "a/bA""#),
            (r#"emails[type eq "work"].value eq "a@b""#, r#"emails[type eq "work" and value eq "a@b"]"#),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName pr",
                "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName pr",
            ),
        ];
        for (input, canonical) in cases {
            let rendered = parse_filter(input).map(|f| f.to_string());
            assert_eq!(rendered.as_deref(), Ok(canonical), "rendering {input:?}");
        }
    }

    #[test]
    fn display_round_trips_programmatic_right_nesting() {
        let f = or(pr(ap("a")), or(pr(ap("b")), and(pr(ap("c")), and(pr(ap("d")), pr(ap("e"))))));
        assert_eq!(f.to_string(), "a pr or (b pr or c pr and (d pr and e pr))");
        assert_eq!(parse_filter(&f.to_string()), Ok(f));
    }

    #[test]
    fn display_escapes_control_characters() {
        let f = cmp(ap("a"), CompareOp::Eq, s("q\"\\\u{1}\u{7f}é"));
        assert_eq!(f.to_string(), "a eq \"q\\\"\\\\\\u0001\u{7f}é\"");
        assert_eq!(parse_filter(&f.to_string()), Ok(f));
    }

    #[test]
    fn parse_error_display_includes_position() {
        let err = ParseError { position: 14, message: "expected a comparison operator after \"userName\"".into() };
        assert_eq!(err.to_string(), "at position 14: expected a comparison operator after \"userName\"");
    }

    // -- PATCH paths (RFC 7644 §3.5.2) ----------------------------------------

    fn member_filter() -> Filter {
        cmp(ap("value"), CompareOp::Eq, s(MEMBER_ID))
    }

    fn work_type() -> Filter {
        cmp(ap("type"), CompareOp::Eq, s("work"))
    }

    #[test]
    fn path_plain_attribute() {
        path_parses_to("members", ap("members"), None, None);
    }

    #[test]
    fn path_sub_attribute() {
        path_parses_to("name.familyName", ap_sub("name", "familyName"), None, None);
    }

    #[test]
    fn path_value_filter() {
        path_parses_to(r#"addresses[type eq "work"]"#, ap("addresses"), Some(work_type()), None);
        path_parses_to(
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            ap("members"),
            Some(member_filter()),
            None,
        );
    }

    #[test]
    fn path_value_filter_with_sub_attribute() {
        path_parses_to(
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName"#,
            ap("members"),
            Some(member_filter()),
            Some("displayName"),
        );
        path_parses_to(r#"emails[type eq "work"].value"#, ap("emails"), Some(work_type()), Some("value"));
        path_parses_to(
            r#"addresses[type eq "work"].streetAddress"#,
            ap("addresses"),
            Some(work_type()),
            Some("streetAddress"),
        );
    }

    #[test]
    fn path_value_filter_with_logical_operators() {
        path_parses_to(
            r#"emails[type eq "work" and value ew "example.com"]"#,
            ap("emails"),
            Some(and(work_type(), cmp(ap("value"), CompareOp::Ew, s("example.com")))),
            None,
        );
        path_parses_to(
            r#"emails[not (type eq "work") or (primary eq true)]"#,
            ap("emails"),
            Some(or(not(work_type()), cmp(ap("primary"), CompareOp::Eq, CompValue::Bool(true)))),
            None,
        );
    }

    #[test]
    fn path_with_schema_urn() {
        path_parses_to(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            ap_urn(ENTERPRISE_URN, "employeeNumber", None),
            None,
            None,
        );
        path_parses_to(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            ap_urn(ENTERPRISE_URN, "manager", None),
            None,
            None,
        );
        path_parses_to(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            ap_urn(ENTERPRISE_URN, "manager", Some("value")),
            None,
            None,
        );
        path_parses_to(
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
            ap_urn(USER_URN, "name", Some("givenName")),
            None,
            None,
        );
        path_parses_to(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value"#,
            ap_urn(USER_URN, "emails", None),
            Some(work_type()),
            Some("value"),
        );
    }

    #[test]
    fn path_tolerates_surrounding_whitespace() {
        path_parses_to("  members ", ap("members"), None, None);
    }

    #[test]
    fn path_rejects_malformed_input() {
        path_fails_at("", 0, "expected an attribute path, found end of input");
        path_fails_at("   ", 3, "expected an attribute path, found end of input");
        path_fails_at("a..b", 2, "expected a sub-attribute name after \".\", found \".b\"");
        path_fails_at("a[", 2, "found end of input");
        path_fails_at("a[]", 2, "expected an attribute path, \"(\" or \"not\", found \"]\"");
        path_fails_at("members junk", 8, "expected end of path, found \"junk\"");
        path_fails_at("a.b.c", 3, "at most one sub-attribute");
        path_fails_at("a.b[x pr]", 3, "expected the value filter right after the multi-valued attribute");
        path_fails_at("a[x pr].", 8, "expected a sub-attribute name");
        path_fails_at("a[x pr]]", 7, "without a matching \"[\"");
        path_fails_at("a[b[c pr]]", 3, "cannot be nested");
        path_fails_at("1abc", 0, "expected an attribute name, found \"1abc\"");
        path_fails_at("urn:x", 0, "expected a schema URN");
        path_fails_at("urn:a:b:", 8, "expected an attribute name after the schema URN");
        path_fails_at("émail", 0, "expected an attribute name, found \"émail\"");
    }

    // -- errors -----------------------------------------------------------------

    #[test]
    fn missing_value_reports_position_and_operator() {
        let err = fails_at("title eq ", 9, "expected a value after \"eq\", found end of input");
        assert_eq!(err.to_string(), "at position 9: expected a value after \"eq\", found end of input");
        fails_at("title Eq )", 9, "expected a value after \"Eq\", found \")\"");
        fails_at("title eq and b pr", 9, "expected a value after \"eq\", found \"and\"");
    }

    #[test]
    fn unknown_operator_reports_what_was_found() {
        let err =
            fails_at("userName equals \"x\"", 9, "expected a comparison operator after \"userName\", found \"equals\"");
        assert!(err.to_string().starts_with("at position 9: "));
        fails_at("userName", 8, "after \"userName\", found end of input");
        fails_at("name.familyName", 15, "after \"name.familyName\", found end of input");
    }

    #[test]
    fn unbalanced_delimiters_are_reported() {
        fails_at("(a pr", 5, "expected \")\" to close the group opened at position 0, found end of input");
        fails_at("a pr)", 4, "\")\" without a matching \"(\"");
        fails_at("emails[type eq \"x\"", 18, "close the value filter opened at position 6");
        fails_at("emails[type eq \"x\")", 18, "found \")\"");
        fails_at("not (a pr", 9, "close the \"not\" group opened at position 4");
    }

    #[test]
    fn unterminated_and_invalid_strings_are_reported() {
        fails_at("a eq \"abc", 5, "expected a closing '\"'");
        fails_at("a eq \"abc\\\"", 5, "expected a closing '\"'");
        fails_at("a eq \"a\\qb\"", 8, "expected a valid JSON string: invalid escape");
        fails_at("é eq \"\\ud800\"", 0, "expected an attribute");
        let err = parse_filter("a eq \"\\ud800\"");
        assert!(err.is_err(), "lone surrogate must be rejected: {err:?}");
    }

    #[test]
    fn unquoted_floats_are_read_exactly_and_round_trip() {
        // Found by fuzzing: serde_json read 26e66 one unit in the last place low, printed the
        // result as 2.5999999999999997e+67, and read that back as yet another number.
        for input in ["a eq 26e66", "y le -1.5e93", "x gt 0.1", "x lt 1.7976931348623157e308", "x eq 5e-324"] {
            assert_round_trips(input);
        }
        let exact = |text: &str| match parse_filter(text) {
            Ok(Filter::Compare { value: CompValue::Number(n), .. }) => n.as_f64(),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(exact("a eq 26e66"), Some(26e66));
        assert_eq!(exact("a eq -1.5e93"), Some(-1.5e93));
    }

    #[test]
    fn nul_in_values_is_refused() {
        // Found probing PostgreSQL with fuzzer-style input: a NUL reached the database, 500.
        fails_at("userName eq \"a\\u0000b\"", 12, "without U+0000");
        fails_at("nickName co \"\\u0000\"", 12, "without U+0000");
        fails_at("a eq x\u{0}y", 5, "without U+0000");
        fails_at("emails[value sw \"\\u0000\"]", 16, "without U+0000");
        assert!(parse_path("emails[value eq \"\\u0000\"]").is_err());
        assert!(parse_filter("a eq \"\\u0001\"").is_ok());
    }

    #[test]
    fn not_requires_parenthesis() {
        fails_at("not a pr", 4, "expected \"(\" after \"not\", found \"a\"");
        fails_at("not", 3, "expected \"(\" after \"not\", found end of input");
    }

    #[test]
    fn trailing_junk_and_dangling_logic_are_reported() {
        fails_at("userName eq john smith", 17, "expected \"and\", \"or\" or end of input, found \"smith\"");
        fails_at("a pr and", 8, "expected an attribute path");
        fails_at("a pr or or", 10, "expected a comparison operator after \"or\"");
        fails_at("and", 3, "expected a comparison operator after \"and\"");
        fails_at("", 0, "expected a filter expression, found end of input");
        fails_at("   ", 3, "expected a filter expression");
        fails_at("a pr andb pr", 5, "found \"andb\"");
        fails_at("title pr \"x\"", 9, "found \"\\\"\"");
    }

    #[test]
    fn nested_value_filter_is_rejected() {
        fails_at(r#"emails[type[value eq "x"] pr]"#, 11, "value filters cannot be nested");
    }

    #[test]
    fn sub_attribute_value_path_requires_operator_in_filters() {
        fails_at(r#"emails[type eq "work"].value"#, 28, "after \"value\", found end of input");
        fails_at(r#"emails[type eq "work"]."#, 23, "expected a sub-attribute name");
    }

    #[test]
    fn long_found_text_is_truncated() {
        let long = "x".repeat(100);
        let err = fails_at(&format!("a {long}"), 2, "found \"xxxxxxxxxxxxxxxxxxxxxxxx…\"");
        assert!(err.message.len() < 150);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        fails_at("a eq \"é\" é", 9, "found \"é\"");
    }

    // -- limits -----------------------------------------------------------------

    #[test]
    fn input_longer_than_limit_is_rejected() {
        let ok = format!("a eq \"{}\"", "x".repeat(MAX_INPUT_CHARS - 7));
        assert_eq!(ok.chars().count(), MAX_INPUT_CHARS);
        assert!(parse_filter(&ok).is_ok());
        let too_long = format!("a eq \"{}\"", "x".repeat(MAX_INPUT_CHARS));
        fails_at(&too_long, MAX_INPUT_CHARS, "longer than 8192 characters");
        assert!(parse_path(&"a".repeat(1_000_000)).is_err());
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let depth = MAX_NESTING_DEPTH;
        let f = format!("{}a pr{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(parse_filter(&f), Ok(pr(ap("a"))));
        let n = format!("{}a pr{}", "not (".repeat(depth), ")".repeat(depth));
        assert!(parse_filter(&n).is_ok());
    }

    #[test]
    fn nesting_beyond_the_limit_is_rejected() {
        let depth = MAX_NESTING_DEPTH + 1;
        let f = format!("{}a pr{}", "(".repeat(depth), ")".repeat(depth));
        fails_at(&f, MAX_NESTING_DEPTH, "nests deeper than 64 levels");
        let n = format!("{}a pr{}", "not (".repeat(depth), ")".repeat(depth));
        fails_at(&n, 5 * MAX_NESTING_DEPTH, "nests deeper than 64 levels");
        let mixed = format!("emails[{}a pr{}]", "(".repeat(64), ")".repeat(64));
        assert!(parse_filter(&mixed).is_err());
    }

    #[test]
    fn ten_thousand_open_parentheses_do_not_overflow() {
        let f = format!("{}a pr{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_filter(&f).is_err());
        assert!(parse_filter(&"(".repeat(8_000)).is_err());
        assert!(parse_path(&format!("a[{}", "(".repeat(8_000))).is_err());
    }

    #[test]
    fn ten_thousand_nots_do_not_overflow() {
        let f = format!("{}a pr{}", "not (".repeat(10_000), ")".repeat(10_000));
        assert!(parse_filter(&f).is_err());
        assert!(parse_filter(&"not (".repeat(1_600)).is_err());
        assert!(parse_filter(&"not(".repeat(2_000)).is_err());
    }

    #[test]
    fn long_flat_chain_parses_and_round_trips() {
        // 800 left-nested And nodes: within limits, no recursion problem.
        let f = ["a pr"; 800].join(" and ");
        assert!(f.len() < MAX_INPUT_CHARS);
        assert_round_trips(&f);
    }

    // -- garbage ------------------------------------------------------------------

    /// Marsaglia xorshift64: deterministic, dependency-free.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Small, often-broken tokens: stress the error paths.
    const NASTY: &[&str] = &[
        "userName",
        "emails",
        "value",
        "not",
        "and",
        "or",
        "AND",
        "nOt",
        "pr",
        "eq",
        "Eq",
        "gt",
        " ",
        " ",
        "\t",
        "(",
        ")",
        "[",
        "]",
        "\"",
        "\"x\"",
        "\"a\\\"b\"",
        "\\",
        "\\u00e9",
        ".",
        "..",
        ":",
        "$ref",
        "urn:ietf:params:scim:schemas:core:2.0:User:",
        "urn:",
        "true",
        "NULL",
        "12",
        "-1.5e3",
        "07",
        "2015-10-10T14:38:21Z",
        "é",
        "💥",
        "\u{0}",
        "\n",
        "1e999",
        "99999999999999999999999",
    ];

    /// Grammar-sized chunks: make many generated inputs valid, so the
    /// round-trip check below runs on varied shapes.
    const CHUNKS: &[&str] = &[
        "a pr",
        "userName eq \"x\"",
        "name.familyName co O'Malley",
        "x Gt 12",
        "y le -1.5e3",
        "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw J",
        "active eq TRUE",
        "manager.$ref pr",
        "NOT pr",
        " and ",
        " OR ",
        " ",
        "not (",
        "(",
        ")",
        "emails[",
        "]",
        "].value eq v",
        "type eq \"work\"",
        "x eq 99999999999999999999999",
    ];

    fn garbage(rng: &mut XorShift) -> String {
        let pieces = 1 + rng.below(14);
        let mut out = String::new();
        for _ in 0..pieces {
            // Mostly chunks, with a sprinkling of nasty tokens.
            let piece = if rng.below(4) == 0 { NASTY[rng.below(NASTY.len())] } else { CHUNKS[rng.below(CHUNKS.len())] };
            out.push_str(piece);
        }
        out
    }

    #[test]
    fn garbage_input_never_panics_and_successes_round_trip() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for _ in 0..5000 {
            let input = garbage(&mut rng);
            if let Ok(f) = parse_filter(&input) {
                accepted += 1;
                let text = f.to_string();
                assert_eq!(parse_filter(&text).as_ref(), Ok(&f), "{input:?} via {text:?}");
            }
            if let Ok(p) = parse_path(&input) {
                let text = p.to_string();
                assert_eq!(parse_path(&text).as_ref(), Ok(&p), "{input:?} via {text:?}");
            }
            if let Err(e) = parse_filter(&input) {
                assert!(e.position <= input.chars().count(), "{input:?}: {e}");
            }
        }
        // The generator must also reach the success paths to mean anything.
        assert!(accepted > 150, "only {accepted} generated filters parsed");
    }

    #[test]
    fn structured_garbage_round_trips() {
        // Builds mostly-valid filters so that the Display round trip is
        // exercised on many shapes, not just on the happy examples above.
        fn gen(rng: &mut XorShift, depth: u32) -> String {
            let leaf = |rng: &mut XorShift| {
                let attr = ["a", "emails.value", "urn:x:y:z.w", "NOT", "and"][rng.below(5)];
                let op = ["eq", "Co", "pr", "GT", "le"][rng.below(5)];
                let val = ["\"v\"", "7", "true", "null", "bare", "1.25", "\"\\u00e9\""][rng.below(7)];
                if op == "pr" {
                    format!("{attr} pr")
                } else {
                    format!("{attr} {op} {val}")
                }
            };
            if depth == 0 {
                return leaf(rng);
            }
            match rng.below(6) {
                0 => format!("{} and {}", gen(rng, depth - 1), gen(rng, depth - 1)),
                1 => format!("{} OR {}", gen(rng, depth - 1), gen(rng, depth - 1)),
                2 => format!("not ({})", gen(rng, depth - 1)),
                3 => format!("({})", gen(rng, depth - 1)),
                4 => format!("items[{}]", leaf(rng)),
                _ => leaf(rng),
            }
        }
        let mut rng = XorShift(42);
        for _ in 0..1000 {
            let input = gen(&mut rng, 4);
            assert_round_trips(&input);
        }
    }
}
