//! The scan's index pass: bit maps of a line built with vector instructions (all of the fast path's
//! `unsafe`), which the safe parser in [`super::fast`] walks from string boundary to string boundary.

#![allow(unsafe_code)]

/// Bit maps of a line, built in one branch-free vector pass: where its strings start and end, and
/// where it has backslashes. The parser jumps from string boundary to string boundary with them: a
/// record has one every 9 bytes, and finding each with a fresh vector compare was most of the
/// parsing time.
#[derive(Debug, Default)]
pub struct Index {
    /// One bit per byte: a `"` that opens or closes a string (escaped quotes are cleared).
    pub(super) quotes: Vec<u64>,
    /// One bit per byte: a `\\`.
    pub(super) backslashes: Vec<u64>,
    /// Whether the line has any backslash (nearly every browser request has some, in `sec-ch-ua`).
    pub(super) escapes: bool,
    /// No control character and no invalid escape.
    pub(super) clean: bool,
    /// No byte >= 0x80.
    pub(super) ascii: bool,
}

impl Index {
    /// Indexes the first line of `data` and returns its length (without the newline) and, when the
    /// line is [`Index::clean`] UTF-8, its text.
    pub(super) fn line_text<'a>(&mut self, data: &'a [u8]) -> (usize, Option<&'a str>) {
        let len = self.line(data);
        let line = &data[..len];
        if !self.clean {
            return (len, None);
        }
        let text = if self.ascii {
            // SAFETY: `self.line` just found no byte >= 0x80 in these bytes: ASCII is valid UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(line) })
        } else {
            simdutf8::basic::from_utf8(line).ok()
        };
        (len, text)
    }

    /// Indexes the first line of `data` and returns its length (without the newline), with the
    /// widest vector unit this CPU has.
    pub(super) fn line(&mut self, data: &[u8]) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW, checked just above.
                return unsafe { self.line_avx512(data) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { self.line_avx2(data) };
            }
        }
        self.line_with(data, block_masks)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw")]
    fn line_avx512(&mut self, data: &[u8]) -> usize {
        self.line_with(data, |block| block_masks_avx512(block))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn line_avx2(&mut self, data: &[u8]) -> usize {
        self.line_with(data, |block| block_masks_avx2(block))
    }

    /// The indexing loop, inlined into each vector variant so `masks` compiles to its instructions.
    #[inline(always)]
    fn line_with(&mut self, data: &[u8], masks: impl Fn(&[u8; 64]) -> Masks) -> usize {
        self.quotes.clear();
        self.backslashes.clear();
        let (mut control, mut backslash, mut high) = (0, 0, 0);
        let mut at = 0;
        let len = loop {
            let rest = &data[at.min(data.len())..];
            let masks = match rest.first_chunk::<64>() {
                Some(block) => masks(block),
                None => {
                    // Pad with newlines: the line ends where the data does.
                    let mut padded = [b'\n'; 64];
                    padded[..rest.len()].copy_from_slice(rest);
                    masks(&padded)
                }
            };
            // Bits of this line only: the block may run into the next one.
            let (keep, end) = match masks.newlines {
                0 => (u64::MAX, None),
                n => {
                    let nl = n.trailing_zeros();
                    ((1u64 << nl) - 1, Some(at + nl as usize))
                }
            };
            self.quotes.push(masks.quotes & keep);
            self.backslashes.push(masks.backslashes & keep);
            backslash |= masks.backslashes & keep;
            control |= masks.controls & keep;
            high |= masks.high & keep;
            if let Some(end) = end {
                break end;
            }
            at += 64;
        };
        self.escapes = backslash != 0;
        self.ascii = high == 0;
        self.clean = control == 0 && (!self.escapes || self.clear_escaped_quotes(&data[..len]));
        len
    }

    /// Walks the escapes in order, checking each and clearing the quotes they escape; `false` at an
    /// invalid one. A backslash outside a string makes the parser give up when it reaches it, so
    /// treating every backslash as an escape is exact.
    fn clear_escaped_quotes(&mut self, line: &[u8]) -> bool {
        let mut free = 0; // bytes before this are taken by the escape before
        for word in 0..self.backslashes.len() {
            let mut bits = self.backslashes[word];
            while bits != 0 {
                let at = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if at < free {
                    continue; // the second backslash of `\\\\`
                }
                let Some(len) = escape_len(&line[at..]) else {
                    return false;
                };
                if line[at + 1] == b'"' {
                    self.quotes[(at + 1) / 64] &= !(1 << ((at + 1) % 64));
                }
                free = at + len;
            }
        }
        true
    }
}

/// Bit masks of one block of 64 bytes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    quotes: u64,
    backslashes: u64,
    /// Bytes below 0x20 other than newlines.
    controls: u64,
    newlines: u64,
    /// Bytes >= 0x80.
    high: u64,
}

