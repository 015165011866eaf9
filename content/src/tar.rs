//! A streaming tar reader with caps: ustar, GNU long names (`L`, `K`) and
//! PAX headers (`x`; `g` is skipped).
//!
//! Written here rather than taken from a crate because a GNU long name or a
//! PAX header is a length written by the archive: a general reader holds it
//! whole before anyone can look at it, and a hostile 1 GB long name is then
//! 1 GB of memory. Here every such length is checked against the path cap
//! *before* it is read, every entry counts against the entry cap, and a
//! header that does not check out is an error, never a guess.

use std::io::{self, Read};

use crate::ContentError;

const BLOCK: usize = 512;
/// The largest PAX header read (paths, link targets and a few numbers).
const MAX_PAX: u64 = 64 * 1024;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A hard link to an earlier entry of the same archive.
    Hardlink,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A directory.
    Dir,
    /// A named pipe.
    Fifo,
    /// Any other type flag.
    Other,
}

/// One entry's header, long names and PAX values applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The path as written (not yet normalised).
    pub path: String,
    /// The entry's type.
    pub kind: EntryKind,
    /// Permission bits (and set-id bits).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Bytes of data that follow.
    pub size: u64,
    /// Link target, for links.
    pub link: String,
}

/// Caps of one reader (the byte cap sits on the reader underneath).
#[derive(Debug, Clone, Copy)]
pub struct TarCaps {
    /// The longest path or link target.
    pub max_path: usize,
    /// The most entries.
    pub max_entries: u64,
}

/// Reads entries one after the other from `inner`.
#[derive(Debug)]
pub struct TarReader<R> {
    inner: R,
    input: String,
    caps: TarCaps,
    entries: u64,
    /// Data of the current entry not read yet.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    done: bool,
}

impl<R: Read> TarReader<R> {
    /// A reader of `inner`, named `input` in errors.
    pub fn new(inner: R, input: &str, caps: TarCaps) -> Self {
        TarReader {
            inner,
            input: input.to_owned(),
            caps,
            entries: 0,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// Entries read so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The reader underneath, for reading what follows the archive.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn corrupt(&self, reason: impl Into<String>) -> ContentError {
        ContentError::Corrupt {
            input: self.input.clone(),
            reason: reason.into(),
        }
    }

    fn skip(&mut self, n: u64) -> Result<(), ContentError> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
            .map_err(|e| ContentError::io(&self.input, e))?;
        if copied < n {
            return Err(self.corrupt("cut short inside an entry"));
        }
        Ok(())
    }

