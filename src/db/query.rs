//! Translates SCIM filters and sort keys (RFC 7644 §3.4.2.2–3) into SQL over the resource
//! tables, so that every filter runs in the database and the lookups IdPs make use indexes.
//!
//! Conditions name the resource table itself (`users`, `scim_groups`), as Diesel's queries do. Attributes live in one of three places: a column of the row
//! (indexed lookups such as `userName`), the row's JSON document (`data`), or a side table with
//! one row per item of a multi-valued attribute (`user_values`, `group_members`).

use chrono::{DateTime, NaiveDateTime};

use super::sql::{like_literal, Bind, Sql};
use super::Backend;
use crate::error::{ScimError, ScimType};
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::fold::fold;
use crate::scim::schema::{self, AttrType, Attribute, ResourceType};
use crate::scim::user_name::user_name_key;

/// How values of an attribute compare in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text compared as stored (caseExact true).
    Exact,
    /// Text compared after folding (caseExact false); the expression is already folded.
    Folded,
    /// userName: the column holds the userName key (see `scim::user_name`), values get the same.
    UserName,
    Bool,
    Time,
    Number,
}

/// An SQL expression for one attribute value, with how it compares.
#[derive(Debug, Clone)]
struct Operand {
    sql: String,
    kind: Kind,
}

/// Where a filter's attribute is found.
enum Target {
    Value(Operand),
    /// Every row of a multi-valued attribute's side table: `subquery` selects the owning rows'
    /// keys given a condition on the item alias `v`.
    Items(Items),
    /// One sub-attribute of the items, e.g. `emails.value`: true when any item matches.
    ItemValue(Items, Operand),
    /// A constant, e.g. `meta.resourceType`.
    Constant(&'static str),
    /// A user's `meta.lastModified` on PostgreSQL: the column `users.updated_at`, which is not
    /// indexed there so that updates of a user are HOT updates; comparisons select from the
    /// side table `user_modified` and its index instead (migration 000010).
    Modified(Operand),
}

#[derive(Clone, Copy)]
struct Items {
    /// The multi-valued attribute (schema definition).
    attr: &'static Attribute,
    resource: Resource,
}

/// The resource types that can be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Resource {
    fn rt(self) -> &'static ResourceType {
        match self {
            Resource::User => &schema::USER_RESOURCE,
            Resource::Group => &schema::GROUP_RESOURCE,
        }
    }
}

/// Compiles filters and sort keys for one backend, tenant and resource type.
pub struct Compiler<'a> {
    pub backend: Backend,
    pub tenant_id: &'a str,
    pub resource: Resource,
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidFilter, detail)
}