impl Masks {
    /// Ors in the masks `[quotes, backslashes, below 0x20, newlines, high]` of the bytes from `at`.
    #[inline(always)]
    fn add(&mut self, at: usize, [q, b, c, n, h]: [u64; 5]) {
        self.quotes |= q << at;
        self.backslashes |= b << at;
        self.controls |= c << at;
        self.newlines |= n << at;
        self.high |= h << at;
    }
}

/// The masks of a block of 64 bytes: SSE2 on x86_64 (every x86_64 CPU has it), else bytewise.
#[inline]
fn block_masks(block: &[u8; 64]) -> Masks {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
            _mm_set1_epi8,
        };
        let mut m = Masks::default();
        for (k, part) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of x86_64; `part` is 16 readable bytes and the load is unaligned.
            let [q, b, c, n, h] = unsafe {
                let v = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
                let eq = |byte: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8)));
                let below_space = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                [
                    eq(b'"'),
                    eq(b'\\'),
                    _mm_movemask_epi8(below_space),
                    eq(b'\n'),
                    _mm_movemask_epi8(v),
                ]
                .map(|mask| u64::from(mask as u16))
            };
            m.add(k * 16, [q, b, c, n, h]);
        }
        m.controls &= !m.newlines;
        m
    }
    #[cfg(not(target_arch = "x86_64"))]
    block_masks_scalar(block)
}

/// The masks, byte by byte: the reference the vector variants are tested against.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn block_masks_scalar(block: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (k, &b) in block.iter().enumerate() {
        let bit = |hit: bool| u64::from(hit);
        m.add(
            k,
            [b == b'"', b == b'\\', b < 0x20, b == b'\n', b >= 0x80].map(bit),
        );
    }
    m.controls &= !m.newlines;
    m
}

/// The masks with AVX2: two 32-byte halves.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn block_masks_avx2(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8,
        _mm256_set1_epi8,
    };
    let mut m = Masks::default();
    for (k, half) in block.chunks_exact(32).enumerate() {
        // SAFETY: `half` is 32 readable bytes and the load is unaligned.
        let v = unsafe { _mm256_loadu_si256(half.as_ptr().cast::<__m256i>()) };
        let eq =
            |byte: u8| _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte as i8)));
        let below_space = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
        let masks = [
            eq(b'"'),
            eq(b'\\'),
            _mm256_movemask_epi8(below_space),
            eq(b'\n'),
            _mm256_movemask_epi8(v),
        ];
        m.add(k * 32, masks.map(|mask| u64::from(mask as u32)));
    }
    m.controls &= !m.newlines;
    m
}

/// The masks with AVX-512BW: one compare per mask over the whole block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
#[inline]
fn block_masks_avx512(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{
        __m512i, _mm512_cmpeq_epi8_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512,
        _mm512_movepi8_mask, _mm512_set1_epi8,
    };
    // SAFETY: `block` is 64 readable bytes and the load is unaligned.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast::<__m512i>()) };
    let eq = |byte: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(byte as i8));
    let newlines = eq(b'\n');
    Masks {
        quotes: eq(b'"'),
        backslashes: eq(b'\\'),
        controls: _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20)) & !newlines,
        newlines,
        high: _mm512_movepi8_mask(v),
    }
}

/// Length of the escape sequence at the start of `s` (which begins with `\`), or `None` for an
/// invalid one. `\u` escapes of surrogates are left to serde, which checks their pairing.
fn escape_len(s: &[u8]) -> Option<usize> {
    match s.get(1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let hex = std::str::from_utf8(s.get(2..6)?).ok()?;
            let code = u16::from_str_radix(hex, 16).ok()?;
            if hex.starts_with('+') || (0xD800..=0xDFFF).contains(&code) {
                return None;
            }
            Some(6)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vector_variant_builds_the_scalar_masks() {
        // Blocks of the bytes that matter, at every position, plus pseudo-random ones.
        let mut blocks = Vec::new();
        for special in [b'"', b'\\', b'\n', b'\r', 0, 0x1f, b' ', 0x7f, 0x80, 0xff] {
            for at in 0..64 {
                let mut block = [b'a'; 64];
                block[at] = special;
                blocks.push(block);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            blocks.push(block);
        }
        for block in &blocks {
            let want = block_masks_scalar(block);
            assert_eq!(block_masks(block), want, "{block:?}");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    assert_eq!(unsafe { block_masks_avx2(block) }, want, "{block:?}");
                }
                if std::arch::is_x86_feature_detected!("avx512bw") {
                    // SAFETY: the CPU has AVX-512BW.
                    assert_eq!(unsafe { block_masks_avx512(block) }, want, "{block:?}");
                }
            }
        }
    }
}
