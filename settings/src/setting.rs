//! [`Setting`]: one setting, declared once.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::de::ValueDeserializer;

use crate::error::{Error, Origin};
use crate::file::File;

/// How a setting is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--NAME`, declared by the setting.
    Long(&'static str),
    /// `--NAME`, declared by the parent command as a global flag that other
    /// commands share: read from the command line, not declared again.
    Inherited(&'static str),
    /// No flag: set in the file (nested tables), or by its variable only.
    None,
}

impl Flag {
    /// The long name, if there is a flag.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::Long(name) | Self::Inherited(name) => Some(name),
            Self::None => None,
        }
    }
}

/// How many values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One value.
    One,
    /// A list: the flag is repeatable (and split on `delimiter`), the
    /// variable is comma-separated, the file has an array.
    List { delimiter: Option<char> },
    /// On or off: the flag takes no value and means on; the variable and
    /// the file say true or false.
    Switch,
}

/// How a value is shown by `check-config`. Secrets are never shown (see
/// [`Setting::secret`]), so this may print the value whole.
pub trait Show {
    /// The value as `check-config` prints it.
    fn show(&self) -> String;
}

impl Show for String {
    fn show(&self) -> String {
        self.clone()
    }
}

impl Show for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl Show for Duration {
    fn show(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
}

impl Show for bool {
    fn show(&self) -> String {
        self.to_string()
    }
}

macro_rules! show_display {
    ($($t:ty),*) => { $( impl Show for $t { fn show(&self) -> String { self.to_string() } } )* };
}
show_display!(SocketAddr, u32, u64, usize, f64);

impl Show for (String, String) {
    fn show(&self) -> String {
        format!("{}={}", self.0, self.1)
    }
}

impl<I: Show> Show for Vec<I> {
    fn show(&self) -> String {
        if self.is_empty() {
            return "(none)".to_owned();
        }
        self.iter().map(Show::show).collect::<Vec<_>>().join(", ")
    }
}

/// One setting of a binary, declared once: everything about it that the
/// flag, the variable, the file, `--help` and `check-config` need.
///
/// `T` is the value; `I` is one item of a list setting ([`List`]), else `T`.
/// Build one with [`Setting::new`], [`Setting::path`], [`Setting::list`],
/// [`Setting::switch`] or [`Setting::table`], then the `const` methods below.
pub struct Setting<T: 'static, I: 'static = T> {
    pub(crate) key: &'static str,
    pub(crate) flag: Flag,
    pub(crate) var: Option<&'static str>,
    pub(crate) fallback_var: Option<&'static str>,
    pub(crate) in_file: bool,
    pub(crate) value_name: Option<&'static str>,
    pub(crate) help: &'static str,
    pub(crate) default: Option<fn() -> T>,
    pub(crate) default_text: Option<&'static str>,
    pub(crate) required: bool,
    pub(crate) secret: bool,
    pub(crate) shape: Shape,
    pub(crate) item: fn(&str) -> Result<I, String>,
    pub(crate) check: fn(T) -> Result<T, String>,
    pub(crate) show: fn(&T) -> String,
    pub(crate) rebase: Option<fn(T, &Path) -> T>,
    pub(crate) from_flags: fn(&Self, &ArgMatches) -> Option<T>,
    pub(crate) from_env: fn(&Self, &str) -> Result<T, String>,
    pub(crate) from_file: fn(&Self, ValueDeserializer<'_>) -> Result<T, toml::de::Error>,
    pub(crate) arg: fn(&Self) -> Arg,
}

/// A setting that takes a list of `I`.
pub type List<I> = Setting<Vec<I>, I>;

impl<T, I> fmt::Debug for Setting<T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("flag", &self.flag)
            .field("var", &self.var)
            .field("in_file", &self.in_file)
            .finish_non_exhaustive()
    }
}

