//! Where the database lives: the configured URL parsed once into a backend and a driver target,
//! with the loopback TLS rule and the password kept out of logs and errors.

use super::dialect::Backend;

/// Where the database lives, parsed once from the configured URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    /// What the driver is given: a PostgreSQL URL or libpq key=value string, or an SQLite path
    /// or `file:` URI.
    pub(super) target: String,
    /// The password the target holds, if any, so that logs and errors never show it.
    password: Option<String>,
}

/// Shows the URL redacted: a derived `Debug` would print the password.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl").field("backend", &self.backend).field("target", &self.redacted()).finish()
    }
}

/// The connection keywords of libpq (PostgreSQL 15's `PQconndefaults` plus the later
/// `load_balance_hosts`, `sslcertmode`, `require_auth` and `gssdelegation`): a string whose
/// first word is `keyword=` is a key=value connection string (PostgreSQL docs §34.1.1.1).
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

impl DatabaseUrl {
    /// Accepts, for PostgreSQL, a `postgres://` or `postgresql://` URL (several hosts and
    /// `?host=/socket/dir` included: libpq reads them) or a libpq key=value string
    /// (`host=… dbname=… user=…`); for SQLite, a path, `sqlite:PATH`, `sqlite://PATH` or a
    /// `file:` URI. Anything else is refused rather than taken for a file name. Errors never
    /// repeat the input, which may hold a password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("the database URL is empty".into());
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("the sqlite: URL names no file".into());
            }
            return Ok(DatabaseUrl { backend: Backend::Sqlite, target: path.to_owned(), password: None });
        }
        let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
        if let Some(scheme @ ("postgres" | "postgresql")) = scheme.as_deref() {
            if !url[scheme.len()..].starts_with("://") {
                return Err(format!("a PostgreSQL URL starts with {scheme}://"));
            }
            let tls_chosen = std::env::var_os("PGSSLMODE").is_some();
            let password = url_password(url);
            return Ok(DatabaseUrl {
                backend: Backend::Postgres,
                target: without_loopback_tls(url, tls_chosen),
                password,
            });
        }
        if let Some(keyword) = first_keyword(url) {
            if !LIBPQ_KEYWORDS.contains(&keyword) {
                return Err(format!(
                    "the database URL looks like a key=value connection string, but {keyword:?} is not a \
                     libpq keyword (an SQLite path with '=' in it is written sqlite:PATH)"
                ));
            }
            let password = keyword_value(url, "password");
            return Ok(DatabaseUrl { backend: Backend::Postgres, target: url.to_owned(), password });
        }
        if url.contains("://") && !url.starts_with("file:") {
            let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
            return Err(format!(
                "unsupported database URL scheme {scheme:?}: use postgres://…, a key=value connection \
                 string or an SQLite path"
            ));
        }
        Ok(DatabaseUrl { backend: Backend::Sqlite, target: url.to_owned(), password: None })
    }

    /// The SQLite database's file; none on PostgreSQL or for an in-memory database.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        (self.backend == Backend::Sqlite).then(|| sqlite_file(&self.target)).flatten()
    }

    /// What the driver connects to: the PostgreSQL URL, or the SQLite path or URI.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The URL without any password, for logs and errors.
    pub fn redacted(&self) -> String {
        self.redact(&self.target)
    }

    /// `text` with the URL's password, as written in the URL and percent-decoded, replaced by
    /// `***`: libpq's own messages can quote parts of the connection string.
    pub fn redact(&self, text: &str) -> String {
        let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) else { return text.to_owned() };
        let mut text = text.replace(password, "***");
        let decoded = percent_decoded(password);
        if !decoded.is_empty() && decoded != password {
            text = text.replace(&decoded, "***");
        }
        text
    }
}

