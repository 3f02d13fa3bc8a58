//! Diagnostics: what validation of a policy, the configuration or the ledger tells the user,
//! compiler style, every mistake at once.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::util::text::line_column;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The policies cannot be used until it is fixed.
    Error,
    /// The policies load, but something is probably not what the author meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding of validation, located in a file.
///
/// Displays as `policies/scan.toml:12:9: error: unknown condition `pth``, then, when there is one,
/// `  help: did you mean `path`?` on the next line. Problems with a whole file (it cannot be read)
/// have line 0 and show no position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the diagnostic is about the whole file.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span` of `text`, the contents of `file`.
    pub fn error(file: &Path, text: &str, span: Range<usize>, message: String) -> Diagnostic {
        let (line, column) = line_column(text, span.start);
        Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            line,
            column,
            message,
            help: None,
        }
    }

    pub fn with_help(self, help: Option<String>) -> Diagnostic {
        Diagnostic { help, ..self }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Every diagnostic of one input (a file or a directory of policies), reported together: the
/// command line prints each of them, then this as the error (`2 errors in configuration ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error{} in {what} `{}`", self.errors(), if self.errors() == 1 { "" } else { "s" }, path.display())]
pub struct Diagnostics {
    /// `policies`, `configuration`, `ledger`.
    pub what: &'static str,
    pub path: PathBuf,
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn errors(&self) -> usize {
        self.list.iter().filter(|d| d.is_error()).count()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {}: {}", self.severity, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_position_severity_and_help() {
        let mut d = Diagnostic {
            severity: Severity::Error,
            file: PathBuf::from("policies/scan.toml"),
            line: 12,
            column: 9,
            message: "unknown condition `pth`".into(),
            help: Some("did you mean `path`?".into()),
        };
        assert_eq!(
            d.to_string(),
            "policies/scan.toml:12:9: error: unknown condition `pth`\n  help: did you mean `path`?"
        );
        d.severity = Severity::Warning;
        d.line = 0;
        d.help = None;
        assert_eq!(
            d.to_string(),
            "policies/scan.toml: warning: unknown condition `pth`"
        );
        assert!(!d.is_error());
    }
}
