//! [`Table`]: a binary's settings, in order, and the clap arguments they
//! make; [`Flags`]: what the command line set.

use std::path::Path;

use clap::{ArgMatches, Command};

use crate::error::Error;
use crate::file::File;
use crate::setting::{Describe, Flag};

/// A binary's settings, in the order `--help` and `check-config` show them.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    settings: &'static [&'static dyn Describe],
}

impl Table {
    /// The table of `settings` (see [`crate::declare!`]).
    pub const fn new(settings: &'static [&'static dyn Describe]) -> Self {
        Table { settings }
    }

    /// Every setting, in order.
    pub fn settings(&self) -> &'static [&'static dyn Describe] {
        self.settings
    }

    /// Reads the config file at `path`: refuses keys no setting declares
    /// for the file, and converts every value (a typo must not lie in wait
    /// for the day a flag stops overriding it).
    pub fn read_file(&self, path: &Path) -> Result<File, Error> {
        self.check_file(File::read(path)?)
    }

    /// [`Table::read_file`] of `text`, as if read from `path`.
    pub fn parse_file(&self, path: &Path, text: String) -> Result<File, Error> {
        self.check_file(File::parse(path, text)?)
    }

    fn check_file(&self, file: File) -> Result<File, Error> {
        file.only_keys(&self.file_keys())?;
        for setting in self.settings {
            if setting.in_file() {
                setting.check_file(&file)?;
            }
        }
        Ok(file)
    }

    /// The keys the config file may set.
    pub fn file_keys(&self) -> Vec<&'static str> {
        self.settings
            .iter()
            .filter(|s| s.in_file())
            .map(|s| s.key())
            .collect()
    }

    /// Adds an argument per flag to `cmd`; each help ends with its variable
    /// and its default. `global`: the flags go before or after any
    /// subcommand.
    pub fn augment(&self, cmd: Command, global: bool) -> Command {
        self.settings.iter().fold(cmd, |cmd, setting| {
            let Some(arg) = setting.arg() else {
                return cmd;
            };
            let help = format!("{}{}", setting.help(), suffix(*setting));
            cmd.arg(arg.help(help).global(global))
        })
    }

    /// The settings as a Markdown table (key, flag, variable, default,
    /// meaning), for the documentation.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| key | flag | variable | default | meaning |\n| --- | --- | --- | --- | --- |\n",
        );
        let code = |s: Option<String>| s.map_or_else(|| "—".to_owned(), |s| format!("`{s}`"));
        for s in self.settings {
            let key = s.in_file().then(|| s.key().to_owned());
            let flag = s.flag().name().map(|f| format!("--{f}"));
            let var = s.var().map(str::to_owned);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                code(key),
                code(flag),
                code(var),
                cell(&s.default_text().unwrap_or_else(|| "—".to_owned())),
                cell(s.help()),
            ));
        }
        out
    }

    /// Checks that `doc` holds [`Table::markdown`] between the line that
    /// starts `<!-- BEGIN settings NAME ` and the line `<!-- END settings
    /// NAME -->`, so the documentation cannot drift from the declarations;
    /// with `ENVPARITY_BLESS` set, writes it there instead.
    pub fn check_doc(&self, doc: &Path, name: &str) -> Result<(), String> {
        let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
        let begin = format!("<!-- BEGIN settings {name} ");
        let end = format!("<!-- END settings {name} -->");
        let start = text
            .find(&begin)
            .and_then(|i| text[i..].find('\n').map(|j| i + j + 1))
            .ok_or_else(|| format!("{}: no line starting {begin:?}", doc.display()))?;
        let stop = text[start..]
            .find(&end)
            .map(|i| start + i)
            .ok_or_else(|| format!("{}: no {end:?} after {begin:?}", doc.display()))?;
        let want = self.markdown();
        if text[start..stop] == want {
            return Ok(());
        }
        if std::env::var_os("ENVPARITY_BLESS").is_some() {
            let updated = format!("{}{want}{}", &text[..start], &text[stop..]);
            return std::fs::write(doc, updated).map_err(|e| format!("{}: {e}", doc.display()));
        }
        Err(format!(
            "{}: the {name} settings differ from their declarations; run with ENVPARITY_BLESS=1 \
             to write them, or put there:\n{want}",
            doc.display()
        ))
    }
}

/// Text in a Markdown table cell: `|` would end the cell, `<…>` is a tag.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// ` [env: VAR] [default: …]`, as clap words its own.
fn suffix(setting: &dyn Describe) -> String {
    let mut suffix = String::new();
    if let Some(var) = setting.var() {
        suffix.push_str(&format!(" [env: {var}]"));
    }
    if let Some(default) = setting.default_text() {
        suffix.push_str(&format!(" [default: {default}]"));
    }
    if setting.flag() == Flag::None {
        suffix.clear();
    }
    suffix
}

/// What the command line set: the matches of the command [`Table::augment`]
/// made (or of its subcommand). Empty by default: nothing set by flags.
#[derive(Debug, Clone, Default)]
pub struct Flags(pub(crate) ArgMatches);

impl From<ArgMatches> for Flags {
    fn from(matches: ArgMatches) -> Self {
        Flags(matches)
    }
}

impl From<&ArgMatches> for Flags {
    fn from(matches: &ArgMatches) -> Self {
        Flags(matches.clone())
    }
}
