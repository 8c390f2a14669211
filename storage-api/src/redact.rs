//! Keeps passwords out of logs, errors and `Debug` output: URLs of any shape
//! (`postgres://`, one slash `postgres:/`, none `postgres:`, no scheme at all), their
//! `password=` query parameter, any text quoting them, and TOML errors about a
//! configuration file (which would otherwise quote the offending line).

/// Characters that end a URL when it is quoted inside other text.
fn ends_token(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '[' | ']' | '{' | '}' | ',' | ';'
        )
}

/// The URL with any password replaced by `***`
/// (`postgres://app:s3cret@host/db` becomes `postgres://app:***@host/db`;
/// `postgres:/app:s3cret@host` becomes `postgres:/app:***@host`).
///
/// The user information is everything before the last `@`, so a password holding `@`,
/// `/` or spaces is masked whole. A `password=` query parameter is masked too.
pub fn redact_url(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return redact_query_password(url);
    };
    let start = authority_start(&url[..at]);
    let userinfo = &url[start..at];
    let Some(colon) = userinfo.find(':') else {
        return redact_query_password(url);
    };
    let masked = format!("{}{}:***{}", &url[..start], &userinfo[..colon], &url[at..]);
    redact_query_password(&masked)
}

/// Where the user information of a URL starts: after `scheme://`, `scheme:/` or
/// `scheme:`; at 0 when what looks like a scheme is really the user (`app:pw@host`).
fn authority_start(before_at: &str) -> usize {
    if let Some(i) = before_at.find("://") {
        return i + 3;
    }
    let scheme_len = scheme_name_len(before_at);
    if scheme_len == 0 || !before_at[scheme_len..].starts_with(':') {
        return 0;
    }
    let after_colon = scheme_len + 1;
    let slashes = before_at[after_colon..]
        .chars()
        .take_while(|&c| c == '/')
        .count();
    let start = after_colon + slashes;
    if slashes == 0 && !before_at[start..].contains(':') {
        // `app:pw@host`: no `user:` is left after the supposed scheme, so it was the user.
        return 0;
    }
    start
}

/// The URL as errors may show it: password masked, query string left out (its values
/// may hold secrets under names [`redact_url`] does not know, such as a misspelt
/// `password`).
pub fn shown_url(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    redact_url(base)
}

/// The length of the scheme name `text` starts with (a letter, then letters, digits,
/// `+`, `-` or `.`); 0 when it starts with none. The `:` after it is the caller's to
/// check.
pub(crate) fn scheme_name_len(text: &str) -> usize {
    text.char_indices()
        .take_while(|&(i, c)| {
            c.is_ascii_alphabetic() || (i > 0 && (c.is_ascii_alphanumeric() || "+.-".contains(c)))
        })
        .count()
}

fn redact_query_password(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = find_ignore_case(rest, "password=") {
        let value_start = i + "password=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let value_len = rest[value_start..]
            .find(|c: char| c == '&' || c == '#' || ends_token(c))
            .unwrap_or(rest.len() - value_start);
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `text` with every URL in it passed through [`redact_url`]: each run of characters
/// around an `@` (up to whitespace, quotes or brackets) and every `password=` value.
pub fn redact_secrets(text: &str) -> String {
    if !text.contains('@') && find_ignore_case(text, "password=").is_none() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut token_start = 0;
    for (i, c) in text.char_indices() {
        if ends_token(c) {
            out.push_str(&redact_url(&text[token_start..i]));
            out.push(c);
            token_start = i + c.len_utf8();
        }
    }
    out.push_str(&redact_url(&text[token_start..]));
    out
}

/// Describes a TOML error without quoting the document: the line and column, the key
/// on that line when there is one, and the parser's message with every quoted string
/// in it masked (a wrong-typed value may be a URL). `source` is the parsed text.
pub fn describe_toml_error(error: &toml::de::Error, source: Option<&str>) -> String {
    // The error without its document still names the key path (`in `storage.url``).
    let mut bare = error.clone();
    bare.set_input(None);
    let message = mask_quoted(bare.to_string().trim_end()).replace('\n', " ");
    let place = match (error.span(), source) {
        (Some(span), Some(source)) => {
            let offset = span.start.min(source.len());
            let before = &source[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let line_text = source.lines().nth(line - 1).unwrap_or("");
            match key_of(line_text) {
                Some(key) => format!("line {line}, column {column} (key `{key}`): "),
                None => format!("line {line}, column {column}: "),
            }
        }
        _ => String::new(),
    };
    redact_secrets(&format!("{place}{message}"))
}

/// The bare key a TOML line assigns, if it looks like `key = …`.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    bare.then_some(key)
}

/// Replaces the contents of every double-quoted string in `message` with `***`.
fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            if !inside {
                out.push_str("\"***\"");
            }
            inside = !inside;
        } else if c == '\\' && inside {
            chars.next();
        } else if !inside {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_everywhere_they_can_hide() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("postgres://app:p@ss@db/app"),
            "postgres://app:***@db/app"
        );
        assert_eq!(
            redact_url("postgres://db/app?user=a&password=x1"),
            "postgres://db/app?user=a&password=***"
        );
        assert_eq!(redact_url("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            redact_url("postgres:/app:s3cret@db/app"),
            "postgres:/app:***@db/app"
        );
        assert_eq!(
            redact_url("postgres:app:s3cret@db/app"),
            "postgres:app:***@db/app"
        );
        assert_eq!(redact_url("app:s3cret@db/app"), "app:***@db/app");
        assert_eq!(
            redact_url("postgres://app:pa/ss word@db"),
            "postgres://app:***@db"
        );
        assert_eq!(
            redact_url("postgres://db/app?PASSWORD=x1#f"),
            "postgres://db/app?PASSWORD=***#f"
        );
        assert_eq!(
            shown_url("postgres://app:s3cret@db/app?passwrd=x1"),
            "postgres://app:***@db/app"
        );
    }

    #[test]
    fn secrets_in_free_text_are_masked() {
        let text = "url \"postgres:/app:s3cret@db/x\" and 'mysql://u:s3cret@h' ?password=s3cret";
        let shown = redact_secrets(text);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres:/app:***@db/x"), "{shown}");
    }

    #[test]
    fn toml_errors_never_quote_the_document() {
        let source = "[storage]\nurl = \"postgres:/app:s3cret word@db/app\nx = 1\n";
        let e = source.parse::<toml::Table>().unwrap_err();
        let shown = describe_toml_error(&e, Some(source));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("line 2"), "{shown}");
    }
}