    /// Reads a block; `None` at a clean end of input between entries.
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>, ContentError> {
        let mut buf = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(self.corrupt("cut short inside a header")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ContentError::io(&self.input, e)),
            }
        }
        Ok(Some(buf))
    }

    /// Reads `size` bytes of a long name or PAX header, after checking
    /// `size` against `cap`.
    fn small_data(&mut self, size: u64, cap: u64) -> Result<Vec<u8>, ContentError> {
        if size > cap {
            return Err(ContentError::OverCap {
                input: self.input.clone(),
                what: "path bytes",
                cap,
            });
        }
        let mut data = vec![0u8; size as usize];
        self.inner
            .read_exact(&mut data)
            .map_err(|e| ContentError::io(&self.input, e))?;
        self.skip(pad(size))?;
        Ok(data)
    }

    /// The next entry's header, `None` at the end of the archive. What is
    /// left of the previous entry's data is skipped.
    pub fn next_header(&mut self) -> Result<Option<Header>, ContentError> {
        if self.done {
            return Ok(None);
        }
        self.skip(self.remaining + self.padding)?;
        self.remaining = 0;
        self.padding = 0;
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        let mut pax: Vec<(String, String)> = Vec::new();
        loop {
            let Some(block) = self.block()? else {
                // No end-of-archive blocks: tolerated, as GNU tar does.
                self.done = true;
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            self.entries += 1;
            if self.entries > self.caps.max_entries {
                return Err(ContentError::OverCap {
                    input: self.input.clone(),
                    what: "entries",
                    cap: self.caps.max_entries,
                });
            }
            self.check_sum(&block)?;
            let size = self.number(&block[124..136], "size")?;
            let path_cap = self.caps.max_path as u64 + 1;
            match block[156] {
                b'L' => {
                    long_name = Some(text(&self.small_data(size, path_cap)?));
                    continue;
                }
                b'K' => {
                    long_link = Some(text(&self.small_data(size, path_cap)?));
                    continue;
                }
                b'x' => {
                    let data = self.small_data(size, MAX_PAX)?;
                    pax = parse_pax(&data).ok_or_else(|| self.corrupt("malformed PAX header"))?;
                    continue;
                }
                b'g' => {
                    self.skip(size + pad(size))?;
                    continue;
                }
                _ => {}
            }
            let mut header = Header {
                path: long_name.take().unwrap_or_else(|| ustar_path(&block)),
                kind: kind(block[156]),
                mode: self.number(&block[100..108], "mode")? as u32,
                uid: self.number(&block[108..116], "uid")?,
                gid: self.number(&block[116..124], "gid")?,
                size,
                link: long_link.take().unwrap_or_else(|| text(&block[157..257])),
            };
            for (key, value) in pax.drain(..) {
                match key.as_str() {
                    "path" => header.path = value,
                    "linkpath" => header.link = value,
                    "size" => {
                        header.size = value.parse().map_err(|_| self.corrupt("bad PAX size"))?
                    }
                    "uid" => header.uid = value.parse().map_err(|_| self.corrupt("bad PAX uid"))?,
                    "gid" => header.gid = value.parse().map_err(|_| self.corrupt("bad PAX gid"))?,
                    _ => {}
                }
            }
            if header.path.len() > self.caps.max_path || header.link.len() > self.caps.max_path {
                return Err(ContentError::OverCap {
                    input: self.input.clone(),
                    what: "path bytes",
                    cap: self.caps.max_path as u64,
                });
            }
            // Links and directories carry no data, whatever their size says
            // (GNU tar writes 0; a hostile one may not: it is skipped).
            self.remaining = header.size;
            self.padding = pad(header.size);
            return Ok(Some(header));
        }
    }

    /// The current entry's data, read as it arrives.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { tar: self }
    }

    fn check_sum(&self, block: &[u8; BLOCK]) -> Result<(), ContentError> {
        let written = self.number(&block[148..156], "checksum")?;
        let unsigned: u64 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        let signed: i64 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    i64::from(b as i8)
                }
            })
            .sum();
        if written == unsigned || written as i64 == signed {
            Ok(())
        } else {
            Err(self.corrupt(format!(
                "header checksum {written} does not match its content ({unsigned})"
            )))
        }
    }

    /// A numeric field: octal (NUL or space padded), or GNU base-256.
    fn number(&self, field: &[u8], name: &str) -> Result<u64, ContentError> {
        if field.first().is_some_and(|b| b & 0x80 != 0) {
            let mut n: u64 = u64::from(field[0] & 0x7f);
            for &b in &field[1..] {
                n = n
                    .checked_mul(256)
                    .and_then(|n| n.checked_add(u64::from(b)))
                    .ok_or_else(|| self.corrupt(format!("{name} too large")))?;
            }
            return Ok(n);
        }
        let digits: Vec<u8> = field
            .iter()
            .copied()
            .skip_while(|&b| b == b' ' || b == 0)
            .take_while(|&b| b != b' ' && b != 0)
            .collect();
        if digits.is_empty() {
            return Ok(0);
        }
        let s =
            std::str::from_utf8(&digits).map_err(|_| self.corrupt(format!("bad {name} field")))?;
        u64::from_str_radix(s, 8).map_err(|_| self.corrupt(format!("bad {name} field {s:?}")))
    }
}

/// The data of the current entry.
#[derive(Debug)]
pub struct EntryData<'a, R> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.tar.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.tar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive cut short inside an entry",
            ));
        }
        self.tar.remaining -= n as u64;
        Ok(n)
    }
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// A NUL-terminated field as text (lossy: paths need not be UTF-8).
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn ustar_path(block: &[u8; BLOCK]) -> String {
    let name = text(&block[0..100]);
    if &block[257..262] == b"ustar" {
        let prefix = text(&block[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

fn kind(flag: u8) -> EntryKind {
    match flag {
        b'0' | 0 | b'7' => EntryKind::File,
        b'1' => EntryKind::Hardlink,
        b'2' => EntryKind::Symlink,
        b'3' => EntryKind::CharDevice,
        b'4' => EntryKind::BlockDevice,
        b'5' => EntryKind::Dir,
        b'6' => EntryKind::Fifo,
        _ => EntryKind::Other,
    }
}

/// PAX records: `<len> <key>=<value>\n`, `len` counting the whole record.
fn parse_pax(mut data: &[u8]) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let space = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return None;
        }
        let record = &data[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=')?;
        out.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
        ));
        data = &data[len..];
    }
    Some(out)
}

/// Builds tar archives, for tests and fuzz seeds.
pub mod build {
    /// An entry to write.
    #[derive(Debug, Clone)]
    pub struct Item {
        /// Path.
        pub path: String,
        /// Type flag (`b'0'` file, `b'2'` symlink, `b'5'` dir, …).
        pub flag: u8,
        /// Link target.
        pub link: String,
        /// Mode.
        pub mode: u32,
        /// Data.
        pub data: Vec<u8>,
    }

    /// A regular file.
    pub fn file(path: &str, data: &[u8]) -> Item {
        Item {
            path: path.to_owned(),
            flag: b'0',
            link: String::new(),
            mode: 0o644,
            data: data.to_vec(),
        }
    }

    /// A symbolic link.
    pub fn symlink(path: &str, target: &str) -> Item {
        Item {
            path: path.to_owned(),
            flag: b'2',
            link: target.to_owned(),
            mode: 0o777,
            data: Vec::new(),
        }
    }