impl Compiler<'_> {
    /// The resource table, as it is named in the SQL Diesel writes.
    fn row(&self) -> &'static str {
        match self.resource {
            Resource::User => "users",
            Resource::Group => "scim_groups",
        }
    }

    /// `users.column`
    fn col(&self, column: &str) -> String {
        format!("{}.{column}", self.row())
    }

    pub fn filter(&self, filter: &Filter) -> Result<Sql, ScimError> {
        match filter {
            Filter::And(a, b) => Ok(Sql::join("AND", vec![self.filter(a)?, self.filter(b)?])),
            // Parenthesised as a whole: listings AND the filter to the tenant's condition, and
            // `tenant AND a OR b` reads as `(tenant AND a) OR b`, which lists other tenants' rows.
            Filter::Or(a, b) => {
                let mut sql = Sql::new("(");
                sql.append(Sql::join("OR", vec![self.filter(a)?, self.filter(b)?])).push(")");
                Ok(sql)
            }
            Filter::Not(inner) => {
                let mut sql = Sql::new("NOT (");
                sql.append(self.filter(inner)?).push(")");
                Ok(sql)
            }
            Filter::Present(path) => self.atom(path, None),
            Filter::Compare { path, op, value } => self.atom(path, Some((*op, value))),
            Filter::ValuePath { attr, filter } => {
                if attr.sub.is_some() {
                    return Err(invalid(format!("\"{attr}\" cannot take a value filter")));
                }
                match self.resolve(attr)? {
                    Target::Items(items) => Ok(self.items_subquery(items, Some(self.item_filter(items, filter)?))),
                    _ => {
                        // A value filter on a singular complex attribute, e.g. `name[givenName eq "x"]`.
                        let found = self.find(attr)?;
                        if found.attr.kind != AttrType::Complex {
                            return Err(invalid(format!("\"{attr}\" is not a complex attribute")));
                        }
                        self.filter(&prefix_paths(filter, attr))
                    }
                }
            }
        }
    }

    fn find(&self, path: &AttrPath) -> Result<schema::Found, ScimError> {
        schema::find_attribute(self.resource.rt(), path.urn.as_deref(), &path.attr)
            .ok_or_else(|| invalid(format!("\"{path}\" is not an attribute of {}", self.resource.rt().name)))
    }

    /// Where a (top-level) attribute path lives.
    fn resolve(&self, path: &AttrPath) -> Result<Target, ScimError> {
        let found = self.find(path)?;
        let attr = found.attr;
        let sub = match &path.sub {
            Some(name) => Some(
                attr.sub_attribute(name)
                    .ok_or_else(|| invalid(format!("\"{path}\" is not an attribute of {}", self.resource.rt().name)))?,
            ),
            None => None,
        };
        if attr.returned == schema::Returned::Never {
            return Err(invalid(format!("\"{}\" cannot be used in a filter", attr.name)));
        }
        let column = |sql: &str, kind| Ok(Target::Value(Operand { sql: self.col(sql), kind }));
        match (found.schema_urn, attr.name, sub.map(|s| s.name)) {
            (None, "id", None) => column("id", Kind::Exact),
            (None, "externalId", None) => column("external_id", Kind::Exact),
            (None, "meta", Some("created")) => column("created_at", Kind::Time),
            (None, "meta", Some("lastModified"))
                if self.resource == Resource::User && self.backend.user_modified_side_table() =>
            {
                Ok(Target::Modified(Operand { sql: self.col("updated_at"), kind: Kind::Time }))
            }
            (None, "meta", Some("lastModified")) => column("updated_at", Kind::Time),
            (None, "meta", Some("resourceType")) => Ok(Target::Constant(self.resource.rt().id)),
            (None, "meta", _) => Err(invalid(format!("\"{path}\" cannot be used in a filter"))),
            (Some(schema::USER), "userName", None) => column("user_name_folded", Kind::UserName),
            (Some(schema::USER), "displayName", None) | (Some(schema::GROUP), "displayName", None) => {
                column("display_name_folded", Kind::Folded)
            }
            (Some(schema::USER), "active", None) => column("active", Kind::Bool),
            (Some(schema::ROSTER_USER), "lifecycleState", None) => column("lifecycle_state", Kind::Exact),
            (Some(schema::ROSTER_USER), "formerMember", None) => Ok(Target::Value(Operand {
                sql: format!("({} = 'formerMember')", self.col("lifecycle_state")),
                kind: Kind::Bool,
            })),
            (Some(schema::ROSTER_USER), "deactivatedAt", None) => column("deactivated_at", Kind::Time),
            (Some(schema::ROSTER_USER), "formerMemberSince", None) => column("former_member_since", Kind::Time),
            _ if attr.multi_valued && attr.kind == AttrType::Complex => {
                let items = Items { attr, resource: self.resource };
                match sub {
                    // `emails.value eq "x"` is `emails[value eq "x"]`.
                    Some(sub) => {
                        let rel = AttrPath { urn: None, attr: sub.name.to_owned(), sub: None };
                        Ok(Target::ItemValue(items, self.item_operand(items, &rel)?))
                    }
                    None => Ok(Target::Items(items)),
                }
            }
            _ => {
                let mut keys: Vec<&str> = Vec::new();
                if let Some(urn) = found.schema_urn.filter(|u| *u != self.resource.rt().schema.id) {
                    keys.push(urn);
                }
                keys.push(attr.name);
                let leaf = match (attr.kind, sub) {
                    (_, Some(sub)) => {
                        keys.push(sub.name);
                        sub
                    }
                    // The enterprise manager is matched on its id (`manager eq "id"`).
                    (AttrType::Complex, None) if attr.name == "manager" => {
                        keys.push("value");
                        attr.sub_attribute("value").expect("manager has a value")
                    }
                    (AttrType::Complex, None) => {
                        let sql = self.json_text(&self.col("data"), &keys);
                        return Ok(Target::Value(Operand { sql, kind: Kind::Exact }));
                    }
                    _ => attr,
                };
                Ok(Target::Value(self.json_operand(&self.col("data"), &keys, leaf)))
            }
        }
    }

    /// A sub-attribute of an item of a multi-valued attribute, on the item alias `v`.
    fn item_operand(&self, items: Items, rel: &AttrPath) -> Result<Operand, ScimError> {
        let sub = items
            .attr
            .sub_attribute(&rel.attr)
            .ok_or_else(|| invalid(format!("\"{}.{}\" is not an attribute", items.attr.name, rel.attr)))?;
        if rel.sub.is_some() {
            return Err(invalid(format!("\"{}.{rel}\" is nested too deeply", items.attr.name)));
        }
        let operand = |sql: &str, kind| Operand { sql: sql.to_owned(), kind };
        Ok(match (items.resource, sub.name) {
            // A user's `groups` are its memberships (the `g` alias joins the group).
            (Resource::User, "value") if items.attr.name == "groups" => operand("g.id", Kind::Exact),
            (Resource::User, "display") if items.attr.name == "groups" => {
                operand("g.display_name_folded", Kind::Folded)
            }
            (Resource::User, "type") if items.attr.name == "groups" => operand("'direct'", Kind::Exact),
            (Resource::User, _) if items.attr.name == "groups" => {
                return Err(invalid(format!("\"groups.{}\" cannot be used in a filter", sub.name)));
            }
            (Resource::User, "value") if sub.case_exact => operand("v.value", Kind::Exact),
            (Resource::User, "value") => operand("v.value_folded", Kind::Folded),
            (Resource::User, "type") => operand("v.item_type", Kind::Folded),
            (Resource::Group, "value") => operand("v.member_id", Kind::Exact),
            (Resource::Group, "type") => operand("v.member_type", Kind::Exact),
            // `primary` too, rather than the `is_primary` column: that holds false also for an item
            // without `primary`, which `primary eq false` and `primary pr` must not match (RFC 7644
            // §3.4.2.2: an unassigned attribute matches neither).
            (Resource::User, _) => self.json_operand("v.item", &[sub.name], sub),
            (Resource::Group, _) => {
                return Err(invalid(format!("\"members.{}\" cannot be used in a filter", sub.name)));
            }
        })
    }

    fn item_filter(&self, items: Items, filter: &Filter) -> Result<Sql, ScimError> {
        match filter {
            Filter::And(a, b) => Ok(Sql::join("AND", vec![self.item_filter(items, a)?, self.item_filter(items, b)?])),
            Filter::Or(a, b) => Ok(Sql::join("OR", vec![self.item_filter(items, a)?, self.item_filter(items, b)?])),
            Filter::Not(inner) => {
                let mut sql = Sql::new("NOT (");
                sql.append(self.item_filter(items, inner)?).push(")");
                Ok(sql)
            }
            Filter::Present(path) => Ok(present(&self.item_operand(items, path)?)),
            Filter::Compare { path, op, value } => compare(self.backend, &self.item_operand(items, path)?, *op, value),
            Filter::ValuePath { .. } => Err(invalid("value filters cannot be nested")),
        }
    }

    /// `users.pk IN (SELECT … FROM <items> v WHERE tenant AND attr AND condition)`: written as an
    /// IN-subquery so SQLite drives the lookup from the items' index rather than scanning users.
    fn items_subquery(&self, items: Items, condition: Option<Sql>) -> Sql {
        let mut sql = match items.resource {
            Resource::User if items.attr.name == "groups" => {
                let mut sql = Sql::new(
                    "users.pk IN (SELECT v.user_pk FROM group_members v JOIN scim_groups g ON g.pk = v.group_pk \
                     WHERE v.tenant_id = ",
                );
                sql.bind(Bind::Text(self.tenant_id.to_owned()));
                sql
            }
            Resource::User => {
                let mut sql = Sql::new("users.pk IN (SELECT v.user_pk FROM user_values v WHERE v.tenant_id = ");
                sql.bind(Bind::Text(self.tenant_id.to_owned()));
                sql.push(format!(" AND v.attr = '{}'", items.attr.name));
                sql
            }
            Resource::Group => {
                let mut sql =
                    Sql::new("scim_groups.pk IN (SELECT v.group_pk FROM group_members v WHERE v.tenant_id = ");
                sql.bind(Bind::Text(self.tenant_id.to_owned()));
                sql
            }
        };
        if let Some(condition) = condition {
            sql.push(" AND (").append(condition).push(")");
        }
        sql.push(")");
        sql
    }

    fn atom(&self, path: &AttrPath, comparison: Option<(CompareOp, &CompValue)>) -> Result<Sql, ScimError> {
        match (self.resolve(path)?, comparison) {
            (Target::Value(operand) | Target::Modified(operand), None) => Ok(present(&operand)),
            // A `meta.lastModified` `ne` matches nearly every user: no index helps it, the column serves.
            (Target::Value(operand), Some((op, value)))
            | (Target::Modified(operand), Some((op @ CompareOp::Ne, value))) => {
                compare(self.backend, &operand, op, value)
            }
            (Target::Modified(_), Some((op, value))) => {
                let side = Operand { sql: "m.updated_at".into(), kind: Kind::Time };
                let mut sql = Sql::new("users.pk IN (SELECT m.pk FROM user_modified m WHERE m.tenant_id = ");
                sql.bind(Bind::Text(self.tenant_id.to_owned()));
                sql.push(" AND ").append(compare(self.backend, &side, op, value)?).push(")");
                Ok(sql)
            }
            (Target::ItemValue(items, operand), None) => Ok(self.items_subquery(items, Some(present(&operand)))),
            (Target::ItemValue(items, operand), Some((op, value))) => {
                Ok(self.items_subquery(items, Some(compare(self.backend, &operand, op, value)?)))
            }
            (Target::Items(items), None) => Ok(self.items_subquery(items, None)),
            (Target::Items(items), Some((op, value))) => {
                // `emails co "x"` compares the items' `value` (RFC 7644 §3.4.2.2, multi-valued).
                let rel = AttrPath { urn: None, attr: "value".into(), sub: None };
                let cond = compare(self.backend, &self.item_operand(items, &rel)?, op, value)?;
                Ok(self.items_subquery(items, Some(cond)))
            }
            (Target::Constant(c), None) => Ok(Sql::new(if c.is_empty() { "1 = 0" } else { "1 = 1" })),
            (Target::Constant(c), Some((op, value))) => {
                let text = match value {
                    CompValue::Str(s) => s.clone(),
                    other => other.to_string(),
                };
                let matches = match op {
                    CompareOp::Eq => c.eq_ignore_ascii_case(&text),
                    CompareOp::Ne => !c.eq_ignore_ascii_case(&text),
                    CompareOp::Co => fold(c).contains(&fold(&text)),
                    CompareOp::Sw => fold(c).starts_with(&fold(&text)),
                    CompareOp::Ew => fold(c).ends_with(&fold(&text)),
                    _ => return Err(invalid(format!("\"{path}\" cannot be compared with {op}"))),
                };
                Ok(Sql::new(if matches { "1 = 1" } else { "1 = 0" }))
            }
        }
    }

    /// The text at a JSON path of a document column.
    fn json_text(&self, column: &str, keys: &[&str]) -> String {
        self.backend.json_text(column, keys)
    }

    fn json_operand(&self, column: &str, keys: &[&str], leaf: &Attribute) -> Operand {
        let text = self.json_text(column, keys);
        match leaf.kind {
            AttrType::Boolean => Operand { sql: self.backend.json_bool(text), kind: Kind::Bool },
            AttrType::Integer | AttrType::Decimal => {
                Operand { sql: self.backend.json_number(text), kind: Kind::Number }
            }
            AttrType::DateTime => Operand { sql: text, kind: Kind::Exact },
            _ if leaf.case_exact => Operand { sql: text, kind: Kind::Exact },
            _ => Operand { sql: self.backend.fold_sql(&text), kind: Kind::Folded },
        }
    }

    /// A sort key (RFC 7644 §3.4.2.3) as text, ordered byte-wise on both backends.
    pub fn sort_key(&self, path: &AttrPath) -> Result<String, ScimError> {
        let bad = |detail: String| ScimError::bad_request(ScimType::InvalidValue, detail);
        let expr = match self.resolve(path).map_err(|e| bad(e.detail))? {
            Target::Value(op) | Target::Modified(op) => op.sql,
            Target::ItemValue(items, op) => self.first_item(items.attr, &op.sql),
            Target::Items(items) => {
                let rel = AttrPath { urn: None, attr: "value".into(), sub: None };
                let op = self.item_operand(items, &rel).map_err(|e| bad(e.detail))?;
                self.first_item(items.attr, &op.sql)
            }
            Target::Constant(c) => format!("'{c}'"),
        };
        Ok(self.backend.sort_text(&expr))
    }

    /// The primary (else first) item's value, for sorting by a multi-valued attribute.
    fn first_item(&self, attr: &Attribute, column: &str) -> String {
        match self.resource {
            Resource::User if attr.name == "groups" => format!(
                "(SELECT MIN({column}) FROM group_members v JOIN scim_groups g ON g.pk = v.group_pk \
                 WHERE v.user_pk = users.pk)"
            ),
            Resource::User => format!(
                "(SELECT {column} FROM user_values v WHERE v.user_pk = users.pk AND v.attr = '{}' \
                 ORDER BY v.is_primary DESC, v.idx LIMIT 1)",
                attr.name
            ),
            Resource::Group => {
                format!("(SELECT MIN({column}) FROM group_members v WHERE v.group_pk = scim_groups.pk)")
            }
        }
    }
}

