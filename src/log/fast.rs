//! The scan's fast path: a hand-written reader of one record straight into [`ScanRecord`].
//!
//! Going through serde costs a visitor call, a key match and a skip per JSON value; a WAF record has
//! about 150 of them (most in `headers`), which made parsing the bulk of a scan. This reader knows the
//! record's shape, reads the `{"name":…,"value":…}` headers as AWS writes them, and finds string ends
//! in bit maps of the line built in one vector pass (`Index`, in `log::index`).
//!
//! It is a fast path, never the judge: anything unusual (an escape in a kept string or in a key, a
//! duplicate known key, a number that is not a plain integer, a string timestamp, `}{` on one line,
//! a control character, nesting deeper than `MAX_DEPTH`) makes it give up, and the line goes
//! through the serde model, which decides and words any error. So a line is accepted or reported
//! exactly as before. Values it skips are still checked against the JSON grammar (escapes included)
//! and the whole line must be UTF-8, so it never accepts a line the serde path would reject; tests
//! pin this on every public sample, the bundled day, and every one-byte mutation of a record.

// The vector index pass uses `core::arch` intrinsics and unchecked loads; each block says why it is sound.
#![allow(unsafe_code)]

use std::borrow::Cow;

use super::headers::{Picked, Wanted};
pub use super::index::Index;
use super::json::{MAX_NESTING, timestamp_in_range};
use super::record::Label;
use super::view::{Labels, RequestView, RuleRef, ScanRecord};

/// Nesting beyond this is left to the serde path, which refuses lines nesting deeper than
/// [`MAX_NESTING`]: a value skipped at depth `d` opens level `d + 1`.
const MAX_DEPTH: u32 = MAX_NESTING as u32 - 1;

/// Gave up: the line goes through the serde model.
#[derive(Debug, PartialEq, Eq)]
pub struct GiveUp;

type R<T> = Result<T, GiveUp>;

/// Reads one line holding exactly one record. `index` is scratch space, reused from line to line.
pub fn scan_record<'a>(line: &'a [u8], index: &mut Index) -> R<ScanRecord<'a>> {
    let mut record = None;
    match next_record(line, index, |r| record = Some(r.clone())) {
        (len, true) if len == line.len() => record.ok_or(GiveUp),
        _ => Err(GiveUp),
    }
}

/// Reads the record on the first line of `data` and hands it to `read`: the line's length (up to
/// its newline or the end of `data`), and whether it was read (`false`: gave up, see [`GiveUp`]).
/// Finding the line's end is part of indexing it, so the caller needs no separate newline search.
/// The record is lent rather than returned: it is about 600 bytes, and moving it out through the
/// callers cost 3% of a scan in copies.
pub fn next_record<'a>(
    data: &'a [u8],
    index: &mut Index,
    read: impl FnOnce(&ScanRecord<'a>),
) -> (usize, bool) {
    // Control characters belong in no compact WAF record (not even as whitespace between tokens),
    // and the whole line must be UTF-8.
    let (len, text) = index.line_text(data);
    let Some(text) = text else {
        return (len, false);
    };
    let mut p = Parser {
        s: text,
        i: 0,
        index,
    };
    match p.whole_record() {
        Ok(record) => {
            read(&record);
            (len, true)
        }
        Err(GiveUp) => (len, false),
    }
}

/// The fields the reader keeps, across the objects of a record; a key's is given with the key
/// (see [`Key`]), so reading a field dispatches on it rather than comparing the key's text again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Timestamp,
    Action,
    TerminatingRuleId,
    TerminatingRuleType,
    HttpSourceName,
    ResponseCodeSent,
    Ja3Fingerprint,
    Ja4Fingerprint,
    ClientAsn,
    Labels,
    NonTerminatingMatchingRules,
    RuleGroupList,
    HttpRequest,
    ClientIp,
    Country,
    Headers,
    Uri,
    HttpMethod,
    Host,
    RuleId,
    Name,
    /// A key the reader skips.
    Other,
}

/// An object key as a literal `"key":`, padded to 32 bytes with a mask of its length, so testing for
/// it at the cursor is four word comparisons; and the field it holds in its object.
struct Key {
    name: &'static str,
    field: Field,
    len: usize,
    words: [u64; 4],
    mask: [u64; 4],
}

/// A key the reader skips.
const fn key(name: &'static str) -> Key {
    field(name, Field::Other)
}