    /// A directory.
    pub fn dir(path: &str) -> Item {
        Item {
            path: path.to_owned(),
            flag: b'5',
            link: String::new(),
            mode: 0o755,
            data: Vec::new(),
        }
    }

    fn header(path: &[u8], flag: u8, link: &[u8], mode: u32, size: u64) -> [u8; 512] {
        let mut h = [0u8; 512];
        let n = path.len().min(100);
        h[..n].copy_from_slice(&path[..n]);
        let oct = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}", w = width - 1);
            h[at..at + width - 1].copy_from_slice(&s.as_bytes()[s.len() - (width - 1)..]);
        };
        oct(&mut h, 100, 8, u64::from(mode));
        oct(&mut h, 108, 8, 0);
        oct(&mut h, 116, 8, 0);
        oct(&mut h, 124, 12, size);
        oct(&mut h, 136, 12, 0);
        h[156] = flag;
        let n = link.len().min(100);
        h[157..157 + n].copy_from_slice(&link[..n]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        h
    }

    fn push_data(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(data);
        out.resize(out.len() + super::pad(data.len() as u64) as usize, 0);
    }

    /// A tar archive of `items`; paths over 100 bytes get a GNU long name.
    pub fn tar(items: &[Item]) -> Vec<u8> {
        let mut out = Vec::new();
        for item in items {
            if item.path.len() > 100 {
                let name = format!("{}\0", item.path);
                out.extend_from_slice(&header(b"././@LongLink", b'L', b"", 0, name.len() as u64));
                push_data(&mut out, name.as_bytes());
            }
            out.extend_from_slice(&header(
                item.path.as_bytes(),
                item.flag,
                item.link.as_bytes(),
                item.mode,
                item.data.len() as u64,
            ));
            push_data(&mut out, &item.data);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    /// A header announcing a GNU long name of `size` bytes, and nothing
    /// after it: what a hostile archive sends to make a reader allocate.
    pub fn long_name_header(size: u64) -> Vec<u8> {
        header(b"././@LongLink", b'L', b"", 0, size).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const CAPS: TarCaps = TarCaps {
        max_path: 4096,
        max_entries: 100,
    };

    fn all(data: &[u8], caps: TarCaps) -> Result<Vec<(Header, Vec<u8>)>, ContentError> {
        let mut tar = TarReader::new(data, "t.tar", caps);
        let mut out = Vec::new();
        while let Some(h) = tar.next_header()? {
            let mut d = Vec::new();
            tar.data()
                .read_to_end(&mut d)
                .map_err(|e| ContentError::io("t.tar", e))?;
            out.push((h, d));
        }
        Ok(out)
    }

    #[test]
    fn files_links_dirs_and_long_names_read_back() {
        let long = format!("{}/file", "d".repeat(150));
        let data = tar(&[
            dir("etc/"),
            file("etc/hostname", b"box\n"),
            symlink("usr/bin/python3", "python3.12"),
            file(&long, b"x"),
        ]);
        let got = all(&data, CAPS).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0.kind, EntryKind::Dir);
        assert_eq!(got[1].0.path, "etc/hostname");
        assert_eq!(got[1].1, b"box\n");
        assert_eq!(got[1].0.mode, 0o644);
        assert_eq!(got[2].0.kind, EntryKind::Symlink);
        assert_eq!(got[2].0.link, "python3.12");
        assert_eq!(got[3].0.path, long);
    }

    #[test]
    fn a_huge_long_name_is_refused_before_it_is_read() {
        let mut data = long_name_header(1 << 30);
        data.extend_from_slice(&[b'a'; 8192]);
        let err = all(&data, CAPS).unwrap_err();
        assert!(
            matches!(
                err,
                ContentError::OverCap {
                    what: "path bytes",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn entries_over_the_cap_are_an_error_not_a_cut() {
        let items: Vec<_> = (0..5).map(|i| file(&format!("f{i}"), b"")).collect();
        let caps = TarCaps {
            max_entries: 4,
            ..CAPS
        };
        let err = all(&tar(&items), caps).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.tar: over the cap of 4 entries; not read further"
        );
        assert_eq!(all(&tar(&items[..4]), caps).unwrap().len(), 4);
    }

    #[test]
    fn a_bad_checksum_or_a_cut_archive_is_corrupt() {
        let mut data = tar(&[file("a", b"hello")]);
        data[0] = b'b';
        assert!(matches!(
            all(&data, CAPS),
            Err(ContentError::Corrupt { .. })
        ));
        let data = tar(&[file("a", &[7u8; 2000])]);
        let err = all(&data[..1024], CAPS).unwrap_err();
        assert!(matches!(err, ContentError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn pax_records_set_path_and_size() {
        let recs = parse_pax(b"19 path=some/where\n").unwrap();
        assert_eq!(recs, vec![("path".to_owned(), "some/where".to_owned())]);
        assert!(parse_pax(b"99 path=x\n").is_none());
    }
}
