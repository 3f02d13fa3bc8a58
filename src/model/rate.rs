//! Rate-based rules as written: the evaluation window, the scope a rule counts (`overseas`,
//! `path:/login`, ...) and its WAF scope-down statements, and how a recommended limit is derived.

use crate::model::waf::ScopeDown;

/// A sliding window: the ones AWS rate-based rules evaluate (`EvaluationWindowSec` 60, 120, 300, 600),
/// so a threshold can be turned into a rate rule without changing its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Window {
    M1,
    M2,
    M5,
    M10,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::M1, Window::M2, Window::M5, Window::M10];

    /// `1m`, `2m`, `5m` or `10m`.
    pub fn parse(text: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::M1 => "1m",
            Window::M2 => "2m",
            Window::M5 => "5m",
            Window::M10 => "10m",
        }
    }

    pub fn minutes(self) -> u32 {
        match self {
            Window::M1 => 1,
            Window::M2 => 2,
            Window::M5 => 5,
            Window::M10 => 10,
        }
    }

    /// The position of this window's peak in `policy::KeyCounts::peaks`.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateError {
    #[error(
        "unknown scope `{0}`; expected `all`, `overseas`, `country:CC,..`, `not-country:CC,..`, `path:/PREFIX`, `method:VERB`, `label:LABEL` or `not-label:LABEL`"
    )]
    UnknownScope(String),
    #[error("country `{0}` is not an ISO 3166 alpha-2 code (two letters, like `JP`)")]
    BadCountry(String),
    #[error("scope `{0}` needs a value after the colon")]
    EmptyScope(String),
    #[error("scope `overseas` needs a home country (`--home-country`)")]
    OverseasWithoutHome,
    #[error("path prefix `{prefix}` is not usable: {reason}")]
    BadPath { prefix: String, reason: String },
    #[error("limit `{0}` is below WAF's minimum of 10")]
    LimitTooLow(u64),
    #[error("headroom `{0}` must be at least 1")]
    BadHeadroom(f64),
    #[error("percentile `{0}` must be between 50 and 100")]
    BadPercentile(f64),
    #[error(
        "label pattern `{0}`: WAF matches a whole label or a namespace; write `NAMESPACE:*` (ending in `:*`) or a full label"
    )]
    LabelPattern(String),
}

/// `5m` or WAF's `300` (seconds).
pub fn parse_window(text: &str) -> Result<Window, String> {
    Window::parse(text)
        .or_else(|| {
            Window::ALL
                .into_iter()
                .find(|w| (w.minutes() * 60).to_string() == text)
        })
        .ok_or_else(|| format!("`{text}` is not a WAF window; use 1m, 2m, 5m or 10m"))
}

/// The scope-down statements of a rule counting `scopes` (all of them), as WAF evaluates them.
///
/// `overseas` becomes "not from the home country", which in WAF also takes requests of unknown
/// origin; the local count leaves those out (see docs/rate.md).
pub fn scope_down(
    scopes: &[Scope],
    home_country: Option<&str>,
) -> Result<Vec<ScopeDown>, RateError> {
    let label = |l: &str, negate: bool| match l.strip_suffix('*') {
        None => Ok(ScopeDown::Label {
            key: l.to_owned(),
            namespace: false,
            negate,
        }),
        Some(ns) if ns.ends_with(':') => Ok(ScopeDown::Label {
            key: ns.to_owned(),
            namespace: true,
            negate,
        }),
        Some(_) => Err(RateError::LabelPattern(l.to_owned())),
    };
    scopes
        .iter()
        .filter_map(|s| {
            Some(match s {
                Scope::All => return None,
                Scope::Overseas => home_country
                    .ok_or(RateError::OverseasWithoutHome)
                    .map(|home| ScopeDown::Country {
                        countries: vec![home.to_ascii_uppercase()],
                        negate: true,
                    }),
                Scope::Country { countries, negate } => Ok(ScopeDown::Country {
                    countries: countries.clone(),
                    negate: *negate,
                }),
                Scope::PathPrefix(p) => Ok(ScopeDown::PathPrefix(p.clone())),
                Scope::Method(m) => Ok(ScopeDown::Method(m.clone())),
                Scope::Label(l) => label(l, false),
                Scope::NotLabel(l) => label(l, true),
            })
        })
        .collect()
}

