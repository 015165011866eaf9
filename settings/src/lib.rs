//! One configuration mechanism for both envparity daemons (`envparity-agent`
//! and `envparity serve`).
//!
//! A setting is declared once, as a [`Setting`]: its key (which is also its
//! config-file key and its clap id), its long flag, its environment
//! variable, its default, how a text is parsed, how a value is checked and
//! how it is shown. A binary lists its settings in one [`Table`] (the
//! [`declare!`] macro writes both at once). Everything else is derived:
//!
//! - the clap arguments, each help text ending in `[env: VAR]` and
//!   `[default: …]` ([`Table::augment`]);
//! - the config file: TOML whose top-level keys are the table's, every
//!   other key refused with its line ([`File`]);
//! - the precedence: flag, then environment variable, then file, then
//!   default — the first source that sets a setting gives its whole value
//!   (lists are not merged across sources) ([`Sources::get`]);
//! - errors that name the setting and where its value came from: the flag,
//!   the variable, or the file, line and key ([`Origin`], [`Error`]);
//! - the `check-config` summary: one row per setting with its value and its
//!   origin, secrets redacted ([`Report`]).
//!
//! Environment variables are read through [`EnvSource`], so tests inject
//! them instead of mutating the process environment (unsound with threads
//! running). Nothing here knows either daemon: the tables live in
//! `agent/src/config/settings.rs` and `aggregator/src/config/serve.rs`;
//! the settings both have are declared once in [`common`].
#![forbid(unsafe_code)]

mod args;
pub mod common;
mod env;
mod error;
mod file;
pub mod parse;
mod report;
mod setting;
mod sources;
#[cfg(test)]
mod tests;

pub use args::{Flags, Table};
pub use env::{EnvSource, ProcessEnv};
pub use error::{Error, Origin};
pub use file::File;
pub use report::{Report, Row};
pub use setting::{Describe, Flag, List, Setting, Show};
pub use sources::{Resolved, Sources};

/// Declares settings as constants and the [`Table`] listing them, in the
/// order `--help` and `check-config` show them:
///
/// ```
/// use envparity_settings::{Setting, parse};
/// envparity_settings::declare! {
///     /// Every setting of the example.
///     pub TABLE;
///     /// Where to listen.
///     pub LISTEN: Setting<std::net::SocketAddr> =
///         Setting::new("listen", parse::socket_addr).var("EXAMPLE_LISTEN").help("Where to listen.");
/// }
/// assert_eq!(TABLE.settings().len(), 1);
/// ```
#[macro_export]
macro_rules! declare {
    (
        $(#[$tmeta:meta])* $tvis:vis $table:ident;
        $( $(#[$meta:meta])* $vis:vis $name:ident : $ty:ty = $value:expr; )*
    ) => {
        $( $(#[$meta])* $vis const $name: $ty = $value; )*
        $(#[$tmeta])* $tvis const $table: $crate::Table = $crate::Table::new(&[ $( &$name ),* ]);
    };
}