/// What every setting is, whatever its type: what a [`crate::Table`] holds.
pub trait Describe: fmt::Debug {
    /// Its key: the config-file key and the clap id.
    fn key(&self) -> &'static str;
    /// Its flag.
    fn flag(&self) -> Flag;
    /// Its environment variable.
    fn var(&self) -> Option<&'static str>;
    /// Whether the config file may set it.
    fn in_file(&self) -> bool;
    /// Its help text.
    fn help(&self) -> &'static str;
    /// What applies when nothing sets it, as `--help` and `check-config`
    /// say it: the declared text, else the default value shown.
    fn default_text(&self) -> Option<String>;
    /// Its clap argument, if it declares a flag.
    fn arg(&self) -> Option<Arg>;
    /// Converts the file's value, if the file sets it (so that a bad value
    /// is refused even where a flag overrides it).
    fn check_file(&self, file: &File) -> Result<(), Error>;
}

impl<T: Clone + Send + Sync + 'static, I: Clone + Send + Sync + 'static> Describe
    for Setting<T, I>
{
    fn key(&self) -> &'static str {
        self.key
    }

    fn flag(&self) -> Flag {
        self.flag
    }

    fn var(&self) -> Option<&'static str> {
        self.var
    }

    fn in_file(&self) -> bool {
        self.in_file
    }

    fn help(&self) -> &'static str {
        self.help
    }

    fn default_text(&self) -> Option<String> {
        match (self.default_text, self.default) {
            (Some(text), _) => Some(text.to_owned()),
            (None, _) if self.shape == Shape::Switch => None,
            (None, Some(default)) => Some((self.show)(&default())),
            (None, None) => None,
        }
    }

    fn arg(&self) -> Option<Arg> {
        matches!(self.flag, Flag::Long(_)).then(|| (self.arg)(self))
    }

    fn check_file(&self, file: &File) -> Result<(), Error> {
        self.in_config(file).map(drop)
    }
}

impl<T, I> Setting<T, I> {
    /// Its value in `file`, converted (a relative path taken from the
    /// file's directory), and where it is; `None` when the file does not
    /// set it.
    pub(crate) fn in_config(&self, file: &File) -> Result<Option<(T, Origin)>, Error> {
        let found = file.lookup(self.key, |value| (self.from_file)(self, value))?;
        Ok(found.map(|(value, origin)| match self.rebase {
            Some(rebase) => (
                rebase(value, file.path().parent().unwrap_or(Path::new(""))),
                origin,
            ),
            None => (value, origin),
        }))
    }
}

impl<T: Clone + Send + Sync + Show + 'static> Setting<T> {
    /// A setting with one value: a flag's, a variable's or a TOML string's
    /// text, parsed by `parse`.
    pub const fn new(key: &'static str, parse: fn(&str) -> Result<T, String>) -> Self {
        Setting {
            key,
            flag: Flag::None,
            var: None,
            fallback_var: None,
            in_file: true,
            value_name: None,
            help: "",
            default: None,
            default_text: None,
            required: false,
            secret: false,
            shape: Shape::One,
            item: parse,
            check: keep::<T>,
            show: <T as Show>::show,
            rebase: None,
            from_flags: one_flag::<T>,
            from_env: one_env::<T>,
            from_file: one_file::<T>,
            arg: one_arg::<T>,
        }
    }

    /// In the file, also a TOML integer or float (taken as its text), as
    /// sizes, counts and rates are written.
    pub const fn number(mut self) -> Self {
        self.from_file = number_file::<T>;
        self
    }
}

impl Setting<PathBuf> {
    /// A path. In the file, a relative path is relative to the file's
    /// directory, not to wherever the binary happened to be started.
    pub const fn path(key: &'static str) -> Self {
        let mut s = Self::new(key, crate::parse::path);
        s.rebase = Some(rebase);
        s
    }
}

impl<I: Clone + Send + Sync + 'static> Setting<Vec<I>, I>
where
    Vec<I>: Show,
{
    /// A list: the flag is repeatable, the variable comma-separated, the
    /// file an array of strings; each item parsed by `item`. The first
    /// source that sets it gives the whole list.
    pub const fn list(key: &'static str, item: fn(&str) -> Result<I, String>) -> Self {
        Setting {
            key,
            flag: Flag::None,
            var: None,
            fallback_var: None,
            in_file: true,
            value_name: None,
            help: "",
            default: None,
            default_text: None,
            required: false,
            secret: false,
            shape: Shape::List { delimiter: None },
            item,
            check: keep::<Vec<I>>,
            show: <Vec<I> as Show>::show,
            rebase: None,
            from_flags: list_flag::<I>,
            from_env: list_env::<I>,
            from_file: list_file::<I>,
            arg: list_arg::<I>,
        }
    }

    /// Each flag value is split on `delimiter` too, like the variable.
    pub const fn delimiter(mut self, delimiter: char) -> Self {
        self.shape = Shape::List {
            delimiter: Some(delimiter),
        };
        self
    }
}

