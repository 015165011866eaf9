//! A streaming reader of the tar the engine's archive API sends, holding at
//! most what the caller keeps.
//!
//! It is fed chunks as they arrive and hands over one [`Entry`] per file,
//! directory or link. The content of a regular file is kept only when the
//! caller's `keep` says so (its size is known from the header first), else
//! skipped as it streams by: a 10 MB file costs bandwidth, never memory.
//! Understands ustar headers, GNU long names (`L`, `K`) and PAX extended
//! headers (`path`, `linkpath`, `size`), which Go's archive/tar (the
//! engine's) writes for long paths; extended headers are bounded to 64 KiB.

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (hard link, device, fifo).
    Other,
}

/// One entry of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name in the archive (relative, `/`-separated, no trailing `/`).
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its size in bytes (files).
    pub size: u64,
    /// Its modification time, seconds since the epoch.
    pub mtime: u64,
    /// A symlink's target.
    pub link: String,
    /// The content, when kept.
    pub content: Option<Vec<u8>>,
}

/// Longest extended header read (GNU long name, PAX record set).
const MAX_EXTENDED: u64 = 64 * 1024;

#[derive(Debug)]
enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Inside an entry's data: `left` bytes, then `pad` bytes of padding.
    Data { left: u64, pad: u64, keep: Keep },
    /// Two zero blocks seen, or an unreadable header.
    Done,
}

#[derive(Debug)]
enum Keep {
    /// Skip it.
    No,
    /// The content of the pending entry.
    Content,
    /// A GNU long name (`L`) or link name (`K`), or a PAX header (`x`).
    Extended(u8),
}

/// The reader; see the module doc.
#[derive(Debug)]
pub struct TarReader {
    state: State,
    buf: Vec<u8>,
    pending: Option<Entry>,
    long_name: Option<String>,
    long_link: Option<String>,
    pax_size: Option<u64>,
    zero_blocks: u8,
    malformed: bool,
}

impl Default for TarReader {
    fn default() -> Self {
        Self {
            state: State::Header,
            buf: Vec::new(),
            pending: None,
            long_name: None,
            long_link: None,
            pax_size: None,
            zero_blocks: 0,
            malformed: false,
        }
    }
}

