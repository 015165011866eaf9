//! Where a value came from, and what is wrong with it.

use std::fmt;
use std::path::PathBuf;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag: its long name, without the dashes.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the config file.
    File {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// 1-based line of the value.
        line: usize,
    },
    /// The declared default of the setting with this key.
    Default(&'static str),
    /// Worked out by the binary when nothing set it (e.g. the host id from
    /// the machine id); says how.
    Derived(String),
}

impl Origin {
    /// The short form `check-config` prints after a value; the file's path
    /// is in the summary's first line.
    pub fn brief(&self) -> String {
        match self {
            Self::Flag(flag) => format!("--{flag}"),
            Self::Env(var) => (*var).to_owned(),
            Self::File { line, .. } => format!("config file, line {line}"),
            Self::Default(_) => "default".to_owned(),
            Self::Derived(how) => how.clone(),
        }
    }
}

/// The form errors use: enough to find the value without any other context.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "--{flag}"),
            Self::Env(var) => f.write_str(var),
            Self::File { path, key, line } => {
                write!(f, "config file {}, line {line}: {key}", path.display())
            }
            Self::Default(key) => write!(f, "default {key}"),
            Self::Derived(how) => f.write_str(how),
        }
    }
}

/// Why a configuration is unusable. Every message names the setting or the
/// file it is about, on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("config file {}: {error}", path.display())]
    FileRead {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The config file is not TOML, or has a key no setting declares.
    #[error("config file {}, line {line}, column {column}: {message}", path.display())]
    FileParse {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value is invalid.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// What is wrong with it.
        message: String,
    },
    /// A required setting is set nowhere.
    #[error("{}", missing(*flag, *var, *key))]
    Missing {
        /// Its long flag, if it has one.
        flag: Option<&'static str>,
        /// Its variable, if it has one.
        var: Option<&'static str>,
        /// Its config-file key, if the file may set it.
        key: Option<&'static str>,
    },
}

/// `--environment is required (or set ENVPARITY_ENVIRONMENT, or
/// `environment` in the config file)`: every way to set it, the flag first.
fn missing(flag: Option<&str>, var: Option<&str>, key: Option<&str>) -> String {
    let mut ways: Vec<String> = Vec::new();
    if let Some(var) = var {
        ways.push(format!("set {var}"));
    }
    if let Some(key) = key {
        ways.push(format!("`{key}` in the config file"));
    }
    match flag {
        Some(flag) if ways.is_empty() => format!("--{flag} is required"),
        Some(flag) => format!("--{flag} is required (or {})", ways.join(", or ")),
        None => format!("a value is required: {}", ways.join(", or ")),
    }
}