impl Setting<bool> {
    /// On or off, default off: the flag (no value) turns it on; the variable
    /// and the file say `true` or `false`.
    pub const fn switch(key: &'static str) -> Self {
        let mut s = Self::new(key, crate::parse::boolean);
        s.shape = Shape::Switch;
        s.default = Some(off);
        s.from_flags = switch_flag;
        s.from_file = switch_file;
        s.arg = switch_arg;
        s
    }
}

impl<T: DeserializeOwned + Clone + Send + Sync + Show + 'static> Setting<T> {
    /// A nested table of the file (no flag, no variable), deserialized by
    /// serde; errors inside it name their own line.
    pub const fn table(key: &'static str) -> Self {
        let mut s = Self::new(key, no_text::<T>);
        s.from_file = serde_file::<T>;
        s
    }
}

impl<T: 'static, I: 'static> Setting<T, I> {
    /// Its long flag, `--NAME`.
    pub const fn flag(mut self, name: &'static str) -> Self {
        self.flag = Flag::Long(name);
        self
    }

    /// Its long flag, `--NAME`, declared by the parent command (global).
    pub const fn inherited_flag(mut self, name: &'static str) -> Self {
        self.flag = Flag::Inherited(name);
        self
    }

    /// Its long flag stays, but is declared by the parent command (global):
    /// a shared setting whose flag one binary puts on every subcommand.
    pub const fn inherited(mut self) -> Self {
        if let Flag::Long(name) = self.flag {
            self.flag = Flag::Inherited(name);
        }
        self
    }

    /// Its environment variable.
    pub const fn var(mut self, name: &'static str) -> Self {
        self.var = Some(name);
        self
    }

    /// A variable read after the file, before the default: another
    /// program's name for the same thing (e.g. Docker's `DOCKER_HOST`).
    pub const fn fallback_var(mut self, name: &'static str) -> Self {
        self.fallback_var = Some(name);
        self
    }

    /// The config file may not set it.
    pub const fn not_in_file(mut self) -> Self {
        self.in_file = false;
        self
    }

    /// The placeholder of its value in `--help`, e.g. `DURATION`.
    pub const fn value_name(mut self, name: &'static str) -> Self {
        self.value_name = Some(name);
        self
    }

    /// Its help text (`--help`).
    pub const fn help(mut self, text: &'static str) -> Self {
        self.help = text;
        self
    }

    /// Its default; `--help` shows it as `check-config` shows a value,
    /// unless [`Setting::default_text`] says it otherwise.
    pub const fn default(mut self, value: fn() -> T) -> Self {
        self.default = Some(value);
        self
    }

    /// What happens when nothing sets it, as `--help` and `check-config`
    /// say it: where the binary works it out, or there is then no value, or
    /// the default is better said in words.
    pub const fn default_text(mut self, text: &'static str) -> Self {
        self.default_text = Some(text);
        self
    }

    /// Unset everywhere is an error naming every way to set it.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// `check-config` shows `<redacted>` instead of the value. Its parser
    /// and check must not echo the value in their errors either.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Checks (and may normalise) a value from any source; the error is
    /// prefixed with where the value came from.
    pub const fn check(mut self, check: fn(T) -> Result<T, String>) -> Self {
        self.check = check;
        self
    }

    /// How `check-config` shows the value, instead of [`Show`].
    pub const fn show(mut self, show: fn(&T) -> String) -> Self {
        self.show = show;
        self
    }

    /// How the file's value is read, instead of the default for its kind.
    pub const fn file_with(
        mut self,
        read: fn(&Self, ValueDeserializer<'_>) -> Result<T, toml::de::Error>,
    ) -> Self {
        self.from_file = read;
        self
    }

    /// Its environment variable.
    pub const fn var_name(&self) -> Option<&'static str> {
        self.var
    }
}

