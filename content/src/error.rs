//! What can go wrong reading an image, each error naming its input.

/// Why an image archive, a layer or an entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The input could not be read.
    #[error("{input}: {source}")]
    Io {
        /// The archive, layer or entry being read.
        input: String,
        /// The reader's error.
        source: std::io::Error,
    },
    /// A tar header is not one (bad checksum, bad number, cut short).
    #[error("{input}: not a tar archive or a corrupt one: {reason}")]
    Corrupt {
        /// The archive or layer.
        input: String,
        /// What was wrong.
        reason: String,
    },
    /// A cap of [`crate::Limits`] was reached: nothing is cut silently.
    #[error("{input}: over the cap of {cap} {what}; not read further")]
    OverCap {
        /// The archive, layer or entry.
        input: String,
        /// What is counted: "bytes", "entries", "layers", "path bytes".
        what: &'static str,
        /// The cap.
        cap: u64,
    },
    /// An entry's path leaves the root (`../`).
    #[error("{input}: entry path {path:?} leaves the root")]
    PathEscapes {
        /// The layer.
        input: String,
        /// The path as written.
        path: String,
    },
    /// The archive does not say what it holds, or says it wrongly.
    #[error("{input}: {reason}")]
    Layout {
        /// The archive.
        input: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The archive holds no image of that name or id.
    #[error("{input}: no image {name:?} in it (it holds: {held})")]
    NoSuchImage {
        /// The archive.
        input: String,
        /// The name asked for.
        name: String,
        /// The names and ids it holds.
        held: String,
    },
}

impl ContentError {
    /// An I/O error of `input`, told apart from a cap reached through a
    /// [`crate::bounded::Capped`] reader.
    pub fn io(input: &str, source: std::io::Error) -> Self {
        if let Some(cap) = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<crate::bounded::CapReached>())
        {
            return ContentError::OverCap {
                input: input.to_owned(),
                what: "bytes",
                cap: cap.0,
            };
        }
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            return ContentError::Corrupt {
                input: input.to_owned(),
                reason: "cut short (unexpected end of data)".to_owned(),
            };
        }
        ContentError::Io {
            input: input.to_owned(),
            source,
        }
    }
}
