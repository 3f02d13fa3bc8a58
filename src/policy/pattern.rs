//! Text patterns: globs, and regexes restricted to what Rust and Athena (Trino) agree on.
//!
//! Every text condition compiles to a single [`regex::Regex`], so a match in the scan's hot loop is
//! one call without allocation, and the same expression can later be handed to Athena as
//! `regexp_like(field, '...')`. That second use is why regexes are limited to a portable subset:
//! Trino uses Java's engine, and a policy must select the same requests in both places. Globs are
//! translated here (not by `globset`) so that their regex form stays inside that subset too.

use regex::Regex;

/// Why a pattern was refused. The messages are completed by the caller with the pattern itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("{reason}")]
    Syntax { reason: String },
    #[error("{construct} is not supported: {why}")]
    NotPortable {
        construct: &'static str,
        why: &'static str,
    },
    #[error("unclosed `[` in glob")]
    UnclosedClass,
    #[error("unclosed `{{` in glob")]
    UnclosedBraces,
    #[error("`{{` cannot be nested in a glob")]
    NestedBraces,
}

impl PatternError {
    /// A suggestion for the user, where one exists.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            PatternError::NotPortable { .. } => Some(
                "policies use the regex subset shared by Rust's `regex` crate and Athena (Java); see docs/policies.md",
            ),
            PatternError::UnclosedClass => Some("write `\\[` for a literal `[`"),
            PatternError::UnclosedBraces | PatternError::NestedBraces => {
                Some("`{a,b}` matches `a` or `b`; write `\\{` for a literal `{`")
            }
            PatternError::Syntax { .. } => None,
        }
    }
}

/// Translates a glob into an anchored regex.
///
/// `*` matches any run of characters and `?` one character, except `separator` when given (`/` for
/// paths, so that `/api/*/login` matches one path segment); `**` matches across separators and
/// `**/` also matches nothing (`/**/login` matches `/login`); `[abc]`, `[a-z]`, `[!abc]` are
/// character classes; `{a,b}` alternatives; `\x` is a literal `x`.
pub fn glob_to_regex(glob: &str, separator: Option<char>) -> Result<String, PatternError> {
    let mut out = String::from("^");
    translate(glob, separator, &mut out, false)?;
    out.push('$');
    Ok(out)
}

fn translate(
    glob: &str,
    separator: Option<char>,
    out: &mut String,
    in_braces: bool,
) -> Result<(), PatternError> {
    let any = separator.map_or_else(|| ".".to_owned(), |s| format!("[^{}]", escape_char(s)));
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                let start = i;
                while chars.get(i + 1) == Some(&'*') {
                    i += 1;
                }
                if i == start {
                    out.push_str(&any);
                    out.push('*');
                } else if separator.is_some_and(|s| chars.get(i + 1) == Some(&s)) {
                    // `**/`: any number of whole segments, including none.
                    i += 1;
                    out.push_str("(?:.*");
                    out.push_str(&escape_char(chars[i]));
                    out.push_str(")?");
                } else {
                    out.push_str(".*");
                }
            }
            '?' => out.push_str(&any),
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(c) => out.push_str(&escape_char(*c)),
                    None => out.push_str(&escape_char('\\')),
                }
            }
            '[' => {
                let close = class_end(&chars, i).ok_or(PatternError::UnclosedClass)?;
                out.push('[');
                let mut j = i + 1;
                if matches!(chars[j], '!' | '^') {
                    out.push('^');
                    j += 1;
                }
                for (k, c) in chars.iter().enumerate().take(close).skip(j) {
                    // A `-` between two characters is a range; anywhere else it is literal.
                    if *c == '-' && k > j && k + 1 < close {
                        out.push('-');
                    } else {
                        out.push_str(&escape_char(*c));
                    }
                }
                out.push(']');
                i = close;
            }
            '{' => {
                if in_braces {
                    return Err(PatternError::NestedBraces);
                }
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == '}')
                    .map(|p| p + i)
                    .ok_or(PatternError::UnclosedBraces)?;
                let inner: String = chars[i + 1..close].iter().collect();
                out.push_str("(?:");
                for (n, alternative) in inner.split(',').enumerate() {
                    if n > 0 {
                        out.push('|');
                    }
                    translate(alternative, separator, out, true)?;
                }
                out.push(')');
                i = close;
            }
            c => out.push_str(&escape_char(c)),
        }
        i += 1;
    }
    Ok(())
}

/// The index of the `]` closing the class opened at `open`; a `]` right after `[` or `[!` is literal.
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut j = open + 1;
    if matches!(chars.get(j), Some('!' | '^')) {
        j += 1;
    }
    if chars.get(j) == Some(&']') {
        j += 1;
    }
    chars[j.min(chars.len())..]
        .iter()
        .position(|c| *c == ']')
        .map(|p| p + j)
}