fn keep<T>(value: T) -> Result<T, String> {
    Ok(value)
}

fn off() -> bool {
    false
}

fn rebase(path: PathBuf, dir: &Path) -> PathBuf {
    if path.is_relative() {
        dir.join(path)
    } else {
        path
    }
}

fn no_text<T>(_: &str) -> Result<T, String> {
    Err("is set in the config file only".to_owned())
}

/// Whether the user gave `id` on the command line (not a clap default, not
/// clap's own reading of a variable: variables are read by
/// [`crate::Sources`], through [`crate::EnvSource`]).
fn on_command_line(m: &ArgMatches, id: &str) -> bool {
    m.try_contains_id(id).unwrap_or(false) && m.value_source(id) == Some(ValueSource::CommandLine)
}

fn one_flag<T: Clone + Send + Sync + 'static>(s: &Setting<T>, m: &ArgMatches) -> Option<T> {
    if !on_command_line(m, s.key) {
        return None;
    }
    m.try_get_one::<T>(s.key).ok().flatten().cloned()
}

fn one_env<T>(s: &Setting<T>, text: &str) -> Result<T, String> {
    (s.item)(text)
}

fn one_file<T>(s: &Setting<T>, d: ValueDeserializer<'_>) -> Result<T, toml::de::Error> {
    let text = String::deserialize(d)?;
    (s.item)(&text).map_err(serde::de::Error::custom)
}

fn number_file<T>(s: &Setting<T>, d: ValueDeserializer<'_>) -> Result<T, toml::de::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a number or a string")]
    enum Number {
        Integer(i64),
        Float(f64),
        Text(String),
    }
    let text = match Number::deserialize(d)? {
        Number::Integer(n) => n.to_string(),
        Number::Float(n) => n.to_string(),
        Number::Text(t) => t,
    };
    (s.item)(&text).map_err(serde::de::Error::custom)
}

fn one_arg<T: Clone + Send + Sync + 'static>(s: &Setting<T>) -> Arg {
    let arg = Arg::new(s.key).action(ArgAction::Set).value_parser(s.item);
    named(arg, s.flag, s.value_name)
}

fn list_flag<I: Clone + Send + Sync + 'static>(s: &List<I>, m: &ArgMatches) -> Option<Vec<I>> {
    if !on_command_line(m, s.key) {
        return None;
    }
    let items: Vec<I> = m.try_get_many::<I>(s.key).ok()??.cloned().collect();
    (!items.is_empty()).then_some(items)
}

fn list_env<I>(s: &List<I>, text: &str) -> Result<Vec<I>, String> {
    crate::parse::split_list(text).map(s.item).collect()
}

fn list_file<I>(s: &List<I>, d: ValueDeserializer<'_>) -> Result<Vec<I>, toml::de::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| (s.item)(text).map_err(serde::de::Error::custom))
        .collect()
}

fn list_arg<I: Clone + Send + Sync + 'static>(s: &List<I>) -> Arg {
    let mut arg = Arg::new(s.key)
        .action(ArgAction::Append)
        .value_parser(s.item);
    if let Shape::List {
        delimiter: Some(d), ..
    } = s.shape
    {
        arg = arg.value_delimiter(d);
    }
    named(arg, s.flag, s.value_name)
}

fn switch_flag(s: &Setting<bool>, m: &ArgMatches) -> Option<bool> {
    (on_command_line(m, s.key) && m.get_flag(s.key)).then_some(true)
}

fn switch_file(_: &Setting<bool>, d: ValueDeserializer<'_>) -> Result<bool, toml::de::Error> {
    bool::deserialize(d)
}

fn switch_arg(s: &Setting<bool>) -> Arg {
    named(Arg::new(s.key).action(ArgAction::SetTrue), s.flag, None)
}

fn serde_file<T: DeserializeOwned>(
    _: &Setting<T>,
    d: ValueDeserializer<'_>,
) -> Result<T, toml::de::Error> {
    T::deserialize(d)
}

fn named(arg: Arg, flag: Flag, value_name: Option<&'static str>) -> Arg {
    let arg = match flag.name() {
        Some(name) => arg.long(name),
        None => arg,
    };
    match value_name {
        Some(name) => arg.value_name(name),
        None => arg,
    }
}
