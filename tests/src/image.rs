//! [`ImageSpec`]: a tiny image built without a network: a static busybox, the
//! files you give, and `docker import --change` for the config.
//!
//! The root file system is packed reproducibly (sorted, mtime 0, owner 0), so
//! the same spec gives the same layer on every host and any change to a file
//! gives a different one. The image *id* still differs per import, because
//! `docker import` stamps the creation time into the config; to have the very
//! same image on two hosts, push it to a [`crate::Registry`] and pull it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::tools::{BUSYBOX, TAR};

/// Busybox applets linked in every image, enough for `sh -c`, `cat` and `env`.
const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "env", "printenv", "echo", "ls", "true", "false",
];

/// The default command: sleeps for an hour but exits 0 at once on SIGTERM, so
/// `docker stop` does not wait out its 10 s grace period (a shell or sleep as
/// pid 1 would otherwise ignore SIGTERM).
const DEFAULT_CMD: &[&str] = &["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"];

/// What goes into a test image. Build it with [`crate::DockerHost::import_image`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    files: Vec<(String, Vec<u8>)>,
    changes: Vec<String>,
    cmd: Option<Vec<String>>,
}

impl ImageSpec {
    /// Busybox, no extra files, the default sleeping command.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at the absolute `path` (parents are created), mode 0644.
    #[must_use]
    pub fn file(mut self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.files
            .push((path.to_owned(), contents.as_ref().to_vec()));
        self
    }

    /// Bakes `ENV key=value` into the image config.
    #[must_use]
    pub fn env(self, key: &str, value: &str) -> Self {
        self.change(format!("ENV {key}={}", quote(value)))
    }

    /// Bakes `LABEL key=value` into the image config.
    #[must_use]
    pub fn label(self, key: &str, value: &str) -> Self {
        self.change(format!("LABEL {key}={}", quote(value)))
    }

    /// Sets the working directory.
    #[must_use]
    pub fn workdir(self, dir: &str) -> Self {
        self.change(format!("WORKDIR {dir}"))
    }

    /// Sets the user (`"1000"`, `"1000:1000"`).
    #[must_use]
    pub fn user(self, user: &str) -> Self {
        self.change(format!("USER {user}"))
    }

    /// Sets the entrypoint (exec form).
    #[must_use]
    pub fn entrypoint(self, argv: &[&str]) -> Self {
        self.change(format!("ENTRYPOINT {}", json_argv(argv)))
    }

    /// Replaces the default command (exec form).
    #[must_use]
    pub fn cmd(mut self, argv: &[&str]) -> Self {
        self.cmd = Some(argv.iter().map(|&a| a.to_owned()).collect());
        self
    }

    /// Any other Dockerfile instruction `docker import --change` accepts
    /// (`EXPOSE 8080`, `VOLUME /data`, …).
    #[must_use]
    pub fn change(mut self, instruction: impl Into<String>) -> Self {
        self.changes.push(instruction.into());
        self
    }

    /// The `--change` instructions, the command last.
    pub(crate) fn changes(&self) -> Vec<String> {
        let cmd = match &self.cmd {
            Some(argv) => json_argv(&argv.iter().map(String::as_str).collect::<Vec<_>>()),
            None => json_argv(DEFAULT_CMD),
        };
        let mut changes = self.changes.clone();
        changes.push(format!("CMD {cmd}"));
        changes
    }

    /// Writes the root file system into `dir/rootfs` and packs it as `dir/root.tar`.
    pub(crate) fn build_tar(&self, dir: &Path) -> Result<std::path::PathBuf> {
        let rootfs = dir.join("rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin).map_err(Error::io(format!("create {}", bin.display())))?;
        let busybox = bin.join("busybox");
        std::fs::copy(BUSYBOX.require()?, &busybox).map_err(Error::io(format!(
            "copy {} to {}",
            BUSYBOX.path,
            busybox.display()
        )))?;
        for applet in APPLETS {
            let link = bin.join(applet);
            std::os::unix::fs::symlink("busybox", &link)
                .map_err(Error::io(format!("symlink {}", link.display())))?;
        }
        for (path, contents) in &self.files {
            let relative = path
                .strip_prefix('/')
                .filter(|rel| !rel.is_empty() && !rel.split('/').any(|part| part == ".."))
                .ok_or_else(|| {
                    Error::unexpected(
                        format!("image file {path:?}"),
                        "must be an absolute path without ..",
                    )
                })?;
            let target = rootfs.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(Error::io(format!("create {}", parent.display())))?;
            }
            std::fs::write(&target, contents)
                .map_err(Error::io(format!("write {}", target.display())))?;
        }
        let tar = dir.join("root.tar");
        let mut command = std::process::Command::new(TAR.require()?);
        command
            .args([
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-C",
            ])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".");
        crate::command::checked(command)?;
        Ok(tar)
    }
}

/// A Dockerfile double-quoted string: `"a \"b\" c"`.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', r"\\").replace('"', "\\\""))
}

/// The exec form `["a","b"]`, JSON-escaped.
fn json_argv(argv: &[&str]) -> String {
    serde_json::Value::from(argv).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_changes_are_quoted_and_the_command_comes_last() {
        let spec = ImageSpec::new()
            .env("GREETING", r#"say "hi" \ bye"#)
            .label("envparity.service", "shop")
            .cmd(&["/bin/sleep", "60"]);
        assert_eq!(
            spec.changes(),
            [
                r#"ENV GREETING="say \"hi\" \\ bye""#,
                r#"LABEL envparity.service="shop""#,
                r#"CMD ["/bin/sleep","60"]"#,
            ]
        );
    }

    #[test]
    fn the_default_command_exits_on_sigterm() {
        let changes = ImageSpec::new().changes();
        assert_eq!(changes.len(), 1);
        assert!(
            changes[0].starts_with("CMD [\"/bin/sh\",\"-c\",\"trap 'exit 0' TERM"),
            "{changes:?}"
        );
    }
}
