//! Reading the engine's answers piece by piece, in bounded memory.
//!
//! The engine's answers can be as large as what its containers carry: a
//! container list with big labels was 50 MiB in one report, and buffering
//! it whole (then decoding it) took the agent to 293 MiB. Two readers here
//! take the body as it arrives, chunk by chunk, and keep only what they
//! need:
//! - [`IdScanner`] reads a JSON array of objects (`GET /containers/json`)
//!   and keeps each object's top-level `"Id"`, skipping everything else
//!   without holding it;
//! - [`Lines`] splits newline-delimited JSON (`GET /events`) into lines of
//!   at most a given length; a longer line is skipped and counted.
//!
//! Both are pure and fed by the caller; property tests check that splitting
//! the input anywhere gives the same result.

/// The ids of the objects of a JSON array, read incrementally. Memory: the
/// ids found, plus the key or id being read (a few bytes, at most
/// [`IdScanner::MAX_ID`]).
#[derive(Debug, Default)]
pub struct IdScanner {
    /// Whether the opening `[` was seen.
    started: bool,
    /// Nesting depth: 1 inside the array, 2 inside one of its objects.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// At depth 2: the next string is a key.
    at_key: bool,
    /// Reading a key at depth 2.
    reading_key: bool,
    /// The key just read is `Id`: its value, if a string, is wanted.
    want_value: bool,
    /// Reading the wanted value.
    capturing: bool,
    key: Vec<u8>,
    value: Vec<u8>,
    ids: Vec<String>,
    /// The input is not a JSON array of objects.
    malformed: bool,
}

impl IdScanner {
    /// The longest id kept; Docker's are 64 hex digits.
    pub const MAX_ID: usize = 256;
    /// The longest key remembered (enough to compare with `Id`).
    const MAX_KEY: usize = 8;

    /// Reads the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
                self.keep(b);
            } else if b == b'\\' {
                self.escaped = true;
                self.keep(b);
            } else if b == b'"' {
                self.in_string = false;
                self.end_string();
            } else {
                self.keep(b);
            }
            return;
        }
        if b.is_ascii_whitespace() {
            return;
        }
        if !self.started {
            self.started = true;
            if b != b'[' {
                self.malformed = true;
            }
            self.depth = 1;
            return;
        }
        if self.depth == 0 {
            // Anything after the closing bracket.
            self.malformed = true;
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.key.clear();
                self.value.clear();
                self.reading_key = self.depth == 2 && self.at_key;
                self.capturing = self.depth == 2 && !self.at_key && self.want_value;
            }
            b'{' | b'[' => {
                if self.depth == 1 {
                    if b == b'[' {
                        self.malformed = true;
                    }
                    self.at_key = true;
                }
                self.want_value = false;
                self.depth += 1;
            }
            b'}' | b']' => self.depth -= 1,
            b':' if self.depth == 2 => self.at_key = false,
            b',' if self.depth == 2 => {
                self.at_key = true;
                self.want_value = false;
            }
            _ if self.depth == 1 && b != b',' => self.malformed = true,
            // A number or literal: not an id.
            _ if self.depth == 2 => self.want_value = false,
            _ => {}
        }
    }

    fn keep(&mut self, b: u8) {
        if self.reading_key && self.key.len() < Self::MAX_KEY {
            self.key.push(b);
        } else if self.capturing && self.value.len() <= Self::MAX_ID {
            self.value.push(b);
        }
    }

    fn end_string(&mut self) {
        if self.reading_key {
            self.reading_key = false;
            self.want_value = self.key == b"Id";
        } else if self.capturing {
            self.capturing = false;
            self.want_value = false;
            match std::str::from_utf8(&self.value) {
                Ok(id) if self.value.len() <= Self::MAX_ID && !id.contains('\\') => {
                    self.ids.push(id.to_owned());
                }
                _ => self.malformed = true,
            }
        }
    }

    /// The ids read so far.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The ids read, when the body ended here; an error when it was not a
    /// whole JSON array of objects.
    pub fn finish(self) -> Result<Vec<String>, &'static str> {
        if self.malformed || !self.started || self.in_string || self.depth != 0 {
            Err("the container list is not a JSON array of objects")
        } else {
            Ok(self.ids)
        }
    }
}

