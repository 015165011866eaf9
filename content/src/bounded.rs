//! A reader that stops with an error at a byte cap, instead of cutting.

use std::io::{self, Read};

/// The payload of the error a [`Capped`] reader returns at its cap; turned
/// into [`crate::ContentError::OverCap`] by [`crate::ContentError::io`].
#[derive(Debug)]
pub struct CapReached(pub u64);

impl std::fmt::Display for CapReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "over the cap of {} bytes", self.0)
    }
}

impl std::error::Error for CapReached {}

/// Reads at most `cap` bytes of `inner`; reading past them is an error, so
/// that a tar bomb ends in a clear message rather than a truncated image.
#[derive(Debug)]
pub struct Capped<R> {
    inner: R,
    cap: u64,
    read: u64,
}

impl<R: Read> Capped<R> {
    /// `inner`, capped at `cap` bytes.
    pub fn new(inner: R, cap: u64) -> Self {
        Capped {
            inner,
            cap,
            read: 0,
        }
    }

    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.cap - self.read;
        // One byte more than the cap is asked for, so that input of exactly
        // `cap` bytes is read whole and only more is refused.
        let want = buf
            .len()
            .min(usize::try_from(left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > left {
            self.read = self.cap;
            return Err(io::Error::other(CapReached(self.cap)));
        }
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_cap_is_read_and_one_more_byte_is_refused() {
        let mut out = Vec::new();
        Capped::new(&[1u8; 10][..], 10)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 10);
        // No overflow at the largest cap.
        out.clear();
        Capped::new(&[1u8; 3][..], u64::MAX)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 3);
        let err = Capped::new(&[1u8; 11][..], 10)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        let e = crate::ContentError::io("a.tar", err);
        assert_eq!(
            e.to_string(),
            "a.tar: over the cap of 10 bytes; not read further"
        );
    }
}