const fn field(name: &'static str, field: Field) -> Key {
    let k = name.as_bytes();
    let len = k.len() + 3;
    assert!(len <= 32, "keys of at most 29 bytes");
    let (mut words, mut mask) = ([0u64; 4], [0u64; 4]);
    let mut i = 0;
    while i < len {
        let byte = match i {
            0 => b'"',
            _ if i == len - 2 => b'"',
            _ if i == len - 1 => b':',
            _ => k[i - 1],
        };
        words[i / 8] |= (byte as u64) << (8 * (i % 8));
        mask[i / 8] |= 0xff << (8 * (i % 8));
        i += 1;
    }
    Key {
        name,
        field,
        len,
        words,
        mask,
    }
}

/// The keys of a record, of `httpRequest`, of a rule group, of a rule and of a label, in the order
/// AWS writes them (optional ones included), each with its field. A key not listed is skipped.
const RECORD_KEYS: &[Key] = &[
    field("timestamp", Field::Timestamp),
    key("formatVersion"),
    key("webaclId"),
    field("terminatingRuleId", Field::TerminatingRuleId),
    field("terminatingRuleType", Field::TerminatingRuleType),
    field("action", Field::Action),
    key("terminatingRuleMatchDetails"),
    field("httpSourceName", Field::HttpSourceName),
    key("httpSourceId"),
    field("ruleGroupList", Field::RuleGroupList),
    key("rateBasedRuleList"),
    field(
        "nonTerminatingMatchingRules",
        Field::NonTerminatingMatchingRules,
    ),
    key("requestHeadersInserted"),
    field("responseCodeSent", Field::ResponseCodeSent),
    field("httpRequest", Field::HttpRequest),
    field("labels", Field::Labels),
    key("captchaResponse"),
    key("challengeResponse"),
    key("requestBodySize"),
    key("requestBodySizeInspectedByWAF"),
    field("ja3Fingerprint", Field::Ja3Fingerprint),
    field("ja4Fingerprint", Field::Ja4Fingerprint),
    field("clientAsn", Field::ClientAsn),
    // The 2018 preview-era name of `nonTerminatingMatchingRules`: last, after the keys AWS writes
    // today, so the look-ahead rarely tries it.
    field(
        "matchingNonTerminatingRules",
        Field::NonTerminatingMatchingRules,
    ),
];
const REQUEST_KEYS: &[Key] = &[
    field("clientIp", Field::ClientIp),
    field("country", Field::Country),
    field("headers", Field::Headers),
    field("uri", Field::Uri),
    key("args"),
    key("httpVersion"),
    field("httpMethod", Field::HttpMethod),
    key("requestId"),
    key("fragment"),
    key("scheme"),
    field("host", Field::Host),
];
const RULE_GROUP_KEYS: &[Key] = &[
    key("ruleGroupId"),
    key("terminatingRule"),
    field(
        "nonTerminatingMatchingRules",
        Field::NonTerminatingMatchingRules,
    ),
    key("excludedRules"),
    key("customerConfig"),
];
const RULE_KEYS: &[Key] = &[
    field("ruleId", Field::RuleId),
    key("action"),
    key("ruleMatchDetails"),
];
const LABEL_KEYS: &[Key] = &[field("name", Field::Name)];

struct Parser<'a, 'x> {
    s: &'a str,
    i: usize,
    /// The line's [`Index`].
    index: &'x Index,
}

/// Bits for "this known key was seen", to give up on duplicates as serde reports them.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn first(&mut self, bit: u32) -> R<()> {
        if self.0 & (1 << bit) != 0 {
            return Err(GiveUp);
        }
        self.0 |= 1 << bit;
        Ok(())
    }
}

