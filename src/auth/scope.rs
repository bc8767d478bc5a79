//! Token scopes (docs/storage.md, "Tokens and scopes").

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read and write every SCIM resource.
    Scim,
    /// Read SCIM resources only.
    ScimRead,
    Sessions,
    Content,
    Events,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] =
        [Scope::Scim, Scope::ScimRead, Scope::Sessions, Scope::Content, Scope::Events, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::ScimRead => "scim:read",
            Scope::Sessions => "sessions",
            Scope::Content => "content",
            Scope::Events => "events",
            Scope::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| {
            let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown scope {s:?}; known scopes: {}", known.join(", "))
        })
    }
}

/// A set of scopes, written space-separated in tokens and comma- or space-separated on the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// True when these scopes grant `needed`; `scim` includes `scim:read`.
    pub fn grants(&self, needed: Scope) -> bool {
        self.0.iter().any(|&s| s == needed || (s == Scope::Scim && needed == Scope::ScimRead))
    }

    /// True when `granted` grants every one of these scopes.
    pub fn within(&self, granted: &Scopes) -> bool {
        self.0.iter().all(|&s| granted.grants(s))
    }
}

impl FromStr for Scopes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut scopes = Vec::new();
        for part in s.split([' ', ',']).filter(|p| !p.is_empty()) {
            let scope: Scope = part.parse()?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("at least one scope is needed".into());
        }
        Ok(Scopes(scopes))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_grants_read_but_read_does_not_grant_write() {
        let write: Scopes = "scim".parse().unwrap();
        let read: Scopes = "scim:read".parse().unwrap();
        assert!(write.grants(Scope::ScimRead) && write.grants(Scope::Scim));
        assert!(read.grants(Scope::ScimRead) && !read.grants(Scope::Scim));
    }

    #[test]
    fn scopes_parse_from_commas_or_spaces_and_reject_unknown_names() {
        let s: Scopes = "scim, events admin".parse().unwrap();
        assert_eq!(s.to_string(), "scim events admin");
        assert!("scim,root".parse::<Scopes>().unwrap_err().contains("unknown scope \"root\""));
        assert!("".parse::<Scopes>().is_err());
    }
}
