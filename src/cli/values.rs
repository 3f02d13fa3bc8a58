//! The library's choice enums as command-line values. The library stays free of clap; their
//! names and help lines live here.

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::model::athena::Layout;
use crate::render::Format;

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Format::Table, Format::Json, Format::Markdown]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Format::Table => PossibleValue::new("table").help("Tables for a terminal"),
            Format::Json => PossibleValue::new("json").help("The documented JSON schema"),
            Format::Markdown => PossibleValue::new("markdown")
                .help("GitHub-flavoured markdown, for a pull request or a step summary"),
        })
    }
}

impl ValueEnum for Layout {
    fn value_variants<'a>() -> &'a [Self] {
        &[Layout::Projection, Layout::Date, Layout::None]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Layout::Projection => PossibleValue::new("projection").help(
                "AWS's current guidance: one `log_time` partition, `yyyy/MM/dd/HH/mm`, by projection",
            ),
            Layout::Date => PossibleValue::new("date")
                .help("The older layout: `date` (`yyyy/MM/dd`) and `region` partitions"),
            Layout::None => PossibleValue::new("none").help(
                "No partitions: every query reads the whole location (small or test tables only)",
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has a value, and each value parses back to its variant.
    #[test]
    fn values_round_trip() {
        for f in Format::value_variants() {
            let name = f.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(Format::from_str(&name, false).as_ref(), Ok(f));
        }
        for l in Layout::value_variants() {
            let name = l.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(Layout::from_str(&name, false).as_ref(), Ok(l));
        }
    }
}