impl TarReader {
    /// Feeds `data`; every entry completed is passed to `out`. `keep` is
    /// asked, with the entry's header (content `None`), whether to keep a
    /// regular file's content.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        keep: &mut dyn FnMut(&Entry) -> bool,
        out: &mut dyn FnMut(Entry),
    ) {
        while !data.is_empty() {
            match &mut self.state {
                State::Done => return,
                State::Header => {
                    let need = 512 - self.buf.len();
                    let take = need.min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == 512 {
                        let block = std::mem::take(&mut self.buf);
                        self.header(&block, keep, out);
                    }
                }
                State::Data { left, pad, keep: k } => {
                    if *left > 0 {
                        let take = (*left).min(data.len() as u64) as usize;
                        if !matches!(k, Keep::No) {
                            self.buf.extend_from_slice(&data[..take]);
                        }
                        *left -= take as u64;
                        data = &data[take..];
                        continue;
                    }
                    if *pad > 0 {
                        let take = (*pad).min(data.len() as u64) as usize;
                        *pad -= take as u64;
                        data = &data[take..];
                        if *pad > 0 {
                            continue;
                        }
                    }
                    self.finish_data(out);
                }
            }
        }
        // Data that ends exactly at an entry's end completes it now.
        if let State::Data {
            left: 0, pad: 0, ..
        } = self.state
        {
            self.finish_data(out);
        }
    }

    /// Whether the stream ended cleanly (or at least not inside an entry):
    /// a truncated or malformed archive is `false`.
    pub fn is_complete(&self) -> bool {
        !self.malformed && matches!(self.state, State::Header | State::Done) && self.buf.is_empty()
    }

    fn finish_data(&mut self, out: &mut dyn FnMut(Entry)) {
        let State::Data { keep, .. } = std::mem::replace(&mut self.state, State::Header) else {
            return;
        };
        let data = std::mem::take(&mut self.buf);
        match keep {
            Keep::No => {
                if let Some(entry) = self.pending.take() {
                    out(entry);
                }
            }
            Keep::Content => {
                if let Some(mut entry) = self.pending.take() {
                    entry.content = Some(data);
                    out(entry);
                }
            }
            Keep::Extended(b'L') => self.long_name = Some(c_string(&data)),
            Keep::Extended(b'K') => self.long_link = Some(c_string(&data)),
            Keep::Extended(_) => self.pax(&data),
        }
    }

    fn pax(&mut self, data: &[u8]) {
        // Records: "<len> <key>=<value>\n".
        let mut rest = data;
        while let Some(space) = rest.iter().position(|&b| b == b' ') {
            let Some(len) = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|&l| l > space && l <= rest.len())
            else {
                break;
            };
            let record = &rest[space + 1..len];
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            if let Some(eq) = record.iter().position(|&b| b == b'=') {
                let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
                match &record[..eq] {
                    b"path" => self.long_name = Some(value),
                    b"linkpath" => self.long_link = Some(value),
                    b"size" => self.pax_size = value.parse().ok(),
                    _ => {}
                }
            }
            rest = &rest[len..];
        }
    }

    fn header(
        &mut self,
        block: &[u8],
        keep: &mut dyn FnMut(&Entry) -> bool,
        out: &mut dyn FnMut(Entry),
    ) {
        if block.iter().all(|&b| b == 0) {
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::Done;
            }
            return;
        }
        self.zero_blocks = 0;
        let Some(size) = octal(&block[124..136]) else {
            self.malformed = true;
            self.state = State::Done;
            return;
        };
        let typeflag = block[156];
        let size = match typeflag {
            b'L' | b'K' | b'x' | b'g' => size,
            _ => self.pax_size.take().unwrap_or(size),
        };
        let pad = (512 - size % 512) % 512;
        if matches!(typeflag, b'L' | b'K' | b'x' | b'g') {
            let keep = if size <= MAX_EXTENDED && typeflag != b'g' {
                Keep::Extended(typeflag)
            } else {
                Keep::No
            };
            self.state = State::Data {
                left: size,
                pad,
                keep,
            };
            return;
        }
        let mut name = self.long_name.take().unwrap_or_else(|| {
            let prefix = c_string(&block[345..500]);
            let base = c_string(&block[..100]);
            if prefix.is_empty() || &block[257..262] != b"ustar" {
                base
            } else {
                format!("{prefix}/{base}")
            }
        });
        while name.ends_with('/') {
            name.pop();
        }
        let kind = match typeflag {
            b'0' | 0 | b'7' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            _ => Kind::Other,
        };
        let entry = Entry {
            name,
            kind,
            size: if kind == Kind::File { size } else { 0 },
            mtime: octal(&block[136..148]).unwrap_or(0),
            link: self
                .long_link
                .take()
                .unwrap_or_else(|| c_string(&block[157..257])),
            content: None,
        };
        let keep = if kind == Kind::File && keep(&entry) {
            Keep::Content
        } else {
            Keep::No
        };
        self.pending = Some(entry);
        self.state = State::Data {
            left: size,
            pad,
            keep,
        };
        if size == 0 {
            self.finish_data(out);
        }
    }
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A header number: octal ASCII, or GNU's base-256 (high bit set).
fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One ustar entry: header and padded content.
    fn entry(name: &str, typeflag: u8, content: &[u8], link: &str) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000007");
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..262].copy_from_slice(b"ustar");
        let mut out = h;
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn read_all(archive: &[u8], chunk: usize, keep_max: u64) -> (Vec<Entry>, bool) {
        let mut reader = TarReader::default();
        let mut out = Vec::new();
        for piece in archive.chunks(chunk) {
            reader.feed(piece, &mut |e| e.size <= keep_max, &mut |e| out.push(e));
        }
        (out, reader.is_complete())
    }

    fn archive() -> Vec<u8> {
        let long = format!("app/{}.yaml", "n".repeat(120));
        let mut a = entry("app/", b'5', b"", "");
        a.extend(entry("app/a.yaml", b'0', b"a: 1\n", ""));
        a.extend(entry("././@LongLink", b'L', long.as_bytes(), ""));
        a.extend(entry("app/trunc", b'0', b"b: 2\n", ""));
        a.extend(entry("app/big", b'0', &[b'x'; 2000], ""));
        a.extend(entry("app/link", b'2', b"", "a.yaml"));
        a.extend([0u8; 1024]);
        a
    }

    #[test]
    fn entries_come_whole_whatever_the_chunking() {
        for chunk in [1, 7, 511, 512, 513, 100_000] {
            let (entries, complete) = read_all(&archive(), chunk, 1000);
            assert!(complete, "chunk {chunk}");
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            let long = format!("app/{}.yaml", "n".repeat(120));
            assert_eq!(
                names,
                ["app", "app/a.yaml", long.as_str(), "app/big", "app/link"],
                "chunk {chunk}"
            );
            assert_eq!(entries[1].content.as_deref(), Some(&b"a: 1\n"[..]));
            assert_eq!(entries[2].content.as_deref(), Some(&b"b: 2\n"[..]));
            // Over what the caller keeps: its size, never its content.
            assert_eq!(entries[3].size, 2000);
            assert_eq!(entries[3].content, None);
            assert_eq!(entries[4].kind, Kind::Symlink);
            assert_eq!(entries[4].link, "a.yaml");
        }
    }

    #[test]
    fn a_truncated_archive_is_not_complete() {
        let a = archive();
        let (_, complete) = read_all(&a[..512 + 100], 64, 1000);
        assert!(!complete);
    }

    #[test]
    fn pax_path_and_size_override_the_header() {
        // "<len> key=value\n", the length counting its own digits (two here).
        let record = |k: &str, v: &str| {
            let body = format!(" {k}={v}\n");
            format!("{}{body}", body.len() + 2)
        };
        let pax = record("path", "app/from-pax.yaml");
        let mut a = entry("PaxHeaders/x", b'x', pax.as_bytes(), "");
        a.extend(entry("app/short", b'0', b"c: 3\n", ""));
        a.extend([0u8; 1024]);
        let (entries, complete) = read_all(&a, 100, 1000);
        assert!(complete);
        assert_eq!(entries[0].name, "app/from-pax.yaml");
        assert_eq!(entries[0].content.as_deref(), Some(&b"c: 3\n"[..]));
    }
}