/// Newline-delimited records, each at most `max` bytes. Memory: one record.
#[derive(Debug)]
pub struct Lines {
    max: usize,
    line: Vec<u8>,
    /// The current line is over `max`: its bytes are being dropped.
    skipping: bool,
    skipped: usize,
}

impl Lines {
    /// Records of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Lines {
            max,
            line: Vec::new(),
            skipping: false,
            skipped: 0,
        }
    }

    /// Reads the next chunk; returns the complete records it ended (without
    /// their newline; empty lines are left out).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        for &b in chunk {
            if b == b'\n' {
                if self.skipping {
                    self.skipping = false;
                    self.skipped += 1;
                } else if !self.line.is_empty() {
                    done.push(std::mem::take(&mut self.line));
                }
                self.line.clear();
            } else if !self.skipping {
                if self.line.len() == self.max {
                    self.skipping = true;
                    self.line = Vec::new();
                } else {
                    self.line.push(b);
                }
            }
        }
        done
    }

    /// Records dropped for being over `max` so far (each counted once its
    /// newline arrives).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(chunks: &[&[u8]]) -> Result<Vec<String>, &'static str> {
        let mut s = IdScanner::default();
        for c in chunks {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn keeps_the_top_level_ids_only() {
        let body = br#"[
          {"Id":"aaa","Names":["/a"],"Labels":{"Id":"not-this","x":"}{]["},"Mounts":[{"Id":"nor-this"}]},
          {"Names":["/b"],"Id" : "bbb","Command":"sh -c \"echo \\\"Id\\\"\""},
          {"Id":"ccc"}
        ]"#;
        assert_eq!(scan(&[body]).unwrap(), ["aaa", "bbb", "ccc"]);
        assert_eq!(scan(&[b"[]"]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            &b"[{\"Id\":\"a\""[..],
            b"[{]",
            b"]",
            b"[{\"Id\":\"a\\\"b\"}]",
        ] {
            assert!(scan(&[body]).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_huge_label_is_skipped_not_held() {
        let mut s = IdScanner::default();
        s.feed(br#"[{"Id":"big","Labels":{"l":""#);
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..50 {
            s.feed(&chunk);
        }
        s.feed(br#""}},{"Id":"small"}]"#);
        assert!(s.key.capacity() <= 64 && s.value.capacity() <= 1024);
        assert_eq!(s.finish().unwrap(), ["big", "small"]);
    }

    #[test]
    fn lines_over_the_limit_are_skipped_and_counted() {
        let mut l = Lines::new(8);
        let mut got = l.feed(b"{\"a\":1}\n{\"too\":\"long\"}\n");
        got.extend(l.feed(b"\n{\"b\":2}"));
        got.extend(l.feed(b"\n"));
        assert_eq!(got, [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(l.skipped(), 1);
    }

    fn objects() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[a-f0-9]{1,64}", "[ -~]{0,40}"), 0..8)
    }

    proptest! {
        /// However the body is split into chunks, the ids come out the same,
        /// and they are those of the objects, whatever the other fields hold.
        #[test]
        fn chunking_never_changes_the_ids(objects in objects(), cuts in prop::collection::vec(0usize..2000, 0..6)) {
            let body = format!(
                "[{}]",
                objects
                    .iter()
                    .map(|(id, other)| format!(
                        "{{\"Labels\":{{\"Id\":{other:?}}},\"Id\":\"{id}\",\"Command\":{other:?}}}"
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let bytes = body.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for p in points {
                chunks.push(&bytes[at..p]);
                at = p;
            }
            chunks.push(&bytes[at..]);
            let want: Vec<String> = objects.iter().map(|(id, _)| id.clone()).collect();
            prop_assert_eq!(scan(&chunks).unwrap(), want);
        }

        #[test]
        fn lines_split_anywhere_come_out_whole(lines in prop::collection::vec("[ -~]{1,20}", 0..10), cut in 0usize..400) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let bytes = text.as_bytes();
            let cut = cut % (bytes.len() + 1);
            let mut l = Lines::new(16);
            let mut got = l.feed(&bytes[..cut]);
            got.extend(l.feed(&bytes[cut..]));
            let want: Vec<Vec<u8>> = lines.iter().filter(|x| x.len() <= 16).map(|x| x.as_bytes().to_vec()).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(l.skipped(), lines.iter().filter(|x| x.len() > 16).count());
        }
    }
}
