//! A boolean SQL fragment assembled at run time with bound parameters, for filters that come
//! from SCIM requests. Values are always bound, never spliced into the text; only names that
//! come from the static schema tables are written into the SQL.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::expression::{is_aggregate, AppearsOnTable, Expression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, Double, Text, Timestamp};
use diesel::QueryResult;

/// A value bound into a fragment.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Time(NaiveDateTime),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Sql(String),
    Bind(Bind),
}

/// SQL text interleaved with bound values; an expression of type BOOLEAN.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    parts: Vec<Part>,
    /// The statement may be kept prepared (see [`Sql::cached`]).
    cache: bool,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Sql {
        let mut sql = Sql::default();
        sql.push(text);
        sql
    }

    /// Lets statements with this fragment be kept prepared, keyed by their text. Only for
    /// fragments whose text is one of a small fixed set (one `eq` comparison per schema
    /// attribute, say): clients choose filters freely, and a prepared statement kept for each
    /// distinct text they send would grow every connection's cache without bound.
    pub fn cached(mut self) -> Sql {
        self.cache = true;
        self
    }

    pub fn push(&mut self, text: impl Into<String>) -> &mut Sql {
        let text = text.into();
        match self.parts.last_mut() {
            Some(Part::Sql(last)) => last.push_str(&text),
            _ => self.parts.push(Part::Sql(text)),
        }
        self
    }

    pub fn bind(&mut self, value: Bind) -> &mut Sql {
        self.parts.push(Part::Bind(value));
        self
    }

    pub fn append(&mut self, other: Sql) -> &mut Sql {
        for part in other.parts {
            match part {
                Part::Sql(text) => {
                    self.push(text);
                }
                Part::Bind(b) => {
                    self.bind(b);
                }
            }
        }
        self
    }

    /// `(a) AND (b)`, `(a) OR (b)` …
    pub fn join(op: &str, items: Vec<Sql>) -> Sql {
        let mut out = Sql::default();
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(format!(" {op} "));
            }
            out.push("(");
            out.append(item);
            out.push(")");
        }
        out
    }

    /// The SQL text with `?` for each bound value, for tests and logs.
    pub fn debug_text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Sql(s) => s.clone(),
                Part::Bind(_) => "?".to_owned(),
            })
            .collect()
    }

    pub fn binds(&self) -> Vec<&Bind> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Bind(b) => Some(b),
                Part::Sql(_) => None,
            })
            .collect()
    }
}

impl Expression for Sql {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for Sql {}

impl ValidGrouping<()> for Sql {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for Sql {
    type QueryId = ();
    // The text differs per request, so prepared-statement caching keys on the SQL string.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for Sql
where
    DB: Backend,
    String: ToSql<Text, DB>,
    bool: ToSql<Bool, DB>,
    i64: ToSql<BigInt, DB>,
    f64: ToSql<Double, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    DB: diesel::sql_types::HasSqlType<Text>
        + diesel::sql_types::HasSqlType<Bool>
        + diesel::sql_types::HasSqlType<BigInt>
        + diesel::sql_types::HasSqlType<Double>
        + diesel::sql_types::HasSqlType<Timestamp>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        for part in &self.parts {
            match part {
                Part::Sql(text) => out.push_sql(text),
                Part::Bind(Bind::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Part::Bind(Bind::Bool(v)) => out.push_bind_param::<Bool, _>(v)?,
                Part::Bind(Bind::Int(v)) => out.push_bind_param::<BigInt, _>(v)?,
                Part::Bind(Bind::Float(v)) => out.push_bind_param::<Double, _>(v)?,
                Part::Bind(Bind::Time(v)) => out.push_bind_param::<Timestamp, _>(v)?,
            }
        }
        Ok(())
    }
}

/// An SQL expression of type `ST` whose text comes from Roster's own tables of columns and
/// sort keys, never from a request, e.g. the sort key a listing selects beside each row.
#[derive(Debug, Clone)]
pub struct Known<ST> {
    text: String,
    /// As for [`Sql::cached`]: only when the text is one of a small fixed set.
    cache: bool,
    _type: std::marker::PhantomData<ST>,
}

impl<ST> Known<ST> {
    pub fn new(text: impl Into<String>, cache: bool) -> Known<ST> {
        Known { text: text.into(), cache, _type: std::marker::PhantomData }
    }
}

impl<ST: diesel::sql_types::SqlType + diesel::sql_types::SingleValue> Expression for Known<ST> {
    type SqlType = ST;
}

impl<ST, QS> AppearsOnTable<QS> for Known<ST> where Known<ST>: Expression {}

impl<ST, QS> diesel::expression::SelectableExpression<QS> for Known<ST> where Known<ST>: Expression {}

impl<ST> ValidGrouping<()> for Known<ST> {
    type IsAggregate = is_aggregate::Never;
}

impl<ST> QueryId for Known<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST, DB: Backend> QueryFragment<DB> for Known<ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(&self.text);
        Ok(())
    }
}

/// `<table>.pk IN (SELECT value FROM json_each(?))` on SQLite: the rows of a page by their pks,
/// given as one JSON array. `IN (?, ?, …)` would have a text of its own for every page size, which
/// SQLite would parse and plan again for every page (236,000 instructions of a page of 100); this
/// text is the same for any number of pks, so the connection keeps it prepared (diesel's `sql`
/// literals never are: 115,000 instructions a page). PostgreSQL has `= ANY($1)` for the same.
#[derive(Debug, Clone)]
pub struct PksInJson {
    table: &'static str,
    pks: String,
}

impl PksInJson {
    pub fn new(table: &'static str, pks: &[i64]) -> PksInJson {
        PksInJson { table, pks: serde_json::to_string(pks).expect("numbers are JSON") }
    }
}

impl Expression for PksInJson {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for PksInJson {}

impl ValidGrouping<()> for PksInJson {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for PksInJson {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<diesel::sqlite::Sqlite> for PksInJson {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        out.push_sql(self.table);
        out.push_sql(".pk IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.pks)?;
        out.push_sql("))");
        Ok(())
    }
}

/// Escapes `%`, `_` and the escape character itself so a value matches literally in
/// `LIKE … ESCAPE '\'`.
pub fn like_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_values_are_escaped() {
        assert_eq!(like_literal(r"50%_off\now"), r"50\%\_off\\now");
    }

    #[test]
    fn fragments_join_with_parentheses_and_keep_binds_in_order() {
        let mut a = Sql::new("x = ");
        a.bind(Bind::Text("1".into()));
        let mut b = Sql::new("y = ");
        b.bind(Bind::Bool(true));
        let joined = Sql::join("OR", vec![a, b]);
        assert_eq!(joined.debug_text(), "(x = ?) OR (y = ?)");
        assert_eq!(joined.binds(), vec![&Bind::Text("1".into()), &Bind::Bool(true)]);
    }
}
