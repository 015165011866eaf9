//! [`Run`]: how to start a container, as a value, so a test can read
//! `prod.run(Run::new("myapp:1").name("shop").env("FOO", "bar"))`.

/// A `docker run -d --network none …` to perform on a [`crate::DockerHost`].
///
/// Containers never get a network: the test hosts run with `--bridge=none`,
/// and no test traffic may leave the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    image: String,
    name: Option<String>,
    env: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    args: Vec<String>,
    cmd: Vec<String>,
}

impl Run {
    /// Runs `image` with its own command.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            name: None,
            env: Vec::new(),
            labels: Vec::new(),
            args: Vec::new(),
            cmd: Vec::new(),
        }
    }

    /// `--name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// `--env key=value`.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// `--label key=value`.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Any other `docker run` flag, passed through as is (`"--read-only"`,
    /// `"--restart=always"`, `"--user=1000"`).
    #[must_use]
    pub fn arg(mut self, flag: impl Into<String>) -> Self {
        self.args.push(flag.into());
        self
    }

    /// Overrides the image's command.
    #[must_use]
    pub fn cmd(mut self, argv: &[&str]) -> Self {
        self.cmd = argv.iter().map(|&a| a.to_owned()).collect();
        self
    }

    /// The image to run.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The full argument list after `docker`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "run".to_owned(),
            "--detach".to_owned(),
            "--network=none".to_owned(),
        ];
        if let Some(name) = &self.name {
            args.push(format!("--name={name}"));
        }
        for (key, value) in &self.env {
            args.push(format!("--env={key}={value}"));
        }
        for (key, value) in &self.labels {
            args.push(format!("--label={key}={value}"));
        }
        args.extend(self.args.iter().cloned());
        args.push(self.image.clone());
        args.extend(self.cmd.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::Run;

    #[test]
    fn a_run_never_gets_a_network() {
        let args = Run::new("myapp:1")
            .name("shop")
            .env("FOO", "bar baz")
            .label("envparity.service", "shop")
            .arg("--read-only")
            .cmd(&["/bin/sleep", "5"])
            .to_args();
        assert_eq!(
            args,
            [
                "run",
                "--detach",
                "--network=none",
                "--name=shop",
                "--env=FOO=bar baz",
                "--label=envparity.service=shop",
                "--read-only",
                "myapp:1",
                "/bin/sleep",
                "5",
            ]
        );
    }
}