fn escape_char(c: char) -> String {
    regex::escape(c.encode_utf8(&mut [0; 4]))
}

/// An anchored regex matching exactly `text`.
pub fn equals_to_regex(text: &str) -> String {
    format!("^{}$", regex::escape(text))
}

/// An anchored regex matching every string that starts with `text`.
pub fn prefix_to_regex(text: &str) -> String {
    format!("^{}", regex::escape(text))
}

/// Checks a user-written regex: valid for Rust and inside the portable subset.
pub fn check_regex(pattern: &str) -> Result<(), PatternError> {
    check_portable(pattern)?;
    Regex::new(pattern).map(drop).map_err(|e| syntax(&e))
}

/// Compiles alternatives (each already a valid regex) into one regex, case-insensitive if asked.
pub fn compile(alternatives: &[String], ignore_case: bool) -> Result<Regex, PatternError> {
    let mut source = String::from(if ignore_case { "(?i)" } else { "" });
    for (i, alternative) in alternatives.iter().enumerate() {
        if i > 0 {
            source.push('|');
        }
        source.push_str("(?:");
        source.push_str(alternative);
        source.push(')');
    }
    Regex::new(&source).map_err(|e| syntax(&e))
}

/// The last line of the regex crate's message (`error: unclosed group`), without the diagram.
fn syntax(e: &regex::Error) -> PatternError {
    let full = e.to_string();
    let reason = full
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(full.trim())
        .to_owned();
    PatternError::Syntax { reason }
}