/// The order of a listing: by a sort key (from [`Compiler::sort_key`]) then the row key, or by
/// the row key alone (creation order), which is the default and always stable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Order {
    pub key: Option<String>,
    pub descending: bool,
}

/// A row's place in an order: its sort key and row key. Cursors carry one.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub key: Option<String>,
    pub pk: i64,
}

impl Compiler<'_> {
    /// Rows strictly after `pos` in `order` (or strictly before it, for `forward == false`).
    /// Missing keys sort last, ties are broken by the row key ascending.
    pub fn keyset(&self, order: &Order, pos: &Position, forward: bool) -> Sql {
        let pk = self.col("pk");
        let Some(key) = &order.key else {
            let op = if forward != order.descending { ">" } else { "<" };
            let mut sql = Sql::new(format!("{pk} {op} "));
            sql.bind(Bind::Int(pos.pk));
            // One of four texts per resource type.
            return sql.cached();
        };
        // The key comparison that moves in the walking direction.
        let key_op = if forward != order.descending { ">" } else { "<" };
        let pk_op = if forward { ">" } else { "<" };
        match (&pos.key, forward) {
            (Some(v), _) => {
                let mut sql = Sql::new(format!("(({key} IS NOT NULL AND ({key} {key_op} "));
                sql.bind(Bind::Text(v.clone()));
                sql.push(format!(" OR ({key} = "));
                sql.bind(Bind::Text(v.clone()));
                sql.push(format!(" AND {pk} {pk_op} "));
                sql.bind(Bind::Int(pos.pk));
                sql.push(")))");
                if forward {
                    sql.push(format!(" OR {key} IS NULL)"));
                } else {
                    sql.push(")");
                }
                sql
            }
            (None, true) => {
                let mut sql = Sql::new(format!("({key} IS NULL AND {pk} > "));
                sql.bind(Bind::Int(pos.pk)).push(")");
                sql
            }
            (None, false) => {
                let mut sql = Sql::new(format!("({key} IS NOT NULL OR {pk} < "));
                sql.bind(Bind::Int(pos.pk)).push(")");
                sql
            }
        }
    }
}

