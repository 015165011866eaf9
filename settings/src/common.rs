//! The settings both daemons have, declared here once: key (file key and
//! clap id), flag, variable, value name and default. Each daemon adds its
//! own help where the meaning differs — the agent's `--tls-cert` is its
//! host's certificate, `serve`'s the server's — and may change how a value
//! is shown or make a flag global ([`Setting::inherited`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::Setting;
use crate::parse::{self, LogFormat};

/// `--config`: the TOML file read under flags and environment.
pub const CONFIG: Setting<PathBuf> = Setting::path("config")
    .flag("config")
    .var("ENVPARITY_CONFIG")
    .not_in_file()
    .value_name("PATH");

/// `--log-format`.
pub const LOG_FORMAT: Setting<LogFormat> = Setting::new("log_format", parse::log_format)
    .flag("log-format")
    .var("ENVPARITY_LOG_FORMAT")
    .value_name("FORMAT")
    .default(LogFormat::default);

/// `--metrics-listen`: off unless set.
pub const METRICS_LISTEN: Setting<SocketAddr> = Setting::new("metrics_listen", parse::socket_addr)
    .flag("metrics-listen")
    .var("ENVPARITY_METRICS_LISTEN")
    .value_name("ADDR")
    .default_text("off");

/// `--tls-cert`: this daemon's own certificate chain.
pub const TLS_CERT: Setting<PathBuf> = Setting::path("tls_cert")
    .flag("tls-cert")
    .var("ENVPARITY_TLS_CERT")
    .value_name("PEM");

/// `--tls-key`: the key of `--tls-cert`.
pub const TLS_KEY: Setting<PathBuf> = Setting::path("tls_key")
    .flag("tls-key")
    .var("ENVPARITY_TLS_KEY")
    .value_name("PEM");

/// `--insecure-plaintext`: plain-text gRPC, on loopback only.
pub const INSECURE_PLAINTEXT: Setting<bool> = Setting::switch("insecure_plaintext")
    .flag("insecure-plaintext")
    .var("ENVPARITY_INSECURE_PLAINTEXT");

/// `--insecure-plaintext-anywhere`: plain-text gRPC on any address.
pub const INSECURE_PLAINTEXT_ANYWHERE: Setting<bool> =
    Setting::switch("insecure_plaintext_anywhere")
        .flag("insecure-plaintext-anywhere")
        .var("ENVPARITY_INSECURE_PLAINTEXT_ANYWHERE");
