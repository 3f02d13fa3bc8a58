//! Whole-buffer gzip decompression with libdeflate, which is 2-3x faster than streaming inflate
//! (it skips the sliding-window copy and computes CRC32 with carry-less multiply). Used for files
//! small enough to hold in memory (S3 delivers ~5-minute files); larger inputs stream through flate2.

// libdeflate is a C library: its calls are FFI; each block says why it is sound.
#![allow(unsafe_code)]

use libdeflate_sys as sys;

/// Why a buffer could not be inflated in one go; the caller falls back to streaming, which reports
/// exactly where the data went bad.
#[derive(Debug, PartialEq, Eq)]
pub struct GunzipFailed;

/// Owns a libdeflate decompressor.
struct Decompressor(*mut sys::libdeflate_decompressor);

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is freed exactly once.
        unsafe { sys::libdeflate_free_decompressor(self.0) }
    }
}

/// Inflates every gzip member in `input` (S3 and Firehose may concatenate members) into `out`
/// (cleared first; its capacity is reused), refusing to grow it past `max_out` bytes.
pub fn gunzip_into(input: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<(), GunzipFailed> {
    out.clear();
    // SAFETY: allocation has no preconditions; a null result is checked.
    let d = Decompressor(unsafe { sys::libdeflate_alloc_decompressor() });
    if d.0.is_null() {
        return Err(GunzipFailed);
    }
    // ISIZE (the last member's size mod 2^32) is a good first guess for the output size.
    let guess = input
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(input[at..].try_into().expect("4 bytes")) as usize)
        .unwrap_or(0);
    let guess = guess.clamp(1024, max_out.max(1024));
    forget_larger(out, guess);
    out.reserve_exact(guess);
    let mut rest = input;
    while !rest.is_empty() {
        let (mut used_in, mut used_out) = (0usize, 0usize);
        let spare = out.capacity() - out.len();
        // SAFETY: `rest` is a valid readable slice; the output pointer and `spare` describe the
        // vector's uninitialised spare capacity, which libdeflate writes at most `spare` bytes into;
        // the length is only extended by the `used_out` bytes it reports as written.
        let result = unsafe {
            sys::libdeflate_gzip_decompress_ex(
                d.0,
                rest.as_ptr().cast(),
                rest.len(),
                out.as_mut_ptr().add(out.len()).cast(),
                spare,
                &mut used_in,
                &mut used_out,
            )
        };
        match result {
            sys::libdeflate_result_LIBDEFLATE_SUCCESS => {
                // SAFETY: libdeflate initialised exactly `used_out` bytes past the old length.
                unsafe { out.set_len(out.len() + used_out) };
                rest = &rest[used_in..];
                // Zero padding after the last member is tolerated, as gzip(1) does.
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                let want = guess
                    .max(rest.len() * 4)
                    .min(max_out.saturating_sub(out.len()));
                out.reserve_exact(want);
            }
            sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE if out.capacity() < max_out => {
                let grow = out.capacity().max(1 << 20);
                out.reserve_exact((out.capacity() + grow).min(max_out) - out.len());
            }
            _ => return Err(GunzipFailed),
        }
        if out.capacity() > max_out {
            return Err(GunzipFailed);
        }
    }
    Ok(())
}

/// Frees `buf` (emptied) when it holds room for much more than `need` bytes, so a buffer reused file
/// after file follows the file at hand rather than the largest file read so far: a flood's 16 MiB
/// files early in a week would otherwise stay resident to its end. Below 4 MiB it is always kept.
pub fn forget_larger(buf: &mut Vec<u8>, need: usize) {
    if buf.capacity() > 2 * need.max(4 << 20) {
        *buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gunzip(input: &[u8], max_out: usize) -> Result<Vec<u8>, GunzipFailed> {
        let mut out = b"stale".to_vec();
        gunzip_into(input, &mut out, max_out).map(|()| out)
    }

    #[test]
    fn single_and_concatenated_members() {
        assert_eq!(gunzip(&gz(b"hello\n"), 1 << 20).unwrap(), b"hello\n");
        let mut two = gz(b"a\n");
        two.extend(gz(&b"b\n".repeat(10_000)));
        let out = gunzip(&two, 1 << 20).unwrap();
        assert_eq!(out.len(), 2 + 20_000);
        assert!(out.starts_with(b"a\nb\n"));
    }

    #[test]
    fn truncated_or_oversized_input_fails() {
        let data = gz(&b"0123456789".repeat(1000));
        assert_eq!(gunzip(&data[..data.len() - 9], 1 << 20), Err(GunzipFailed));
        assert_eq!(gunzip(&data, 100), Err(GunzipFailed));
    }

    #[test]
    fn a_buffer_much_larger_than_the_file_at_hand_goes() {
        let mut buf = Vec::with_capacity(16 << 20);
        forget_larger(&mut buf, 9 << 20);
        assert_eq!(buf.capacity(), 16 << 20, "kept: at most twice the need");
        forget_larger(&mut buf, 3 << 20);
        assert_eq!(buf.capacity(), 0, "dropped: more than twice 4 MiB");
        let mut small = Vec::with_capacity(8 << 20);
        forget_larger(&mut small, 1000);
        assert_eq!(small.capacity(), 8 << 20, "never below 4 MiB");
    }
}
