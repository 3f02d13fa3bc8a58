//! Diagnostics: what policy validation tells the user, compiler style.

use std::fmt;
use std::path::PathBuf;

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
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
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