/// Refuses constructs that Rust rejects with a less helpful message, or that Java reads differently.
fn check_portable(pattern: &str) -> Result<(), PatternError> {
    let not_portable = |construct, why| Err(PatternError::NotPortable { construct, why });
    let b = pattern.as_bytes();
    let mut class_depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        match b[i] {
            b'\\' => {
                match rest.get(1) {
                    Some(b'1'..=b'9') => {
                        return not_portable(
                            "a backreference (`\\1`)",
                            "Rust's regex engine has none",
                        );
                    }
                    Some(b'k') if rest.get(2) == Some(&b'<') => {
                        return not_portable(
                            "a named backreference (`\\k<...>`)",
                            "Rust's regex engine has none",
                        );
                    }
                    Some(b'<' | b'>') => {
                        return not_portable(
                            "a word-start or word-end assertion (`\\<`, `\\>`)",
                            "Athena (Java) has no such assertion; use `\\b`",
                        );
                    }
                    Some(b'b' | b'B') if rest.get(2) == Some(&b'{') => {
                        return not_portable(
                            "a special word boundary (`\\b{...}`)",
                            "Athena (Java) has none; use `\\b`",
                        );
                    }
                    _ => {}
                }
                i += 2;
                continue;
            }
            b'[' => {
                if class_depth > 0 && rest.get(1) == Some(&b':') {
                    return not_portable(
                        "a POSIX class (`[[:alpha:]]`)",
                        "Athena (Java) reads it differently; use `[a-zA-Z]` or `\\p{Alpha}`",
                    );
                }
                class_depth += 1;
                i += 1;
                // A `]` first in a class (after an optional `^`) is a literal.
                if b.get(i) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i) == Some(&b']') {
                    i += 1;
                }
                continue;
            }
            b']' if class_depth > 0 => class_depth -= 1,
            b'&' | b'-' | b'~' if class_depth > 0 && rest.get(1) == Some(&b[i]) => {
                return not_portable(
                    "a class set operation (`&&`, `--`, `~~`)",
                    "Rust and Athena (Java) read it differently",
                );
            }
            b'(' if class_depth == 0 && rest.get(1) == Some(&b'?') => {
                let group = &rest[2..];
                if group.starts_with(b"=")
                    || group.starts_with(b"!")
                    || group.starts_with(b"<=")
                    || group.starts_with(b"<!")
                {
                    return not_portable(
                        "look-around (`(?=`, `(?!`, `(?<=`, `(?<!`)",
                        "Rust's regex engine has none",
                    );
                }
                if group.starts_with(b"P<") {
                    return not_portable(
                        "a `(?P<name>...)` group",
                        "Athena (Java) only knows `(?<name>...)`",
                    );
                }
                if !group.starts_with(b"<") {
                    let flags = group
                        .iter()
                        .take_while(|c| !matches!(c, b':' | b')'))
                        .copied();
                    for flag in flags {
                        if !matches!(flag, b'i' | b'm' | b's' | b'x' | b'-') {
                            return not_portable(
                                "an inline flag other than `i`, `m`, `s`, `x`",
                                "Athena (Java) reads `U`, `u` and `R` differently or not at all",
                            );
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_matches(glob: &str, sep: Option<char>, text: &str) -> bool {
        Regex::new(&glob_to_regex(glob, sep).unwrap())
            .unwrap()
            .is_match(text)
    }

    #[test]
    fn globs_translate_with_and_without_separator() {
        let path = Some('/');
        assert!(glob_matches("/api/*/login", path, "/api/v1/login"));
        assert!(!glob_matches("/api/*/login", path, "/api/v1/x/login"));
        assert!(glob_matches("/api/*/login", None, "/api/v1/x/login"));
        assert!(glob_matches("/**/login", path, "/login"));
        assert!(glob_matches("/**/login", path, "/a/b/login"));
        assert!(!glob_matches("/**/login", path, "/a/blogin"));
        assert!(glob_matches("/static/**", path, "/static/a/b.css"));
        assert!(glob_matches("/**/*.php", path, "/x.php"));
        assert!(glob_matches("/**/*.php", path, "/a/b/x.php"));
        assert!(!glob_matches("/**/*.php", path, "/a/b/x.php5"));
        assert!(glob_matches("/file?.txt", path, "/file1.txt"));
        assert!(!glob_matches("/file?.txt", path, "/file/.txt"));
        assert!(glob_matches("/v[0-9]/x", path, "/v2/x"));
        assert!(!glob_matches("/v[!0-9]/x", path, "/v2/x"));
        assert!(glob_matches("/[]]", path, "/]"));
        assert!(glob_matches("/{login,signin}{,.php}", path, "/signin.php"));
        assert!(glob_matches("/{login,signin}{,.php}", path, "/login"));
        assert!(!glob_matches("/{login,signin}", path, "/logout"));
        // Regex metacharacters are literal in globs.
        assert!(glob_matches("/a.b+(c)", path, "/a.b+(c)"));
        assert!(!glob_matches("/a.b", path, "/axb"));
        assert!(glob_matches("/a\\*b", path, "/a*b"));
        assert!(!glob_matches("/a\\*b", path, "/axb"));
        assert!(glob_matches(
            "AWS-*",
            None,
            "AWS-AWSManagedRulesCommonRuleSet"
        ));
    }

    #[test]
    fn bad_globs_are_refused() {
        assert_eq!(
            glob_to_regex("/a[b", None),
            Err(PatternError::UnclosedClass)
        );
        assert_eq!(
            glob_to_regex("/{a,b", None),
            Err(PatternError::UnclosedBraces)
        );
        assert_eq!(
            glob_to_regex("/{a,{b,c}}", None),
            Err(PatternError::NestedBraces)
        );
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(equals_to_regex("/a.b"), "^/a\\.b$");
        assert_eq!(prefix_to_regex("/.env"), "^/\\.env");
        let re = compile(&[prefix_to_regex("/.ENV")], true).unwrap();
        assert!(re.is_match("/.env.local"));
        assert!(!re.is_match("/x/.env"));
    }

    #[test]
    fn regexes_outside_the_portable_subset_are_refused() {
        let refused = |p: &str| check_regex(p).unwrap_err().to_string();
        assert_eq!(
            refused("foo(?=bar)"),
            "look-around (`(?=`, `(?!`, `(?<=`, `(?<!`) is not supported: Rust's regex engine has none"
        );
        assert!(refused("(?<!a)b").starts_with("look-around"));
        assert!(refused("(a)\\1").starts_with("a backreference"));
        assert!(refused("(?P<n>a)").starts_with("a `(?P<name>...)` group"));
        assert!(refused("\\<word\\>").starts_with("a word-start"));
        assert!(refused("[[:alpha:]]").starts_with("a POSIX class"));
        assert!(refused("[a-z&&[^aeiou]]").starts_with("a class set operation"));
        assert!(refused("(?U)a+").starts_with("an inline flag"));
        assert_eq!(refused("foo("), "unclosed group");
        // The common subset passes.
        for ok in [
            "(?i)^python-requests/",
            "(?<name>a)b",
            "(?i:bot|spider)",
            "[-a-z]",
            "[]a]",
            "a{2,3}\\.",
            "\\bbot\\b",
        ] {
            assert_eq!(check_regex(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn alternatives_compile_into_one_regex() {
        let re = compile(
            &[
                equals_to_regex("/login"),
                "(?i)curl".to_owned(),
                glob_to_regex("/api/*/login", Some('/')).unwrap(),
            ],
            false,
        )
        .unwrap();
        assert!(re.is_match("/login"));
        assert!(re.is_match("x CURL y"));
        assert!(re.is_match("/api/v2/login"));
        assert!(!re.is_match("/LOGIN"));
    }
}
