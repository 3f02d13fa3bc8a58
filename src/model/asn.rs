//! Autonomous System Numbers as waftune writes them (`AS13335`) and WAF takes them (numbers).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// WAF's limit on ASNs in one `AsnMatchStatement`.
pub const MAX_ASNS_PER_STATEMENT: usize = 100;

/// An ASN waftune may block: 1 to 4294967295. WAF also matches ASN 0 ("no ASN known for the
/// address"), which waftune never writes: blocking it would block every unmapped address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asn(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsnError {
    #[error("`{0}` is not an ASN: write `AS13335` or `13335`")]
    Syntax(String),
    #[error(
        "ASN `{0}` is out of range: ASNs run from 1 to 4294967295 (0 means \"unknown\" to WAF)"
    )]
    Range(String),
}

impl Asn {
    pub fn new(number: u32) -> Result<Asn, AsnError> {
        if number == 0 {
            return Err(AsnError::Range(number.to_string()));
        }
        Ok(Asn(number))
    }

    pub fn number(self) -> u32 {
        self.0
    }

    /// Whether `text` is meant as an ASN rather than an address (`AS...` or digits only), so a
    /// command taking either can say what is wrong with it.
    pub fn looks_like(text: &str) -> bool {
        let t = text.trim();
        t.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AS"))
            || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl FromStr for Asn {
    type Err = AsnError;

    fn from_str(text: &str) -> Result<Asn, AsnError> {
        let t = text.trim();
        let digits = match t.get(..2) {
            Some(p) if p.eq_ignore_ascii_case("AS") => &t[2..],
            _ => t,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AsnError::Syntax(text.to_owned()));
        }
        let number: u32 = digits
            .parse()
            .map_err(|_| AsnError::Range(text.to_owned()))?;
        Asn::new(number).map_err(|_| AsnError::Range(text.to_owned()))
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AS{}", self.0)
    }
}

impl Serialize for Asn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `"AS13335"`, `"13335"` or `13335`.
impl<'de> Deserialize<'de> for Asn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Asn, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Number(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings_and_names_bad_values() {
        assert_eq!("AS13335".parse::<Asn>().unwrap().number(), 13335);
        assert_eq!("as64496".parse::<Asn>().unwrap().to_string(), "AS64496");
        assert_eq!("4294967295".parse::<Asn>().unwrap().number(), u32::MAX);
        for (text, message) in [
            (
                "AS0",
                "ASN `AS0` is out of range: ASNs run from 1 to 4294967295 (0 means \"unknown\" to WAF)",
            ),
            ("4294967296", "ASN `4294967296` is out of range"),
            ("AS-5", "`AS-5` is not an ASN: write `AS13335` or `13335`"),
            ("ASN13335", "`ASN13335` is not an ASN"),
            ("", "`` is not an ASN"),
        ] {
            let e = text.parse::<Asn>().unwrap_err().to_string();
            assert!(e.starts_with(message), "{text}: {e}");
        }
    }

    #[test]
    fn tells_asns_from_addresses() {
        for asn in ["AS13335", "as1", "13335", "ASx"] {
            assert!(Asn::looks_like(asn), "{asn}");
        }
        for net in ["192.0.2.1", "2001:db8::/64", "10.0.0.0/8"] {
            assert!(!Asn::looks_like(net), "{net}");
        }
    }

    #[test]
    fn reads_numbers_and_text_writes_text() {
        #[derive(Deserialize, Serialize)]
        struct Row {
            asn: Asn,
        }
        let a: Row = toml::from_str("asn = 13335").unwrap();
        let b: Row = toml::from_str("asn = \"AS13335\"").unwrap();
        assert_eq!(a.asn, b.asn);
        assert_eq!(toml::to_string(&a).unwrap(), "asn = \"AS13335\"\n");
        let e = toml::from_str::<Row>("asn = 0").err().unwrap().to_string();
        assert!(e.contains("ASN `0` is out of range"), "{e}");
    }
}
