//! envparity's end-to-end suite: one test binary (one link step), real
//! engines, real binaries. Needs root and `scripts/setup.sh`; run it all with
//! `scripts/test.sh`.

mod e2e {
    /// Alerting (Alertmanager, Slack, PagerDuty, webhooks) and metrics (Prometheus).
    mod alerting;
    /// Configuration passed as files: mounted config compared key by key.
    mod config_files;
    /// Bounds before authentication: memory, connections, idle time.
    mod exhaustion;
    /// The harness itself: hosts, registry, images, containers and guards.
    mod harness;
    /// The process guard and the small helpers around it.
    mod helpers;
    /// `envparity image-diff` on images a real engine built and saved (issue 19).
    mod image_diff;
    /// The rest of the finding kinds, the policy, the gate and the history.
    mod kinds;
    /// Oversize, malformed, hostile and flooding reports against the real server.
    mod limits;
    /// The load generator speaks the current API (a smoke run; no timings).
    mod loadgen;
    /// envparity proper: agents report, the aggregator judges, the CLI tells.
    mod parity;
    /// Outages, crashes, engine restarts, duplicates: nothing acknowledged is lost.
    mod reliability;
    /// Several replicas of one PostgreSQL database: takeovers lose nothing.
    mod replicas;
    /// containerd (through the CRI) beside Docker: one fleet, the same verdicts.
    mod runtimes;
    /// A real multi-arch index on Docker and Podman: one content.
    mod runtimes_multiarch;
    /// Podman (through its Docker-compatible API) beside Docker.
    mod runtimes_podman;
    /// TLS, host identity and query authorization.
    mod security;
    /// `serve --store postgres://…` answers as on SQLite (docs/store.md).
    mod store;
    /// The web view over HTTP: pages equal to status, headers, certificates.
    mod web;
    /// The web view in headless Chromium over WebDriver.
    mod web_browser;
}
