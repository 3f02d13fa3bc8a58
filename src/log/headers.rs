//! Request headers as the scan reads them.
//!
//! A real record carries 10 to 30 headers (cookies, client hints), yet analysis reads two of them for
//! every request: `User-Agent` and `Host`. The scan's parser picks those two out in one pass and skips
//! the other values. When a policy matches on another header, the scan parses records with the full
//! model instead ([`crate::log::LogRecord::view`]), which keeps every header.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::json::{Borrowed, Str};
use super::record::Header;

/// Fields open to the `log` module, which packs and unpacks them ([`super::packed`]).
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    pub(super) user_agent: Option<Str<'a>>,
    pub(super) host: Option<Str<'a>>,
    /// Every header, when the record was parsed with the full model; `None` when only the two above
    /// were picked.
    pub(super) all: Option<Vec<Header<'a>>>,
}

impl<'a> Headers<'a> {
    pub fn from_list(list: Vec<Header<'a>>) -> Headers<'a> {
        let find = |name: &str| {
            list.iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.clone().unwrap_or(Cow::Borrowed("")))
        };
        Headers {
            user_agent: find("user-agent"),
            host: find("host"),
            all: Some(list),
        }
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether headers other than `User-Agent` and `Host` were kept.
    pub fn is_complete(&self) -> bool {
        self.all.is_some()
    }

    /// The first header of that name (case-insensitive, as HTTP header names are); a header with no
    /// value reads as empty. Other headers than `User-Agent` and `Host` are only known when
    /// [`Headers::is_complete`].
    pub fn get(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("user-agent") {
            return self.user_agent();
        }
        if name.eq_ignore_ascii_case("host") {
            return self.host();
        }
        debug_assert!(
            self.is_complete(),
            "header `{name}` asked of picked headers"
        );
        self.all
            .as_deref()?
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_deref().unwrap_or(""))
    }
}

/// Equal when the headers both hold agree (the picked two always; all of them when both kept all).
impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.user_agent == other.user_agent
            && self.host == other.host
            && (self.all.is_none() || other.all.is_none() || self.all == other.all)
    }
}

impl Eq for Headers<'_> {}

impl<'de: 'a, 'a> Deserialize<'de> for Headers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Picked::deserialize(d).map(Picked::into_headers)
    }
}

/// The two headers read for every request, as a header list is read (here, and by the scan's fast
/// path in [`super::fast`]).
#[derive(Default)]
pub(super) struct Picked<'a> {
    user_agent: Option<Str<'a>>,
    host: Option<Str<'a>>,
}

impl<'a> Picked<'a> {
    /// Keeps the first `User-Agent` and the first `Host`; a header without a value reads as empty.
    pub(super) fn add(&mut self, name: Wanted, value: Option<Str<'a>>) {
        let slot = match name {
            Wanted::UserAgent => &mut self.user_agent,
            Wanted::Host => &mut self.host,
            Wanted::No => return,
        };
        if slot.is_none() {
            *slot = Some(value.unwrap_or(Cow::Borrowed("")));
        }
    }

    pub(super) fn into_headers(self) -> Headers<'a> {
        Headers {
            user_agent: self.user_agent,
            host: self.host,
            all: None,
        }
    }
}

impl<'de> Deserialize<'de> for Picked<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Picked<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of {name, value} headers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Picked<'de>, A::Error> {
                let mut picked = Picked::default();
                while let Some(h) = seq.next_element::<OneHeader<'de>>()? {
                    picked.add(h.kind, h.value);
                }
                Ok(picked)
            }
        }
        d.deserialize_seq(List)
    }
}

/// Whether a header is one the scan reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Wanted {
    UserAgent,
    Host,
    No,
}

impl Wanted {
    pub(super) fn of(name: &str) -> Wanted {
        if name.eq_ignore_ascii_case("user-agent") {
            Wanted::UserAgent
        } else if name.eq_ignore_ascii_case("host") {
            Wanted::Host
        } else {
            Wanted::No
        }
    }
}

/// A header name classified straight from the parser's buffer: names are compared, never kept.
impl<'de> Deserialize<'de> for Wanted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Wanted;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Wanted, E> {
                Ok(Wanted::of(v))
            }
        }
        d.deserialize_str(Name)
    }
}

/// One `{name, value}` object, whose value is only parsed when the header is wanted.
struct OneHeader<'a> {
    kind: Wanted,
    value: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Name,
    Value,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for OneHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = OneHeader<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a {name, value} header")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OneHeader<'de>, A::Error> {
                let mut kind = None;
                let mut value = None;
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Name => kind = Some(map.next_value::<Wanted>()?),
                        // The name comes first in WAF logs, so most values are skipped unparsed.
                        Field::Value if kind == Some(Wanted::No) => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        Field::Value => {
                            value = map.next_value::<Option<Borrowed<'de>>>()?.map(|v| v.0);
                        }
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let kind = kind.ok_or_else(|| de::Error::missing_field("name"))?;
                Ok(OneHeader { kind, value })
            }
        }
        d.deserialize_map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_user_agent_and_host_like_the_full_model() {
        let json = r#"[{"name":"Host","value":"shop.example"},{"name":"cookie","value":"a=\"b\""},
            {"value":"ua/1","name":"USER-AGENT"},{"name":"user-agent","value":"second"},{"name":"X-Empty"}]"#;
        let h: Headers = sonic_rs::from_str(json).unwrap();
        assert_eq!(h.user_agent(), Some("ua/1"));
        assert_eq!(h.host(), Some("shop.example"));
        assert!(!h.is_complete());
        let list: Vec<Header> = sonic_rs::from_str(json).unwrap();
        let full = Headers::from_list(list);
        assert_eq!(full, h);
        assert_eq!(full.get("Cookie"), Some("a=\"b\""));
        assert_eq!(full.get("x-empty"), Some(""));
        assert_eq!(full.get("missing"), None);
    }

    #[test]
    fn a_header_without_a_name_is_an_error() {
        let e = sonic_rs::from_str::<Headers>(r#"[{"value":"x"}]"#).unwrap_err();
        assert!(e.to_string().contains("missing field `name`"), "{e}");
    }
}