/// Which requests a rate-based rule counts: its scope-down statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every request.
    All,
    /// Requests from a known country other than the home country.
    Overseas,
    /// Requests from one of these countries (`country:CN,RU`), or with `negate` from none of them
    /// (`not-country:JP`, which like WAF also takes requests of unknown origin).
    Country {
        countries: Vec<String>,
        negate: bool,
    },
    /// Requests whose path starts with this prefix.
    PathPrefix(String),
    /// Requests with this method (upper case).
    Method(String),
    /// Requests carrying a label (a trailing `*` makes it a prefix).
    Label(String),
    /// Requests without that label: `not-label:awswaf:managed:aws:bot-control:bot:verified` keeps
    /// verified crawlers out of a rule.
    NotLabel(String),
}

impl Scope {
    /// `all`, `overseas`, `country:CN,RU`, `not-country:JP`, `path:/login`, `method:POST`,
    /// `label:awswaf:...` or `not-label:awswaf:...`.
    pub fn parse(text: &str) -> Result<Scope, RateError> {
        let value = |v: &str| {
            if v.is_empty() {
                Err(RateError::EmptyScope(text.to_owned()))
            } else {
                Ok(v.to_owned())
            }
        };
        match text.split_once(':') {
            None if text == "all" => Ok(Scope::All),
            None if text == "overseas" => Ok(Scope::Overseas),
            Some((kind @ ("country" | "not-country"), v)) => {
                let countries = value(v)?
                    .split(',')
                    .map(|c| {
                        let c = c.trim().to_ascii_uppercase();
                        if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase()) {
                            Ok(c)
                        } else {
                            Err(RateError::BadCountry(c))
                        }
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Scope::Country {
                    countries,
                    negate: kind == "not-country",
                })
            }
            Some(("path", v)) => Ok(Scope::PathPrefix(value(v)?)),
            Some(("method", v)) => Ok(Scope::Method(value(v)?.to_ascii_uppercase())),
            Some(("label", v)) => Ok(Scope::Label(value(v)?)),
            Some(("not-label", v)) => Ok(Scope::NotLabel(value(v)?)),
            _ => Err(RateError::UnknownScope(text.to_owned())),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::Overseas => f.write_str("overseas"),
            Scope::Country { countries, negate } => write!(
                f,
                "{}country:{}",
                if *negate { "not-" } else { "" },
                countries.join(",")
            ),
            Scope::PathPrefix(p) => write!(f, "path:{p}"),
            Scope::Method(m) => write!(f, "method:{m}"),
            Scope::Label(l) => write!(f, "label:{l}"),
            Scope::NotLabel(l) => write!(f, "not-label:{l}"),
        }
    }
}

/// How a limit is derived from the distribution of per-client peaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Method {
    /// The percentile taken as the busiest ordinary client (see `docs/rate.md` for why not p99.9).
    pub percentile: f64,
    /// The limit is this many times that client's peak.
    pub headroom: f64,
}

impl Method {
    pub fn new(percentile: f64, headroom: f64) -> Result<Method, RateError> {
        if !(50.0..=100.0).contains(&percentile) {
            return Err(RateError::BadPercentile(percentile));
        }
        if !(headroom >= 1.0 && headroom.is_finite()) {
            return Err(RateError::BadHeadroom(headroom));
        }
        Ok(Method {
            percentile,
            headroom,
        })
    }
}

impl Default for Method {
    fn default() -> Method {
        Method {
            percentile: 95.0,
            headroom: 3.0,
        }
    }
}