/// Rewrites `givenName eq "x"` inside `name[...]` to `name.givenName eq "x"`.
fn prefix_paths(filter: &Filter, parent: &AttrPath) -> Filter {
    let fix = |p: &AttrPath| AttrPath { urn: parent.urn.clone(), attr: parent.attr.clone(), sub: Some(p.attr.clone()) };
    match filter {
        Filter::Compare { path, op, value } => Filter::Compare { path: fix(path), op: *op, value: value.clone() },
        Filter::Present(path) => Filter::Present(fix(path)),
        Filter::And(a, b) => Filter::And(Box::new(prefix_paths(a, parent)), Box::new(prefix_paths(b, parent))),
        Filter::Or(a, b) => Filter::Or(Box::new(prefix_paths(a, parent)), Box::new(prefix_paths(b, parent))),
        Filter::Not(a) => Filter::Not(Box::new(prefix_paths(a, parent))),
        other => other.clone(),
    }
}

fn present(operand: &Operand) -> Sql {
    match operand.kind {
        Kind::Exact | Kind::Folded | Kind::UserName => {
            Sql::new(format!("({0} IS NOT NULL AND {0} <> '')", operand.sql))
        }
        _ => Sql::new(format!("({} IS NOT NULL)", operand.sql)),
    }
}

