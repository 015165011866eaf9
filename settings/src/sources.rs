//! [`Sources`]: the flags, the environment and the file, asked in that
//! order, one setting at a time.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use crate::args::{Flags, Table};
use crate::env::EnvSource;
use crate::error::{Error, Origin};
use crate::file::File;
use crate::report::{Report, Row};
use crate::setting::Setting;

/// A setting's value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: Origin,
}

impl<T> Resolved<T> {
    /// An error about this value, naming where it came from.
    pub fn invalid(&self, message: impl Into<String>) -> Error {
        Error::Invalid {
            origin: self.origin.clone(),
            message: message.into(),
        }
    }
}

/// Every source of a binary's settings. Each [`Sources::get`] is recorded,
/// so that [`Sources::report`] is what `check-config` prints: the value of
/// every setting the binary asked for, and where it came from.
#[derive(Debug)]
pub struct Sources<'a> {
    table: &'a Table,
    flags: &'a Flags,
    env: &'a dyn EnvSource,
    file: Option<File>,
    rows: RefCell<Vec<Row>>,
}

impl<'a> Sources<'a> {
    /// The flags and the environment, no file yet.
    pub fn new(table: &'a Table, flags: &'a Flags, env: &'a dyn EnvSource) -> Self {
        Sources {
            table,
            flags,
            env,
            file: None,
            rows: RefCell::new(Vec::new()),
        }
    }

    /// Reads the config file that `config` (a flag or a variable) names, if
    /// it names one; the file's keys are checked against the table.
    pub fn open(self, config: &Setting<PathBuf>) -> Result<Self, Error> {
        match self.get(config)? {
            Some(path) => self.read(&path.value),
            None => Ok(self),
        }
    }

    /// Reads the config file at `path`; its keys are checked against the
    /// table.
    pub fn read(mut self, path: &Path) -> Result<Self, Error> {
        self.file = Some(self.table.read_file(path)?);
        Ok(self)
    }

    /// The config file read, if any.
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// The value of `setting` from the first source that sets it: its flag,
    /// its variable, the config file, its fallback variable, else its
    /// default; `None` when nothing sets it and it has no default (an error
    /// naming every way to set it if it is required). A value that does not
    /// parse or check is an error naming its source.
    pub fn get<T, I>(&self, setting: &Setting<T, I>) -> Result<Option<Resolved<T>>, Error> {
        let found = self.find(setting)?;
        let resolved = match found {
            Some((value, origin)) => {
                let value = (setting.check)(value).map_err(|message| Error::Invalid {
                    origin: origin.clone(),
                    message,
                })?;
                Some(Resolved { value, origin })
            }
            None => setting.default.map(|default| Resolved {
                value: default(),
                origin: Origin::Default(setting.key),
            }),
        };
        self.record(setting, resolved.as_ref());
        match resolved {
            None if setting.required => Err(missing(setting)),
            resolved => Ok(resolved),
        }
    }

    /// [`Sources::get`] of a setting that has a default, or is required:
    /// its value, or an error naming every way to set it.
    pub fn value<T, I>(&self, setting: &Setting<T, I>) -> Result<Resolved<T>, Error> {
        self.get(setting)?.ok_or_else(|| missing(setting))
    }

    /// Records `value`, worked out by the binary because nothing set
    /// `setting` (e.g. the host id from the machine id); `how` says how.
    pub fn derived<T, I>(
        &self,
        setting: &Setting<T, I>,
        value: T,
        how: impl Into<String>,
    ) -> Resolved<T> {
        let resolved = Resolved {
            value,
            origin: Origin::Derived(how.into()),
        };
        self.record(setting, Some(&resolved));
        resolved
    }

    /// What `check-config` prints: every setting asked for, in the table's
    /// order.
    pub fn report(&self) -> Report {
        let rows = self.rows.borrow();
        let ordered = self
            .table
            .settings()
            .iter()
            .filter_map(|s| rows.iter().find(|r| r.key == s.key()).cloned())
            .collect();
        Report::new(self.file.as_ref().map(|f| f.path().to_owned()), ordered)
    }

    fn find<T, I>(&self, setting: &Setting<T, I>) -> Result<Option<(T, Origin)>, Error> {
        if let Some(name) = setting.flag.name()
            && let Some(value) = (setting.from_flags)(setting, &self.flags.0)
        {
            return Ok(Some((value, Origin::Flag(name))));
        }
        if let Some(found) = self.read_var(setting, setting.var)? {
            return Ok(Some(found));
        }
        if setting.in_file
            && let Some(file) = &self.file
            && let Some(found) = setting.in_config(file)?
        {
            return Ok(Some(found));
        }
        self.read_var(setting, setting.fallback_var)
    }

    fn read_var<T, I>(
        &self,
        setting: &Setting<T, I>,
        var: Option<&'static str>,
    ) -> Result<Option<(T, Origin)>, Error> {
        let Some(var) = var else {
            return Ok(None);
        };
        let Some(text) = self.env.var(var) else {
            return Ok(None);
        };
        let origin = Origin::Env(var);
        match (setting.from_env)(setting, &text) {
            Ok(value) => Ok(Some((value, origin))),
            Err(message) => Err(Error::Invalid { origin, message }),
        }
    }

    fn record<T, I>(&self, setting: &Setting<T, I>, resolved: Option<&Resolved<T>>) {
        let row = match resolved {
            Some(r) if setting.secret => {
                Row::new(setting.key, "<redacted>", Some(r.origin.brief()))
            }
            Some(r) => Row::new(
                setting.key,
                (setting.show)(&r.value),
                Some(r.origin.brief()),
            ),
            None => Row::new(
                setting.key,
                setting.default_text.unwrap_or("(not set)"),
                None,
            ),
        };
        let mut rows = self.rows.borrow_mut();
        rows.retain(|r| r.key != setting.key);
        rows.push(row);
    }
}

fn missing<T, I>(setting: &Setting<T, I>) -> Error {
    Error::Missing {
        flag: setting.flag.name(),
        var: setting.var,
        key: setting.in_file.then_some(setting.key),
    }
}
