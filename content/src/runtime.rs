//! Language runtime versions: from the well-known env of official images
//! (`PYTHON_VERSION=3.12.1`) and from versioned symlinks
//! (`usr/bin/python3 -> python3.12`).

use crate::flatten::FileSystem;
use crate::path::resolve_link;
use crate::tar::EntryKind;

/// A runtime and its version, with where it was read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Runtime {
    /// `python`, `node`, `go`, …
    pub name: String,
    /// As written.
    pub version: String,
    /// `env PYTHON_VERSION` or `symlink usr/bin/python3`.
    pub source: String,
}

/// Env variables official images set, and the runtime each names.
const ENV: &[(&str, &str)] = &[
    ("PYTHON_VERSION", "python"),
    ("NODE_VERSION", "node"),
    ("GOLANG_VERSION", "go"),
    ("GO_VERSION", "go"),
    ("JAVA_VERSION", "java"),
    ("JAVA_HOME_VERSION", "java"),
    ("RUBY_VERSION", "ruby"),
    ("PHP_VERSION", "php"),
    ("PERL_VERSION", "perl"),
    ("RUST_VERSION", "rust"),
    ("DOTNET_VERSION", "dotnet"),
    ("ASPNET_VERSION", "aspnet"),
    ("OTP_VERSION", "erlang"),
    ("ELIXIR_VERSION", "elixir"),
    ("JULIA_VERSION", "julia"),
    ("YARN_VERSION", "yarn"),
];

/// Directories whose versioned symlinks are read.
const BIN_DIRS: &[&str] = &["usr/bin", "usr/local/bin", "bin"];
/// Commands whose symlink targets carry a version (`python3 -> python3.12`).
const COMMANDS: &[(&str, &str)] = &[
    ("python3", "python"),
    ("python", "python"),
    ("ruby", "ruby"),
    ("php", "php"),
    ("perl", "perl"),
    ("node", "node"),
    ("java", "java"),
];
/// The most links followed from one command: a loop ends here.
const MAX_HOPS: usize = 16;

/// The runtimes an image declares in its env.
pub fn from_env(env: &[String]) -> Vec<Runtime> {
    let mut out: Vec<Runtime> = Vec::new();
    for line in env {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if let Some((_, name)) = ENV.iter().find(|(k, _)| *k == key)
            && !value.is_empty()
            && !out.iter().any(|r| r.name == *name)
        {
            out.push(Runtime {
                name: (*name).to_owned(),
                version: value.to_owned(),
                source: format!("env {key}"),
            });
        }
    }
    out
}

/// The runtimes whose command is a symlink to a versioned file name; links
/// are followed at most [`MAX_HOPS`] times, so a loop ends quietly.
pub fn from_symlinks(fs: &FileSystem) -> Vec<Runtime> {
    let mut out: Vec<Runtime> = Vec::new();
    for dir in BIN_DIRS {
        for (command, name) in COMMANDS {
            if out.iter().any(|r| r.name == *name) {
                continue;
            }
            let path = format!("{dir}/{command}");
            let mut at = path.clone();
            for _ in 0..MAX_HOPS {
                let Some(entry) = fs.files.get(&at) else {
                    break;
                };
                if entry.meta.kind != EntryKind::Symlink {
                    break;
                }
                let Some(next) = entry
                    .meta
                    .link
                    .as_deref()
                    .and_then(|t| resolve_link(&at, t))
                else {
                    break;
                };
                let base = next.rsplit('/').next().unwrap_or(&next);
                let family = command.trim_end_matches(|c: char| c.is_ascii_digit());
                if let Some(version) = base.strip_prefix(family)
                    && version.contains('.')
                    && version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                {
                    out.push(Runtime {
                        name: (*name).to_owned(),
                        version: version.to_owned(),
                        source: format!("symlink {path}"),
                    });
                    break;
                }
                at = next;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::flatten;
    use crate::tar::build::*;
    use crate::test_support::layer;

    #[test]
    fn env_runtimes_are_read_once_each() {
        let env = vec![
            "PATH=/usr/local/bin".to_owned(),
            "PYTHON_VERSION=3.12.1".to_owned(),
            "GOLANG_VERSION=1.22.0".to_owned(),
            "NODE_VERSION".to_owned(),
        ];
        let got = from_env(&env);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].version, "3.12.1");
        assert_eq!(got[1].source, "env GOLANG_VERSION");
    }

    #[test]
    fn symlink_chains_are_followed_and_loops_end() {
        let fs = flatten(&[layer(&[
            symlink("usr/bin/python", "python3"),
            symlink("usr/bin/python3", "python3.12"),
            file("usr/bin/python3.12", b"\x7fELF"),
            symlink("usr/bin/ruby", "ruby2"),
            symlink("usr/bin/ruby2", "ruby"),
        ])]);
        let got = from_symlinks(&fs);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].name, "python");
        assert_eq!(got[0].version, "3.12");
        assert_eq!(got[0].source, "symlink usr/bin/python3");
    }
}