impl<'a> Parser<'a, '_> {
    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    /// The first set bit at or after `from` in a bit map of the line.
    #[inline(always)]
    fn next_bit(&self, map: &[u64], from: usize) -> Option<usize> {
        self.next_bit_of(|w| map.get(w).copied(), from)
    }

    /// The first set bit at or after `from` in the bit map whose words `word` gives.
    #[inline(always)]
    fn next_bit_of(&self, word: impl Fn(usize) -> Option<u64>, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut bits = word(w)? & (u64::MAX << (from % 64));
        while bits == 0 {
            w += 1;
            bits = word(w)?;
        }
        let at = w * 64 + bits.trailing_zeros() as usize;
        (at < self.s.len()).then_some(at)
    }

    fn peek(&self) -> R<u8> {
        self.bytes().get(self.i).copied().ok_or(GiveUp)
    }

    /// Spaces: the other JSON whitespace (tab, CR, LF) is a control character, which the index
    /// already gave up on.
    fn ws(&mut self) {
        while self.bytes().get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.bytes().get(self.i) == Some(&b);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, b: u8) -> R<()> {
        if self.eat(b) { Ok(()) } else { Err(GiveUp) }
    }

    fn literal(&mut self, word: &str) -> R<()> {
        if self.bytes()[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// Reads a `null` at the cursor, if there is one.
    fn null(&mut self) -> R<bool> {
        if self.peek()? != b'n' {
            return Ok(false);
        }
        self.literal("null").map(|()| true)
    }

    /// A string at the cursor: its raw contents and whether it holds escapes.
    #[inline(always)]
    fn string(&mut self) -> R<(&'a str, bool)> {
        self.expect(b'"')?;
        let start = self.i;
        let (end, escaped) = self.string_end(start)?;
        self.i = end + 1;
        Ok((self.s.get(start..end).ok_or(GiveUp)?, escaped))
    }

    /// Skips a string at the cursor. Only its end is needed: escapes were checked for the whole
    /// line, and escaped quotes are not in the quote map.
    fn skip_string(&mut self) -> R<()> {
        self.expect(b'"')?;
        self.i = self.quote_after(self.i)? + 1;
        Ok(())
    }

    /// The first unescaped quote at or after `at`.
    #[inline(always)]
    fn quote_after(&self, at: usize) -> R<usize> {
        self.next_bit(&self.index.quotes, at).ok_or(GiveUp)
    }

    /// Where the string whose contents begin at `start` ends (its closing quote), and whether it
    /// holds escapes.
    #[inline(always)]
    fn string_end(&self, start: usize) -> R<(usize, bool)> {
        let Index {
            quotes,
            backslashes,
            escapes,
            ..
        } = self.index;
        if !escapes {
            return Ok((self.quote_after(start)?, false));
        }
        // One search for a quote or a backslash, whichever comes first: most strings hold no
        // escape, and an escaped quote has its backslash before it.
        let first = self
            .next_bit_of(|w| Some(*quotes.get(w)? | backslashes[w]), start)
            .ok_or(GiveUp)?;
        if self.bytes()[first] == b'"' {
            return Ok((first, false));
        }
        Ok((self.quote_after(first)?, true))
    }

    /// A string kept as the record's value; escaped ones need unescaping and are left to serde.
    fn plain_string(&mut self) -> R<&'a str> {
        match self.string()? {
            (s, false) => Ok(s),
            (_, true) => Err(GiveUp),
        }
    }

    /// `null` or a string.
    fn opt_str(&mut self) -> R<Option<Cow<'a, str>>> {
        if self.null()? {
            return Ok(None);
        }
        self.plain_string().map(|s| Some(Cow::Borrowed(s)))
    }

    /// A non-negative integer without sign, fraction or exponent.
    fn integer(&mut self) -> R<u64> {
        let bytes = self.bytes();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = bytes.get(self.i) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(GiveUp)?;
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && bytes[start] == b'0';
        if digits == 0 || leading_zero || matches!(self.peek(), Ok(b'.' | b'e' | b'E')) {
            return Err(GiveUp);
        }
        Ok(n)
    }

    /// Calls `field` for each key of an object; the callback reads the value.
    fn object(&mut self, field: impl FnMut(&mut Self, &'a str) -> R<()>) -> R<()> {
        self.object_with(Self::any_key, field)
    }

    /// [`Parser::object`] for an object whose keys usually come in `order` (as AWS writes them),
    /// calling `field` with each key's [`Field`]: the next expected keys are tried as literals
    /// (`"key":`) before the key's end is searched for. Keys in any other order or form are read
    /// the general way and found in `order` by name, so the result is the same.
    fn object_in_order(
        &mut self,
        order: &[Key],
        field: impl FnMut(&mut Self, Field) -> R<()>,
    ) -> R<()> {
        let mut next = 0;
        let key = |p: &mut Self| match p.expected_key(order, &mut next) {
            Some(field) => Ok(field),
            None => {
                let name = p.any_key()?;
                let known = order.iter().find(|k| k.name == name);
                Ok(known.map_or(Field::Other, |k| k.field))
            }
        };
        self.object_with(key, field)
    }

    /// A key at the cursor, read the general way, and its colon.
    fn any_key(&mut self) -> R<&'a str> {
        self.ws();
        let key = self.plain_string()?;
        self.ws();
        self.expect(b':')?;
        Ok(key)
    }

    /// An object whose keys `key` reads; `field` reads each value.
    #[inline(always)]
    fn object_with<K>(
        &mut self,
        mut key: impl FnMut(&mut Self) -> R<K>,
        mut field: impl FnMut(&mut Self, K) -> R<()>,
    ) -> R<()> {
        self.expect(b'{')?;
        self.ws();
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let key = key(self)?;
            self.ws();
            field(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// The field of the key at the cursor if it is one of the next few of `order` written as
    /// `"key":`; the cursor then moves past the colon and `next` past the key. Optional keys may be
    /// absent, hence the look-ahead.
    #[inline(always)]
    fn expected_key(&mut self, order: &[Key], next: &mut usize) -> Option<Field> {
        const LOOK_AHEAD: usize = 4;
        // Nothing to expect (a general object, or past the last known key): no window to load.
        let candidates = order.get(*next..).filter(|c| !c.is_empty())?;
        let window: &[u8; 32] = self.bytes().get(self.i..)?.first_chunk()?;
        let words: [u64; 4] = std::array::from_fn(|w| {
            u64::from_le_bytes(*window[w * 8..].first_chunk().expect("8 of 32 bytes"))
        });
        for (j, key) in candidates.iter().enumerate().take(LOOK_AHEAD) {
            let differs = |w: usize| (words[w] ^ key.words[w]) & key.mask[w];
            // The first word (the quote and 7 bytes) tells most candidates apart.
            if differs(0) == 0 && differs(1) | differs(2) | differs(3) == 0 {
                self.i += key.len;
                *next += j + 1;
                return Some(key.field);
            }
        }
        None
    }

    /// Calls `element` for each element of an array; the callback reads it.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.expect(b'[')?;
        self.ws();
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            self.ws();
            element(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// `null`, or an array read by `element`.
    fn opt_array(&mut self, element: impl FnMut(&mut Self) -> R<()>) -> R<bool> {
        if self.null()? {
            return Ok(false);
        }
        self.array(element)?;
        Ok(true)
    }

    /// Any JSON value, checked against the grammar and dropped.
    fn skip(&mut self, depth: u32) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(|p, _| p.skip(depth + 1)),
            b'[' => self.array(|p| p.skip(depth + 1)),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(GiveUp),
        }
    }

    /// A JSON number of any form.
    fn number(&mut self) -> R<()> {
        let bytes = self.bytes();
        let digits = |i: &mut usize| {
            let start = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - start
        };
        let mut i = self.i + usize::from(bytes[self.i] == b'-');
        let int_start = i;
        let int_digits = digits(&mut i);
        if int_digits == 0 || (int_digits > 1 && bytes[int_start] == b'0') {
            return Err(GiveUp);
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return Err(GiveUp);
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return Err(GiveUp);
            }
        }
        self.i = i;
        Ok(())
    }

    /// The line as one record, with nothing after it.
    fn whole_record(&mut self) -> R<ScanRecord<'a>> {
        self.ws();
        let record = self.record()?;
        self.ws();
        if self.i != self.s.len() {
            return Err(GiveUp);
        }
        Ok(record)
    }

    fn record(&mut self) -> R<ScanRecord<'a>> {
        let mut seen = Seen::default();
        let mut timestamp = None;
        let mut action = None;
        let mut terminating_rule_id = None;
        let mut terminating_rule_type = None;
        let mut http_source_name = None;
        let mut response_code_sent = None;
        let mut ja3_fingerprint = None;
        let mut ja4_fingerprint = None;
        let mut client_asn = None;
        let mut labels = None;
        let mut non_terminating = None;
        let mut group_count_rules = Vec::new();
        let mut http_request = None;
        self.object_in_order(RECORD_KEYS, |p, key| {
            match key {
                Field::Timestamp => {
                    seen.first(0)?;
                    let ms = i64::try_from(p.integer()?).map_err(|_| GiveUp)?;
                    // Out of range: serde words the error.
                    timestamp = Some(ms).filter(|&ms| timestamp_in_range(ms));
                }
                Field::Action => {
                    seen.first(1)?;
                    action = p.opt_str()?;
                }
                Field::TerminatingRuleId => {
                    seen.first(2)?;
                    terminating_rule_id = p.opt_str()?;
                }
                Field::TerminatingRuleType => {
                    seen.first(3)?;
                    terminating_rule_type = p.opt_str()?;
                }
                Field::HttpSourceName => {
                    seen.first(4)?;
                    http_source_name = p.opt_str()?;
                }
                Field::ResponseCodeSent => {
                    seen.first(5)?;
                    response_code_sent = if p.null()? { None } else { Some(p.integer()?) };
                }
                Field::Ja3Fingerprint => {
                    seen.first(6)?;
                    ja3_fingerprint = p.opt_str()?;
                }
                Field::Ja4Fingerprint => {
                    seen.first(7)?;
                    ja4_fingerprint = p.opt_str()?;
                }
                Field::ClientAsn => {
                    seen.first(12)?;
                    // A number, or its text (the Athena table reads it as a string): both as
                    // `lenient_u64` takes them.
                    client_asn = if p.peek()? == b'"' {
                        p.plain_string()?.trim().parse().ok()
                    } else if p.null()? {
                        None
                    } else {
                        Some(p.integer()?)
                    };
                }
                Field::Labels => {
                    seen.first(8)?;
                    let mut list = Labels::new();
                    if p.opt_array(|p| {
                        list.push(p.label()?);
                        Ok(())
                    })? {
                        labels = Some(list);
                    }
                }
                // Either name (see `RECORD_KEYS`): both at once is a duplicate, as in serde.
                Field::NonTerminatingMatchingRules => {
                    seen.first(9)?;
                    let mut list = Vec::new();
                    if p.opt_array(|p| {
                        list.push(p.rule_ref()?);
                        Ok(())
                    })? {
                        non_terminating = Some(list);
                    }
                }
                Field::RuleGroupList => {
                    seen.first(10)?;
                    p.opt_array(|p| p.rule_group(&mut group_count_rules))?;
                }
                Field::HttpRequest => {
                    seen.first(11)?;
                    http_request = Some(p.request()?);
                }
                _ => p.skip(1)?,
            }
            Ok(())
        })?;
        Ok(ScanRecord {
            timestamp: timestamp.ok_or(GiveUp)?,
            action,
            terminating_rule_id,
            terminating_rule_type,
            http_source_name,
            response_code_sent,
            ja3_fingerprint,
            ja4_fingerprint,
            client_asn,
            labels,
            non_terminating_matching_rules: non_terminating,
            group_count_rules,
            http_request: http_request.ok_or(GiveUp)?,
        })
    }

    fn label(&mut self) -> R<Label<'a>> {
        let mut name = None;
        self.object_in_order(LABEL_KEYS, |p, key| {
            match key {
                Field::Name if name.is_some() => return Err(GiveUp),
                Field::Name => name = Some(Cow::Borrowed(p.plain_string()?)),
                _ => p.skip(3)?,
            }
            Ok(())
        })?;
        Ok(Label {
            name: name.ok_or(GiveUp)?,
        })
    }

    fn rule_ref(&mut self) -> R<RuleRef<'a>> {
        let mut seen = Seen::default();
        let mut rule_id = None;
        self.object_in_order(RULE_KEYS, |p, key| {
            match key {
                Field::RuleId => {
                    seen.first(0)?;
                    rule_id = p.opt_str()?;
                }
                _ => p.skip(3)?,
            }
            Ok(())
        })?;
        Ok(RuleRef { rule_id })
    }

    /// One rule group: its COUNT-mode matches are appended to `rules`.
    fn rule_group(&mut self, rules: &mut Vec<RuleRef<'a>>) -> R<()> {
        let mut seen = Seen::default();
        self.object_in_order(RULE_GROUP_KEYS, |p, key| {
            match key {
                Field::NonTerminatingMatchingRules => {
                    seen.first(0)?;
                    p.opt_array(|p| {
                        rules.push(p.rule_ref()?);
                        Ok(())
                    })?;
                }
                _ => p.skip(2)?,
            }
            Ok(())
        })
    }

    fn request(&mut self) -> R<RequestView<'a>> {
        let mut seen = Seen::default();
        let mut client_ip = None;
        let mut country = None;
        let mut uri = None;
        let mut http_method = None;
        let mut host = None;
        let mut headers = None;
        self.object_in_order(REQUEST_KEYS, |p, key| {
            match key {
                Field::ClientIp => {
                    seen.first(0)?;
                    client_ip = Some(Cow::Borrowed(p.plain_string()?));
                }
                Field::Country => {
                    seen.first(1)?;
                    country = p.opt_str()?;
                }
                Field::Uri => {
                    seen.first(2)?;
                    uri = p.opt_str()?;
                }
                Field::HttpMethod => {
                    seen.first(3)?;
                    http_method = p.opt_str()?;
                }
                Field::Host => {
                    seen.first(4)?;
                    host = p.opt_str()?;
                }
                Field::Headers => {
                    seen.first(5)?;
                    let mut picked = Picked::default();
                    if p.opt_array(|p| p.header(&mut picked))? {
                        headers = Some(picked.into_headers());
                    }
                }
                _ => p.skip(2)?,
            }
            Ok(())
        })?;
        Ok(RequestView {
            client_ip: client_ip.ok_or(GiveUp)?,
            country,
            uri,
            http_method,
            host,
            headers,
        })
    }

    /// One `{name, value}` header, added to `picked` if it is one the scan reads.
    fn header(&mut self, picked: &mut Picked<'a>) -> R<()> {
        if self.compact_header(picked)? {
            return Ok(());
        }
        let mut name = None;
        let mut value = None;
        let mut value_seen = false;
        self.object(|p, key| {
            match key {
                "name" if name.is_some() => return Err(GiveUp),
                "name" => name = Some(Wanted::of(p.plain_string()?)),
                "value" if value_seen => return Err(GiveUp),
                "value" => {
                    value_seen = true;
                    match name {
                        // A value before its name: left to serde.
                        None => return Err(GiveUp),
                        Some(Wanted::No) => p.skip(4)?,
                        Some(_) => value = p.opt_str()?,
                    }
                }
                _ => p.skip(4)?,
            }
            Ok(())
        })?;
        picked.add(name.ok_or(GiveUp)?, value);
        Ok(())
    }

    /// A header in the exact form WAF writes, `{"name":"N","value":"V"}`, read without the general
    /// object machinery (headers are most of a record). `false`, with the cursor unmoved, for any
    /// other form.
    #[inline]
    fn compact_header(&mut self, picked: &mut Picked<'a>) -> R<bool> {
        const NAME: &[u8] = b"{\"name\":\"";
        const VALUE: &[u8] = b"\",\"value\":\"";
        let bytes = self.bytes();
        if !bytes[self.i..].starts_with(NAME) {
            return Ok(false);
        }
        let name_start = self.i + NAME.len();
        let (name_end, name_escaped) = self.string_end(name_start)?;
        if name_escaped || !bytes[name_end..].starts_with(VALUE) {
            return Ok(false);
        }
        let name = Wanted::of(self.s.get(name_start..name_end).ok_or(GiveUp)?);
        let value_start = name_end + VALUE.len();
        // An unread value needs only its end.
        let (value_end, value_escaped) = match name {
            Wanted::No => (self.quote_after(value_start)?, false),
            _ => self.string_end(value_start)?,
        };
        if bytes.get(value_end + 1) != Some(&b'}') {
            return Ok(false);
        }
        if name != Wanted::No {
            if value_escaped {
                return Err(GiveUp);
            }
            let value = self.s.get(value_start..value_end).ok_or(GiveUp)?;
            picked.add(name, Some(Cow::Borrowed(value)));
        }
        self.i = value_end + 2;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path's answer equals serde's, or the fast path gives up. Lines are written over
    /// several source lines for reading; a record is one line.
    fn agrees(line: &str) -> bool {
        let line = &line.replace('\n', "");
        let serde = sonic_rs::from_str::<ScanRecord>(line).ok();
        match scan_record(line.as_bytes(), &mut Index::default()) {
            Ok(fast) => {
                assert_eq!(Some(&fast), serde.as_ref(), "{line}");
                true
            }
            Err(GiveUp) => false,
        }
    }

    #[test]
    fn the_index_finds_string_boundaries_and_escapes() {
        let long = "x".repeat(70);
        let line = format!(r#"{{"a":"{long}\"日本\\","b":"\u0041","c":1}}"#);
        let mut index = Index::default();
        assert_eq!(index.line(line.as_bytes()), line.len());
        assert!(index.clean && index.escapes && !index.ascii);
        let p = Parser {
            s: &line,
            i: 0,
            index: &index,
        };
        let quotes: Vec<usize> = std::iter::successors(p.next_bit(&index.quotes, 0), |&i| {
            p.next_bit(&index.quotes, i + 1)
        })
        .collect();
        // Every quote but the escaped one after the 70 x's.
        let expected: Vec<usize> = line
            .bytes()
            .enumerate()
            .filter(|&(i, b)| b == b'"' && i != 2 + 1 + 3 + 70 + 1)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(quotes, expected);
        // "a" is at 2..3; the long string's contents start at 6 and it closes after 70 x's, `\"`,
        // six bytes of 日本 and `\\`.
        assert_eq!(p.string_end(2), Ok((3, false)));
        assert_eq!(p.string_end(6), Ok((6 + 70 + 2 + 6 + 2, true)));
        // A line ends at its newline; what follows (a bad escape here) is the next line's.
        let two = "{\"a\":1}\n{\"b\":\"\\q\"}";
        assert_eq!(index.line(two.as_bytes()), 7);
        assert!(index.clean && !index.escapes && index.ascii);
        assert_eq!(index.line(&two.as_bytes()[8..]), two.len() - 8);
        assert!(!index.clean);
        assert_eq!(index.line(b""), 0);
        let mut indexes = |line: &[u8]| index.line(line) == line.len() && index.clean;
        for bad in [
            &b"{\"a\":\"\t\"}"[..],
            b"{\"a\":\"\\q\"}",
            b"{\"a\":\"\\ud800\"}",
        ] {
            assert!(!indexes(bad), "{}", String::from_utf8_lossy(bad));
        }
        let mut long_control = vec![b'x'; 100];
        long_control.push(1);
        assert!(!indexes(&long_control));
    }

    fn gives_up(line: &[u8]) -> bool {
        scan_record(line, &mut Index::default()) == Err(GiveUp)
    }

    #[test]
    fn reads_a_full_record_like_serde() {
        assert!(agrees(
            r#"{"timestamp":1795217700169,"formatVersion":1,"action":"BLOCK","terminatingRuleId":"r",
            "terminatingRuleMatchDetails":[{"conditionType":"SQL_INJECTION","matchedData":["1","=","1"]}],
            "ruleGroupList":[{"ruleGroupId":"g","terminatingRule":null,"nonTerminatingMatchingRules":[{"ruleId":"inner","action":"COUNT"}],"excludedRules":null,"customerConfig":{"a":[1.5e3,-2,true,false,null]}},
              {"ruleGroupId":"h","nonTerminatingMatchingRules":null}],
            "rateBasedRuleList":[{"evaluationWindowSec":"120","maxRateAllowed":100}],
            "nonTerminatingMatchingRules":[{"ruleId":"watch","action":"COUNT"}],
            "responseCodeSent":403,"ja3Fingerprint":null,"ja4Fingerprint":"t13d","clientAsn":64496,
            "httpRequest":{"clientIp":"2001:db8::1","country":"JP","headers":[{"name":"Host","value":"a.example"},
              {"name":"cookie","value":"x=\"y\" \u00e9 \n"},{"name":"User-Agent","value":"Mozilla/5.0 (日本)"},
              {"name":"user-agent","value":"second"}],"uri":"/a","httpMethod":"GET","requestId":"1-2"},
            "labels":[{"name":"awswaf:managed:aws:bot-control:bot:verified"}]}"#
        ));
    }

    #[test]
    fn null_and_missing_optionals_agree() {
        assert!(agrees(
            r#"{"timestamp":1,"action":null,"labels":null,"ruleGroupList":null,"nonTerminatingMatchingRules":null,
            "responseCodeSent":null,"httpRequest":{"clientIp":"X.X.X.X","headers":null,"uri":null}}"#
        ));
        assert!(agrees(
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4","headers":[]}}"#
        ));
        for asn in [r#""64496""#, r#"" 7 ""#, r#""AS1""#, "null"] {
            assert!(agrees(&format!(
                r#"{{"timestamp":1,"clientAsn":{asn},"httpRequest":{{"clientIp":"1.2.3.4"}}}}"#
            )));
        }
        assert!(agrees(
            "{\"timestamp\":1,\"x\":\"\u{7f}\",\"httpRequest\":{\"clientIp\":\"1.2.3.4\"}}"
        ));
        assert!(agrees(
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4","headers":[{"name":"user-agent","value":null},{"name":"host"}]}}"#
        ));
        assert!(agrees(
            r#" { "timestamp" : 0 , "matchingNonTerminatingRules" : [ { "ruleId" : "old" } ] , "httpRequest" : { "clientIp" : "" } } "#
        ));
    }

    #[test]
    fn gives_up_on_what_serde_must_judge() {
        for line in [
            // escapes in kept strings or keys, string timestamp, floats, negative numbers
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4","uri":"\/a"}}"#,
            r#"{"time\u0073tamp":1,"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":"2024-03-20T10:30:00Z","httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1.5,"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"responseCodeSent":"403","httpRequest":{"clientIp":"1.2.3.4"}}"#,
            // duplicates, including the alias pair
            r#"{"timestamp":1,"timestamp":2,"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"nonTerminatingMatchingRules":[],"matchingNonTerminatingRules":[],"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            // a header value before its name
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4","headers":[{"value":"v","name":"host"}]}}"#,
            // glued objects and trailing garbage
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"}}{"timestamp":2,"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"}} x"#,
            // lone surrogate in a skipped string
            r#"{"timestamp":1,"x":"\ud800","httpRequest":{"clientIp":"1.2.3.4"}}"#,
        ] {
            assert!(gives_up(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn never_accepts_what_serde_rejects() {
        for line in [
            r#"{"timestamp":1}"#,
            r#"{"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":null}}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"},"x":[1,]}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"},"x":01}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"},"x":"a	b"}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"},"x":tru}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"},"x":"\q"}"#,
            r#"{"timestamp":1,"labels":[{"name":null}],"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"labels":[{}],"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"ruleGroupList":[null],"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"action":5,"httpRequest":{"clientIp":"1.2.3.4"}}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4","headers":[{"value":"x"}]}}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4""#,
        ] {
            assert!(
                sonic_rs::from_str::<ScanRecord>(line).is_err() || !agrees(line),
                "{line}"
            );
            assert!(gives_up(line.as_bytes()), "{line}");
        }
        assert!(gives_up(b"{\"timestamp\":1,\"x\":\"\xff\"}"));
    }

    /// Every one-byte change and every truncation of a real record: the fast path either gives up
    /// or returns exactly what serde returns, and never accepts what serde rejects.
    #[test]
    fn mutations_of_a_record_never_make_the_paths_disagree() {
        let record = concat!(
            r#"{"timestamp":1795217700169,"action":"ALLOW","terminatingRuleId":"Default_Action","#,
            r#""ruleGroupList":[{"ruleGroupId":"AWS#Common","terminatingRule":null,"nonTerminatingMatchingRules":[{"ruleId":"c","action":"COUNT"}],"excludedRules":null}],"#,
            r#""responseCodeSent":null,"httpRequest":{"clientIp":"1.170.227.65","country":"TW","headers":["#,
            r#"{"name":"host","value":"shop.example.com"},{"name":"sec-ch-ua","value":"\"Chromium\";v=\"142\""},"#,
            r#"{"name":"user-agent","value":"Mozilla/5.0"}],"uri":"/a","httpMethod":"GET"},"#,
            r#""labels":[{"name":"awswaf:clientip:geo:country:TW"}],"x":[1.5e-3,true,false,null,{"y":"\u00e9"}]}"#
        );
        let mut index = Index::default();
        let mut accepted = 0;
        let mut check = |line: &[u8]| {
            if let Ok(fast) = scan_record(line, &mut index) {
                let serde = sonic_rs::from_slice::<ScanRecord>(line);
                assert_eq!(
                    Some(&fast),
                    serde.as_ref().ok(),
                    "{}",
                    String::from_utf8_lossy(line)
                );
                accepted += 1;
            }
        };
        check(record.as_bytes());
        for at in 0..record.len() {
            check(&record.as_bytes()[..at]);
            for b in [
                b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'0', b'-', b'n', b' ', b'\t',
                0xff,
            ] {
                let mut line = record.as_bytes().to_vec();
                line[at] = b;
                check(&line);
            }
        }
        // Most changes inside string contents leave a valid record the fast path reads.
        assert!(accepted > 2_000, "{accepted}");
    }
}
