//! How an Athena table of WAF logs is partitioned and named.

use serde::Deserialize;

/// How the table's S3 prefixes are partitioned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// AWS's current guidance: one `log_time` partition, `yyyy/MM/dd/HH/mm`, by projection.
    #[default]
    Projection,
    /// The older layout: `date` (`yyyy/MM/dd`) and `region` partitions.
    Date,
    /// No partitions: every query reads the whole location (small or test tables only).
    None,
}

/// Why a database or table name cannot go into SQL text unquoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error(
        "`{0}` is not a plain Athena name: a lower-case letter, then up to 254 lower-case letters, \
         digits and `_`"
    )]
    NotPlain(String),
    #[error("`{0}` is a reserved word in Athena SQL: choose another name, such as `{0}_logs`")]
    Reserved(String),
}

/// Athena's reserved words: those of its DDL (Hive) and of its `SELECT` statements (Trino), as the
/// Athena documentation lists them; a name that is one needs quoting, which the queries do not do.
const RESERVED: &[&str] = &[
    "all",
    "alter",
    "and",
    "array",
    "as",
    "authorization",
    "between",
    "bigint",
    "binary",
    "boolean",
    "both",
    "by",
    "case",
    "cashe",
    "cast",
    "char",
    "column",
    "commit",
    "conf",
    "constraint",
    "create",
    "cross",
    "cube",
    "current",
    "current_catalog",
    "current_date",
    "current_path",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "cursor",
    "database",
    "date",
    "dayofweek",
    "deallocate",
    "decimal",
    "delete",
    "describe",
    "distinct",
    "div",
    "double",
    "drop",
    "else",
    "end",
    "escape",
    "except",
    "exchange",
    "execute",
    "exists",
    "extended",
    "external",
    "extract",
    "false",
    "fetch",
    "float",
    "floor",
    "following",
    "for",
    "foreign",
    "from",
    "full",
    "function",
    "grant",
    "group",
    "grouping",
    "having",
    "if",
    "import",
    "in",
    "inner",
    "insert",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "join",
    "json_array",
    "json_exists",
    "json_object",
    "json_query",
    "json_table",
    "json_value",
    "lateral",
    "left",
    "less",
    "like",
    "listagg",
    "local",
    "localtime",
    "localtimestamp",
    "macro",
    "map",
    "more",
    "natural",
    "none",
    "normalize",
    "not",
    "null",
    "numeric",
    "of",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "over",
    "partialscan",
    "partition",
    "percent",
    "preceding",
    "precision",
    "prepare",
    "preserve",
    "primary",
    "procedure",
    "range",
    "reads",
    "recursive",
    "reduce",
    "references",
    "regexp",
    "revoke",
    "right",
    "rlike",
    "rollback",
    "rollup",
    "row",
    "rows",
    "select",
    "set",
    "skip",
    "smallint",
    "start",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "transform",
    "trigger",
    "trim",
    "true",
    "truncate",
    "uescape",
    "unbounded",
    "union",
    "uniquejoin",
    "unnest",
    "update",
    "user",
    "using",
    "utc_timestamp",
    "values",
    "varchar",
    "views",
    "when",
    "where",
    "window",
    "with",
];

/// Checks one database or table name (no `database.` part): the queries and the DDL write names
/// unquoted, so only plain identifiers that are not reserved words are accepted.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(NameError::Empty);
    };
    let plain = first.is_ascii_lowercase()
        && name.len() <= 255
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        return Err(NameError::NotPlain(name.to_owned()));
    }
    if RESERVED.contains(&name) {
        return Err(NameError::Reserved(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_not_reserved() {
        for ok in ["waf_logs", "shop_logs_2026", "w"] {
            assert_eq!(super::check_name(ok), Ok(()), "{ok}");
        }
        let err = |name: &str| super::check_name(name).unwrap_err().to_string();
        assert_eq!(err(""), "is empty");
        for bad in [
            "WafLogs",
            "_logs",
            "1logs",
            "waf-logs",
            "x; DROP",
            "a.b",
            &"a".repeat(256),
        ] {
            assert!(err(bad).contains("is not a plain Athena name"), "{bad}");
        }
        for word in ["select", "table", "timestamp", "partition", "unnest"] {
            assert_eq!(
                err(word),
                format!(
                    "`{word}` is a reserved word in Athena SQL: choose another name, such as `{word}_logs`"
                )
            );
        }
        assert!(RESERVED.is_sorted(), "kept sorted for review");
    }
}