/// Parses a filter's dateTime value (RFC 7643 §2.3.5); a missing offset means UTC.
fn parse_time(text: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

/// The first string after every string that starts with `prefix`, in code point order: the
/// prefix with its last character stepped up by one (a last U+10FFFF is dropped and the one
/// before it stepped). None when no string bounds them (an empty prefix, or only U+10FFFF).
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `operand <op> value`, never NULL: an absent attribute compares false (and `ne` true).
fn compare(backend: Backend, operand: &Operand, op: CompareOp, value: &CompValue) -> Result<Sql, ScimError> {
    let lhs = &operand.sql;
    if matches!(value, CompValue::Null) {
        return match op {
            CompareOp::Eq => Ok(Sql::new(format!("({lhs} IS NULL)"))),
            CompareOp::Ne => Ok(present(operand)),
            _ => Err(invalid(format!("null can only be compared with eq or ne, not {op}"))),
        };
    }
    let text = match value {
        CompValue::Str(s) => s.clone(),
        CompValue::Bool(b) => b.to_string(),
        CompValue::Number(n) => n.to_string(),
        CompValue::Null => unreachable!("handled above"),
    };
    let bind = match operand.kind {
        Kind::Exact => Bind::Text(text),
        Kind::Folded => Bind::Text(fold(&text)),
        Kind::UserName => Bind::Text(user_name_key(&text)),
        Kind::Bool => {
            if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                return Err(invalid(format!("a boolean cannot be compared with {op}")));
            }
            match text.to_ascii_lowercase().as_str() {
                "true" => Bind::Bool(true),
                "false" => Bind::Bool(false),
                _ => return Err(invalid(format!("{text:?} is not a boolean"))),
            }
        }
        Kind::Time => {
            if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
                return Err(invalid(format!("a dateTime cannot be compared with {op}")));
            }
            Bind::Time(parse_time(&text).ok_or_else(|| invalid(format!("{text:?} is not a dateTime")))?)
        }
        Kind::Number => {
            if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
                return Err(invalid(format!("a number cannot be compared with {op}")));
            }
            Bind::Float(text.parse().map_err(|_| invalid(format!("{text:?} is not a number")))?)
        }
    };
    let mut sql = Sql::new(format!("({lhs} IS NOT NULL AND "));
    let like = |pattern: String| Bind::Text(pattern);
    match op {
        CompareOp::Eq => sql.push(format!("{lhs} = ")).bind(bind),
        CompareOp::Ne => {
            // `ne` also matches resources that lack the attribute.
            let mut ne = Sql::new(format!("({lhs} IS NULL OR {lhs} <> "));
            ne.bind(bind).push(")");
            return Ok(ne);
        }
        CompareOp::Gt => sql.push(format!("{lhs} > ")).bind(bind),
        CompareOp::Ge => sql.push(format!("{lhs} >= ")).bind(bind),
        CompareOp::Lt => sql.push(format!("{lhs} < ")).bind(bind),
        CompareOp::Le => sql.push(format!("{lhs} <= ")).bind(bind),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            let Bind::Text(raw) = bind else { unreachable!("text kinds only") };
            let v = like_literal(&raw);
            let pattern = match op {
                CompareOp::Co => format!("%{v}%"),
                CompareOp::Sw => format!("{v}%"),
                _ => format!("%{v}"),
            };
            if op == CompareOp::Sw && backend.prefix_needs_range() {
                // The index range a prefix spans, in SQLite's byte order (= code point order).
                sql.push(format!("{lhs} >= ")).bind(Bind::Text(raw.clone())).push(" AND ");
                if let Some(end) = prefix_successor(&raw) {
                    sql.push(format!("{lhs} < ")).bind(Bind::Text(end)).push(" AND ");
                }
            }
            sql.push(format!("{lhs} LIKE ")).bind(like(pattern)).push(" ESCAPE '\\'")
        }
    };
    sql.push(")");
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter;

    #[test]
    fn a_prefix_range_holds_exactly_the_strings_with_that_prefix() {
        assert_eq!(prefix_successor("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
        // Every string over an alphabet with the awkward code points, against every prefix.
        let alphabet =
            ['a', 'b', '\u{7F}', '\u{80}', 'é', '\u{D7FF}', '\u{E000}', '\u{FFFF}', '\u{10000}', '\u{10FFFF}'];
        let mut strings = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> =
                strings.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
            strings.extend(longer);
        }
        strings.sort();
        strings.dedup();
        for prefix in strings.iter().filter(|p| p.chars().count() <= 2) {
            let end = prefix_successor(prefix);
            for s in &strings {
                let in_range = s.as_str() >= prefix.as_str() && end.as_deref().is_none_or(|e| s.as_str() < e);
                assert_eq!(in_range, s.starts_with(prefix.as_str()), "{prefix:?} {s:?}");
            }
        }
    }

    fn compile(backend: Backend, filter: &str) -> Result<Sql, ScimError> {
        let c = Compiler { backend, tenant_id: "t1", resource: Resource::User };
        c.filter(&parse_filter(filter).unwrap())
    }

    #[test]
    fn user_name_uses_the_folded_indexed_column() {
        let sql = compile(Backend::Sqlite, "USERNAME Eq \"BJensen\"").unwrap();
        assert_eq!(sql.debug_text(), "(users.user_name_folded IS NOT NULL AND users.user_name_folded = ?)");
        assert_eq!(sql.binds(), vec![&Bind::Text("bjensen".into())]);
    }

    #[test]
    fn external_id_is_case_exact_and_accepts_unquoted_values() {
        let sql = compile(Backend::Postgres, "externalId eq jyoung").unwrap();
        assert_eq!(sql.debug_text(), "(users.external_id IS NOT NULL AND users.external_id = ?)");
        assert_eq!(sql.binds(), vec![&Bind::Text("jyoung".into())]);
    }

    #[test]
    fn emails_value_path_becomes_one_indexed_subquery() {
        let sql = compile(Backend::Sqlite, "emails[type eq \"work\"].value eq \"A@B.com\"").unwrap();
        let text = sql.debug_text();
        assert!(
            text.starts_with(
                "users.pk IN (SELECT v.user_pk FROM user_values v WHERE v.tenant_id = ? AND v.attr = 'emails' AND ("
            ),
            "{text}"
        );
        assert!(text.contains("v.item_type = ?") && text.contains("v.value_folded = ?"), "{text}");
        assert_eq!(sql.binds()[0], &Bind::Text("t1".into()));
    }

    #[test]
    fn like_operators_escape_wildcards() {
        let sql = compile(Backend::Sqlite, "userName co \"50%_x\"").unwrap();
        assert!(sql.debug_text().contains("LIKE ? ESCAPE '\\'"));
        assert_eq!(sql.binds(), vec![&Bind::Text("%50\\%\\_x%".into())]);
    }

    #[test]
    fn json_attributes_fold_with_the_backend_function() {
        let sqlite = compile(Backend::Sqlite, "name.familyName eq \"O'Malley\"").unwrap().debug_text();
        assert!(sqlite.contains("roster_fold(json_extract(users.data, '$.\"name\".\"familyName\"'))"), "{sqlite}");
        let pg =
            compile(Backend::Postgres, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq x")
                .unwrap()
                .debug_text();
        assert!(pg.contains("normalize(lower(normalize((users.data::jsonb #>> '{\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"department\"}'), NFD)), NFC)"), "{pg}");
    }

    #[test]
    fn dates_compare_as_timestamps_and_reject_substring_operators() {
        let sql = compile(Backend::Sqlite, "meta.lastModified gt \"2011-05-13T04:42:34Z\"").unwrap();
        assert!(matches!(sql.binds()[0], Bind::Time(_)));
        assert_eq!(
            compile(Backend::Sqlite, "meta.created co \"2011\"").unwrap_err().scim_type,
            Some(ScimType::InvalidFilter)
        );
    }

    #[test]
    fn last_modified_uses_the_side_table_on_postgres_and_the_column_on_sqlite() {
        let pg = compile(Backend::Postgres, "meta.lastModified ge \"2011-05-13T04:42:34Z\"").unwrap();
        assert_eq!(
            pg.debug_text(),
            "users.pk IN (SELECT m.pk FROM user_modified m WHERE m.tenant_id = ? AND \
             (m.updated_at IS NOT NULL AND m.updated_at >= ?))"
        );
        assert_eq!(pg.binds()[0], &Bind::Text("t1".into()));
        assert!(matches!(pg.binds()[1], Bind::Time(_)));
        let ne = compile(Backend::Postgres, "meta.lastModified ne \"2011-05-13T04:42:34Z\"").unwrap();
        assert_eq!(ne.debug_text(), "(users.updated_at IS NULL OR users.updated_at <> ?)");
        let sqlite = compile(Backend::Sqlite, "meta.lastModified ge \"2011-05-13T04:42:34Z\"").unwrap();
        assert_eq!(sqlite.debug_text(), "(users.updated_at IS NOT NULL AND users.updated_at >= ?)");
        let groups = Compiler { backend: Backend::Postgres, tenant_id: "t1", resource: Resource::Group };
        let filter = parse_filter("meta.lastModified ge \"2011-05-13T04:42:34Z\"").unwrap();
        assert_eq!(
            groups.filter(&filter).unwrap().debug_text(),
            "(scim_groups.updated_at IS NOT NULL AND scim_groups.updated_at >= ?)"
        );
    }

    #[test]
    fn booleans_only_compare_for_equality() {
        assert!(compile(Backend::Sqlite, "active eq \"True\"").is_ok());
        assert_eq!(compile(Backend::Sqlite, "active gt true").unwrap_err().scim_type, Some(ScimType::InvalidFilter));
    }

    #[test]
    fn unknown_and_write_only_attributes_are_invalid_filters() {
        let err = compile(Backend::Sqlite, "nickname2 eq \"x\"").unwrap_err();
        assert!(err.detail.contains("nickname2"));
        assert!(compile(Backend::Sqlite, "password eq \"x\"").is_err());
    }

    #[test]
    fn an_or_filter_is_one_condition_so_the_tenant_condition_covers_both_sides() {
        let sql = compile(Backend::Sqlite, "externalId eq \"a\" or externalId eq \"b\"").unwrap();
        let one = "(users.external_id IS NOT NULL AND users.external_id = ?)";
        assert_eq!(sql.debug_text(), format!("(({one}) OR ({one}))"));
    }

    #[test]
    fn an_items_primary_is_read_from_the_item_so_an_unassigned_one_matches_neither_true_nor_false() {
        let sql = compile(Backend::Sqlite, "emails[primary eq false]").unwrap().debug_text();
        assert!(sql.contains("(json_extract(v.item, '$.\"primary\"') = 1)"), "{sql}");
        assert!(!sql.contains("is_primary"), "{sql}");
    }

    #[test]
    fn resource_type_is_a_constant() {
        assert_eq!(compile(Backend::Sqlite, "meta.resourceType eq \"User\"").unwrap().debug_text(), "1 = 1");
        assert_eq!(compile(Backend::Sqlite, "meta.resourceType eq \"Group\"").unwrap().debug_text(), "1 = 0");
    }
}
