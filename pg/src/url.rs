//! The store URL: `postgres://user:password@host:port/db?rotor_schema=name`.
//!
//! rotor takes one connection string and must never show its password: not
//! in errors, logs, `rotor status`, nor `Debug` output. [`StoreUrl`] keeps
//! the secret inside and only ever displays the redacted form
//! (`postgres://user:***@host/db`). `rotor_schema` (default `rotor`) names
//! the schema rotor owns in that database; it is rotor's own parameter and
//! is removed before the rest goes to the client library.

use std::fmt;
use std::str::FromStr;

/// The schema rotor uses when the URL names none.
pub const DEFAULT_SCHEMA: &str = "rotor";

/// A parsed store URL. Displays and debugs redacted.
#[derive(Clone)]
pub struct StoreUrl {
    config: postgres::Config,
    schema: String,
    redacted: String,
    password: Option<String>,
}

/// Whether `text` names a PostgreSQL store (`postgres://`, `postgresql://`).
pub fn is_postgres(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

impl StoreUrl {
    /// Parses `text`; the error message is redacted too.
    pub fn parse(text: &str) -> Result<StoreUrl, String> {
        if !is_postgres(text) {
            return Err(format!(
                "not a PostgreSQL URL (postgres://user@host/db): {}",
                redact(text)
            ));
        }
        let password = password_of(text);
        let (base, query) = match text.split_once('?') {
            Some((base, query)) => (base, query),
            None => (text, ""),
        };
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("rotor_schema", value)) => schema = value.to_owned(),
                _ => kept.push(pair),
            }
        }
        check_schema(&schema)?;
        let stripped = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let scrub = |message: String| match &password {
            Some(secret) if !secret.is_empty() => message.replace(secret.as_str(), "***"),
            _ => message,
        };
        let mut config = postgres::Config::from_str(&stripped)
            .map_err(|error| scrub(format!("bad PostgreSQL URL {}: {error}", redact(&stripped))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        // A peer that vanished (a network cut) is noticed, not waited for
        // forever: keepalives end the session, and with it the lock (§8).
        config.keepalives(true);
        config.keepalives_idle(std::time::Duration::from_secs(10));
        Ok(StoreUrl {
            config,
            schema,
            redacted: redact(text),
            password,
        })
    }

    /// The schema rotor owns.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The client configuration (it holds the password: never print it).
    pub(crate) fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `text` with every occurrence of the password replaced by `***`, for
    /// messages that quote a driver error.
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(secret) if !secret.is_empty() => text.replace(secret.as_str(), "***"),
            _ => text.to_owned(),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({})", self.redacted)
    }
}

/// A schema name rotor accepts: lowercase letters, digits and `_`, not
/// starting with a digit, at most 63 bytes (PostgreSQL's identifier limit),
/// so it can be quoted into statements without escaping.
pub fn check_schema(schema: &str) -> Result<(), String> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad rotor_schema {schema:?}: use lowercase letters, digits and _ (at most 63)"
        ))
    }
}

/// The password of a URL's userinfo or of a `password=` parameter.
fn password_of(text: &str) -> Option<String> {
    if let Some(userinfo) = userinfo(text) {
        if let Some((_, password)) = userinfo.split_once(':') {
            return Some(password.to_owned());
        }
    }
    let query = text.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        pair.strip_prefix("password=")
            .map(|password| password.to_owned())
    })
}

fn userinfo(text: &str) -> Option<&str> {
    let rest = text.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    Some(authority.rsplit_once('@')?.0)
}

/// `text` with the password of its userinfo and any `password=` parameter
/// replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    if let (Some((scheme, rest)), Some(info)) = (text.split_once("://"), userinfo(text)) {
        if let Some((user, _)) = info.split_once(':') {
            let tail = &rest[info.len()..];
            out = format!("{scheme}://{user}:***{tail}");
        }
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("password", _)) => "password=***".to_owned(),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}?{}", pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_display_debug_or_errors() {
        let url =
            StoreUrl::parse("postgres://alice:hunter2@db.example:5433/app?rotor_schema=team_a")
                .unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://alice:***@db.example:5433/app?rotor_schema=team_a"
        );
        assert!(!format!("{url} {url:?}").contains("hunter2"));
        assert_eq!(url.schema(), "team_a");
        assert_eq!(url.scrub("auth failed for hunter2"), "auth failed for ***");
        let query =
            StoreUrl::parse("postgresql://bob@h/db?password=s3cr3t&sslmode=disable").unwrap();
        assert_eq!(
            query.redacted(),
            "postgresql://bob@h/db?password=***&sslmode=disable"
        );
        assert_eq!(query.schema(), DEFAULT_SCHEMA);
        let bad = StoreUrl::parse("postgres://carol:pa55@h:notaport/db").unwrap_err();
        assert!(!bad.contains("pa55"), "{bad}");
        let schema = StoreUrl::parse("postgres://h/db?rotor_schema=Robert%27;drop").unwrap_err();
        assert!(schema.contains("rotor_schema"), "{schema}");
        assert!(!is_postgres("/var/lib/rotor"));
    }
}
