//! Request headers as the scan reads them.
//!
//! A real record carries 10 to 30 headers (cookies, client hints), yet analysis reads two of them for
//! every request: `User-Agent` and `Host`. Parsing picks those two out and skips the other values;
//! the array stays available as raw JSON for the rare policy that matches on another header.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::record::{Header, Str};

#[derive(Debug, Clone)]
enum Source<'a> {
    /// The JSON array as logged.
    Raw(Str<'a>),
    /// Already parsed (a view of the full model).
    Parsed(Vec<Header<'a>>),
}

#[derive(Debug, Clone)]
pub struct Headers<'a> {
    user_agent: Option<Str<'a>>,
    host: Option<Str<'a>>,
    source: Source<'a>,
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
            source: Source::Parsed(list),
        }
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Every header, in log order (parses the raw JSON again: for the rare caller).
    pub fn all(&self) -> Vec<Header<'_>> {
        match &self.source {
            Source::Parsed(list) => list
                .iter()
                .map(|h| Header {
                    name: Cow::Borrowed(&h.name),
                    value: h.value.as_deref().map(Cow::Borrowed),
                })
                .collect(),
            // The raw text was validated when it was picked, so it parses again.
            Source::Raw(raw) => sonic_rs::from_str(raw).unwrap_or_default(),
        }
    }

    /// The first header of that name (case-insensitive, as HTTP header names are); a header with no
    /// value reads as empty.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        if name.eq_ignore_ascii_case("user-agent") {
            return self.user_agent().map(Cow::Borrowed);
        }
        if name.eq_ignore_ascii_case("host") {
            return self.host().map(Cow::Borrowed);
        }
        self.all()
            .into_iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| Cow::Owned(h.value.map(Cow::into_owned).unwrap_or_default()))
    }
}

/// Equal when they hold the same headers, however they were obtained.
impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.user_agent == other.user_agent && self.host == other.host && self.all() == other.all()
    }
}

impl Eq for Headers<'_> {}

impl<'de: 'a, 'a> Deserialize<'de> for Headers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = sonic_rs::LazyValue::deserialize(d)?.as_raw_cow();
        let picked = match &raw {
            Cow::Borrowed(text) => sonic_rs::from_str::<Picked<'de>>(text),
            // Only when the input was not a borrowed buffer; the picked values are copied then.
            Cow::Owned(text) => sonic_rs::from_str::<Picked<'_>>(text).map(Picked::into_owned),
        }
        .map_err(|e| de::Error::custom(format!("in `headers`: {e}")))?;
        Ok(Headers {
            user_agent: picked.user_agent,
            host: picked.host,
            source: Source::Raw(raw),
        })
    }
}

/// The two headers read for every request.
#[derive(Default)]
struct Picked<'a> {
    user_agent: Option<Str<'a>>,
    host: Option<Str<'a>>,
}

impl Picked<'_> {
    fn into_owned(self) -> Picked<'static> {
        Picked {
            user_agent: self.user_agent.map(|v| Cow::Owned(v.into_owned())),
            host: self.host.map(|v| Cow::Owned(v.into_owned())),
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
                    let slot = match h.kind {
                        Wanted::UserAgent => &mut picked.user_agent,
                        Wanted::Host => &mut picked.host,
                        Wanted::No => continue,
                    };
                    if slot.is_none() {
                        *slot = Some(h.value.unwrap_or(Cow::Borrowed("")));
                    }
                }
                Ok(picked)
            }
        }
        d.deserialize_seq(List)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wanted {
    UserAgent,
    Host,
    No,
}

impl Wanted {
    fn of(name: &str) -> Wanted {
        if name.eq_ignore_ascii_case("user-agent") {
            Wanted::UserAgent
        } else if name.eq_ignore_ascii_case("host") {
            Wanted::Host
        } else {
            Wanted::No
        }
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
                        Field::Name => kind = Some(Wanted::of(&map.next_value::<Str<'de>>()?)),
                        // The name comes first in WAF logs, so most values are skipped unparsed.
                        Field::Value if kind == Some(Wanted::No) => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        Field::Value => value = map.next_value::<Option<Str<'de>>>()?,
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
    fn picks_user_agent_and_host_and_keeps_the_rest() {
        let json = r#"[{"name":"Host","value":"shop.example"},{"name":"cookie","value":"a=\"b\""},
            {"value":"ua/1","name":"USER-AGENT"},{"name":"user-agent","value":"second"},{"name":"X-Empty"}]"#;
        let h: Headers = sonic_rs::from_str(json).unwrap();
        assert_eq!(h.user_agent(), Some("ua/1"));
        assert_eq!(h.host(), Some("shop.example"));
        assert_eq!(h.get("Cookie").as_deref(), Some("a=\"b\""));
        assert_eq!(h.get("x-empty").as_deref(), Some(""));
        assert_eq!(h.get("missing"), None);
        assert_eq!(h.all().len(), 5);
        let list: Vec<Header> = sonic_rs::from_str(json).unwrap();
        assert_eq!(Headers::from_list(list), h);
    }

    #[test]
    fn a_header_without_a_name_is_an_error() {
        let e = sonic_rs::from_str::<Headers>(r#"[{"value":"x"}]"#).unwrap_err();
        assert!(e.to_string().contains("missing field `name`"), "{e}");
    }
}
