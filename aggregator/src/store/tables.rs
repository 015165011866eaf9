//! The tables both backends keep, column by column (SQLite's schema
//! version 5 is PostgreSQL's version 1), for what moves rows between them
//! (`import.rs`): declared once, read by the SQLite side and written by the
//! PostgreSQL side.

/// What a column holds, on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `TEXT NOT NULL`.
    Text,
    /// `TEXT`, possibly null.
    OptText,
    /// `BIGINT NOT NULL` (SQLite's `INTEGER`).
    Int8,
    /// `BIGINT`, possibly null.
    OptInt8,
    /// PostgreSQL's `INTEGER NOT NULL` (SQLite's `INTEGER`).
    Int4,
    /// `BYTEA NOT NULL` (SQLite's `BLOB`).
    Bytes,
}

/// A table as both backends have it.
#[derive(Debug)]
pub(super) struct Table {
    /// Its name.
    pub name: &'static str,
    /// Its columns, in the order they are read and written.
    pub columns: &'static [(&'static str, Kind)],
    /// The column PostgreSQL numbers by itself (`GENERATED ALWAYS AS
    /// IDENTITY`), whose sequence goes on after the rows copied; the first
    /// column is the one rows are read in order of.
    pub identity: Option<&'static str>,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// A text, or null.
    Text(Option<String>),
    /// A 64-bit integer, or null.
    Int8(Option<i64>),
    /// A 32-bit integer.
    Int4(i32),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// Every table, in the order it is copied.
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "hosts",
        columns: &[
            ("host_id", Kind::Text),
            ("environment", Kind::Text),
            ("snapshot", Kind::Bytes),
            ("content_hash", Kind::Text),
            ("boot_id", Kind::Text),
            ("sequence", Kind::Int8),
            ("received_at_ms", Kind::Int8),
            ("last_seen_ms", Kind::Int8),
            ("engine_state", Kind::Int4),
            ("container_order", Kind::OptText),
        ],
        identity: None,
    },
    Table {
        name: "containers",
        columns: &[
            ("host_id", Kind::Text),
            ("container_id", Kind::Text),
            ("body", Kind::Bytes),
        ],
        identity: None,
    },
    Table {
        name: "liveness",
        columns: &[
            ("host_id", Kind::Text),
            ("last_seen_ms", Kind::Int8),
            ("engine_state", Kind::Int4),
        ],
        identity: None,
    },
    Table {
        name: "changes",
        columns: &[
            ("id", Kind::Int8),
            ("host_id", Kind::Text),
            ("environment", Kind::Text),
            ("service", Kind::Text),
            ("container", Kind::Text),
            ("what", Kind::Text),
            ("old_image", Kind::Text),
            ("new_image", Kind::Text),
            ("observed_at_ms", Kind::Int8),
            ("received_at_ms", Kind::Int8),
        ],
        identity: Some("id"),
    },
    Table {
        name: "findings",
        columns: &[
            ("row_id", Kind::Int8),
            ("id", Kind::Text),
            ("kind", Kind::Text),
            ("severity", Kind::Text),
            ("service", Kind::Text),
            ("environments", Kind::Text),
            ("key", Kind::Text),
            ("host", Kind::Text),
            ("summary", Kind::Text),
            ("first_seen_ms", Kind::Int8),
            ("last_seen_ms", Kind::Int8),
            ("resolved_ms", Kind::OptInt8),
        ],
        identity: Some("row_id"),
    },
    Table {
        name: "alerts",
        columns: &[
            ("id", Kind::Text),
            ("body", Kind::Text),
            ("resolved_ms", Kind::OptInt8),
        ],
        identity: None,
    },
    Table {
        name: "alert_outbox",
        columns: &[
            ("seq", Kind::Int8),
            ("sink", Kind::Text),
            ("event", Kind::Text),
        ],
        identity: Some("seq"),
    },
];

/// How many rows travel together.
pub(super) const BATCH_ROWS: usize = 1_000;