/// A PostgreSQL URL whose hosts are all this machine's loopback, and which leaves TLS to libpq's
/// default (`sslmode=prefer`: TLS whenever the server offers it), gets `sslmode=disable`.
/// Encrypting traffic that never leaves the kernel protects nothing, and it cost a sixth of the
/// throughput of reads (measured with roster-bench). An `sslmode` in the URL, `PGSSLMODE` in the
/// environment (`tls_chosen`), or a `host`/`hostaddr` parameter leave the URL as it is.
fn without_loopback_tls(url: &str, tls_chosen: bool) -> String {
    let Some((_, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    let decides_tls = |key: &str| key == "sslmode" || key == "host" || key == "hostaddr";
    let decided = tls_chosen || query.split('&').any(|pair| decides_tls(pair.split('=').next().unwrap_or("")));
    if decided || hosts.is_empty() || !hosts.split(',').all(is_loopback_host) {
        return url.to_owned();
    }
    let separator = if !url.contains('?') {
        "?"
    } else if url.ends_with(['?', '&']) {
        ""
    } else {
        "&"
    };
    format!("{url}{separator}sslmode=disable")
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn is_loopback_host(host_and_port: &str) -> bool {
    let host = match host_and_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or(bracketed, |(address, _)| address),
        None => host_and_port.split_once(':').map_or(host_and_port, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The password of a `postgres://` URL: in the user info, or a `password` query parameter.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if let Some((_, password)) = authority.rsplit_once('@').and_then(|(userinfo, _)| userinfo.split_once(':')) {
        return Some(password.to_owned());
    }
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    query.split('&').find_map(|pair| pair.strip_prefix("password=")).map(str::to_owned)
}

/// The keyword of a libpq key=value string (`host=db user=r`, spaces around `=` allowed), or
/// None when the first word is not `keyword=`.
fn first_keyword(text: &str) -> Option<&str> {
    let end = text.find(|c: char| c == '=' || c.is_whitespace())?;
    let keyword = &text[..end];
    let valid = !keyword.is_empty() && keyword.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (valid && text[end..].trim_start().starts_with('=')).then_some(keyword)
}

/// The value of `keyword` in a libpq key=value string: single-quoted values may hold spaces and
/// backslash-escaped quotes or backslashes.
fn keyword_value(text: &str, keyword: &str) -> Option<String> {
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let mut value = String::new();
        let mut end = after.len();
        let mut chars = after.char_indices();
        if after.starts_with('\'') {
            chars.next();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
                    c => value.push(c),
                }
            }
        } else {
            for (i, c) in chars {
                if c.is_whitespace() {
                    end = i;
                    break;
                }
                value.push(c);
            }
        }
        if key.trim() == keyword {
            return Some(value);
        }
        rest = after[end..].trim_start();
    }
    None
}

/// `%XX` escapes decoded, as libpq decodes a URL's parts; invalid escapes are kept as written.
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The file an SQLite target names; none for an in-memory database.
pub(super) fn sqlite_file(target: &str) -> Option<std::path::PathBuf> {
    let path = match target.strip_prefix("file:") {
        // A URI: its path ends at the query; `mode=memory` and `:memory:` are no file.
        Some(uri) if uri.contains("mode=memory") => return None,
        Some(uri) => {
            let path = uri.split(['?', '#']).next().unwrap_or("");
            let path = path.strip_prefix("//localhost").or_else(|| path.strip_prefix("//")).unwrap_or(path);
            percent_decoded(path)
        }
        None => target.to_owned(),
    };
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_choose_postgres_and_hide_passwords() {
        let url = DatabaseUrl::parse("postgres://roster:s3cret@db.internal:5432/roster").unwrap();
        assert_eq!(url.backend, Backend::Postgres);
        assert_eq!(url.redacted(), "postgres://roster:***@db.internal:5432/roster");
    }

    #[test]
    fn loopback_postgres_goes_without_tls_unless_the_url_or_environment_decides() {
        let disabled = |url: &str| format!("{url}sslmode=disable");
        for (input, expected) in [
            ("postgres://postgres@127.0.0.1:5432/test", disabled("postgres://postgres@127.0.0.1:5432/test?")),
            ("postgresql://u:p@localhost/db", disabled("postgresql://u:p@localhost/db?")),
            ("postgres://[::1]:5433/db?application_name=r", disabled("postgres://[::1]:5433/db?application_name=r&")),
            ("postgres://127.0.0.2,localhost:5433/db?", disabled("postgres://127.0.0.2,localhost:5433/db?")),
            ("postgres://127.0.0.1", disabled("postgres://127.0.0.1?")),
        ] {
            assert_eq!(without_loopback_tls(input, false), expected, "{input}");
        }
        for kept in [
            "postgres://roster@db.internal:5432/roster",
            "postgres://127.0.0.1,db.internal/roster",
            "postgres://127.0.0.1/db?sslmode=require",
            "postgres://localhost/db?connect_timeout=3&sslmode=verify-full",
            "postgres:///db?host=/var/run/postgresql",
            "postgres://localhost/db?hostaddr=10.0.0.7",
            "postgres://[2001:db8::1]:5432/db",
            "postgres://localhost.evil.example/db",
            "postgres://127.0.0.1.nip.io/db",
        ] {
            assert_eq!(without_loopback_tls(kept, false), kept);
        }
        assert_eq!(without_loopback_tls("postgres://127.0.0.1/db", true), "postgres://127.0.0.1/db", "PGSSLMODE set");
    }

    #[test]
    fn plain_paths_and_sqlite_urls_choose_sqlite() {
        for (input, target) in
            [("roster.db", "roster.db"), ("sqlite://data/r.db", "data/r.db"), ("sqlite:r.db", "r.db")]
        {
            let url = DatabaseUrl::parse(input).unwrap();
            assert_eq!(url.backend, Backend::Sqlite);
            assert_eq!(url.target, target);
        }
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(DatabaseUrl::parse("mysql://localhost/x").unwrap_err().contains("unsupported"));
    }

    #[test]
    fn libpq_key_value_strings_choose_postgres_and_hide_passwords() {
        for (input, password) in [
            ("host=db.internal port=5432 dbname=roster user=roster password=s3cret", "s3cret"),
            ("host = /var/run/postgresql dbname=roster", ""),
            (r"user=r password='a \'quoted\' s3cret' host=db", "a 'quoted' s3cret"),
            ("service=roster", ""),
        ] {
            let url = DatabaseUrl::parse(input).unwrap();
            assert_eq!(url.backend, Backend::Postgres, "{input}");
            assert_eq!(url.target(), input, "libpq reads the string as it is");
            if !password.is_empty() {
                assert!(!url.redacted().contains(password), "{input} → {}", url.redacted());
                assert!(!format!("{url:?}").contains(password), "Debug redacts too");
            }
        }
    }

    #[test]
    fn a_key_value_string_with_an_unknown_keyword_is_refused_without_echoing_it() {
        let err = DatabaseUrl::parse("hots=db.internal password=s3cret").unwrap_err();
        assert!(err.contains("\"hots\" is not a libpq keyword"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn postgres_url_forms_libpq_reads_are_postgres() {
        for input in [
            "postgresql://roster@db1:5432,db2:5433/roster?target_session_attrs=read-write",
            "postgres:///roster?host=/var/run/postgresql",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/roster",
            "POSTGRES://roster@db.internal/roster",
        ] {
            assert_eq!(DatabaseUrl::parse(input).unwrap().backend, Backend::Postgres, "{input}");
        }
        for refused in ["postgres:roster", "postgresql:/db"] {
            assert!(DatabaseUrl::parse(refused).unwrap_err().contains("://"), "{refused}");
        }
    }

    #[test]
    fn passwords_are_hidden_wherever_the_url_holds_them() {
        for (input, password) in [
            ("postgres://roster:s3cret@db.internal:5432/roster", "s3cret"),
            ("postgres://roster:p%40ss%3Aw0rd@db.internal/roster", "p@ss:w0rd"),
            ("postgres://roster@db.internal/roster?sslmode=require&password=s3cret", "s3cret"),
        ] {
            let url = DatabaseUrl::parse(input).unwrap();
            assert!(!url.redacted().contains(password), "{}", url.redacted());
            let libpq_said = format!("invalid percent-encoded token: \"{password}\"");
            assert!(!url.redact(&libpq_said).contains(password), "errors are redacted too");
        }
        let encoded = DatabaseUrl::parse("postgres://roster:p%40ss%3Aw0rd@db/roster").unwrap();
        assert!(!encoded.redacted().contains("p%40ss%3Aw0rd"));
    }

    #[test]
    fn sqlite_urls_and_uris_are_sqlite() {
        for (input, target) in [
            ("sqlite:///var/lib/roster/roster.db", "/var/lib/roster/roster.db"),
            ("sqlite::memory:", ":memory:"),
            ("sqlite:odd=name.db", "odd=name.db"),
            ("file:roster.db?cache=shared", "file:roster.db?cache=shared"),
            ("file:///var/lib/roster/roster.db", "file:///var/lib/roster/roster.db"),
            ("my data/roster.db", "my data/roster.db"),
        ] {
            let url = DatabaseUrl::parse(input).unwrap();
            assert_eq!((url.backend, url.target()), (Backend::Sqlite, target), "{input}");
        }
        assert!(DatabaseUrl::parse("sqlite:").is_err());
    }
}
