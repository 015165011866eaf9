//! `envparity image-diff IMG1 IMG2`: what differs inside two images, by how
//! much, judged against thresholds, with no aggregator (issue 19, offline).
//!
//! The images come from two `docker save` archives (`--archive`) or from
//! the local engine, in one streamed export ([`engine`]); either way the
//! stream goes through [`envparity_content`] and nothing is written to
//! disk. Exit codes as everywhere: 0 within the thresholds, 1 beyond, 2 on
//! an error (a corrupt archive, a missing image), the message naming the
//! input. See docs/image-diff.md.

mod engine;
mod report;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context;
use clap::{Args, ValueEnum};
use envparity_content::{
    Archive, DigestKey, Glob, ImageContent, Limits, SizeLimit, ThresholdMode, Thresholds,
    default_ignores, diff, judge, read_archive,
};

use super::{Format, Outcome, render};
pub use report::{DiffType, ImageDiffReport};

/// The arguments of `envparity image-diff`.
#[derive(Debug, Args)]
pub struct ImageDiffArgs {
    /// The first image (the baseline): a name or id in the engine, or with
    /// --archive a `docker save` archive holding one image.
    pub image_a: String,
    /// The second image (the candidate), likewise.
    pub image_b: String,
    /// Read IMAGE_A and IMAGE_B as `docker save` (or OCI layout) archive
    /// files instead of asking the engine.
    #[arg(long)]
    pub archive: bool,
    /// What to show (repeatable; default: everything). With no threshold
    /// set, only these count as differences for the exit code.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub types: Vec<DiffType>,
    /// The largest size change allowed, either way: bytes (`50MiB`, `20MB`,
    /// `4096`) or a percentage of IMAGE_A (`10%`).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub max_size_delta: Option<SizeLimit>,
    /// The most files added, removed or changed.
    #[arg(long, value_name = "N")]
    pub max_files_changed: Option<u64>,
    /// The most packages added, removed or changed, every ecosystem
    /// together.
    #[arg(long, value_name = "N")]
    pub max_packages_changed: Option<u64>,
    /// `any`: beyond when one threshold is exceeded; `all`: only when every
    /// threshold set is.
    #[arg(long, value_enum, default_value_t = Mode::Any)]
    pub threshold_mode: Mode,
    /// A path glob whose changes do not count (repeatable; `**` any
    /// depth, `*` within a name), added to the defaults.
    #[arg(long = "ignore-path", value_name = "GLOB")]
    pub ignore_paths: Vec<String>,
    /// Drop the default ignored paths (/var/cache/**,
    /// /var/lib/apt/lists/**, /tmp/**, **/__pycache__/**).
    #[arg(long)]
    pub no_default_ignores: bool,
    /// The engine to export from (`unix:///path` or `tcp://host:port`).
    #[arg(
        long,
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub docker_host: String,
    /// The most bytes read of one archive or export (a tar bomb stops
    /// here, with an error).
    #[arg(long, value_parser = parse_size, default_value = "16GiB", value_name = "SIZE")]
    pub max_read: SizeLimit,
}

/// `--threshold-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Beyond when any threshold is exceeded.
    Any,
    /// Beyond only when every threshold set is exceeded.
    All,
}

fn parse_size(s: &str) -> Result<SizeLimit, String> {
    s.parse()
}

/// Runs `image-diff`.
pub async fn run(args: ImageDiffArgs, format: Format) -> anyhow::Result<Outcome> {
    let SizeLimit::Bytes(max_bytes) = args.max_read else {
        anyhow::bail!("--max-read takes a size, not a percentage");
    };
    let limits = Limits {
        max_bytes,
        ..Limits::default()
    };
    let (a, b) = {
        let args = (
            args.archive,
            args.image_a.clone(),
            args.image_b.clone(),
            args.docker_host.clone(),
        );
        let limits = limits.clone();
        tokio::task::spawn_blocking(move || load(args.0, &args.1, &args.2, &args.3, &limits))
            .await
            .context("the image reader stopped")??
    };
    let mut ignore: Vec<Glob> = if args.no_default_ignores {
        Vec::new()
    } else {
        default_ignores()
    };
    ignore.extend(args.ignore_paths.iter().map(|g| Glob::new(g)));
    let thresholds = Thresholds {
        max_size_delta: args.max_size_delta,
        max_files_changed: args.max_files_changed,
        max_packages_changed: args.max_packages_changed,
        mode: match args.threshold_mode {
            Mode::Any => ThresholdMode::Any,
            Mode::All => ThresholdMode::All,
        },
    };
    let d = diff(&a, &b, &ignore);
    let verdict = if thresholds.any_set() {
        judge(&d, &thresholds)
    } else {
        judge(&report::restrict(&d, &args.types), &thresholds)
    };
    let within = verdict.within;
    let report = ImageDiffReport::new(d, verdict, thresholds, &ignore, &args.types);
    render::Out::new(format).image_diff(&report, &args.types)?;
    Ok(Outcome::judged(within))
}

/// Both images, analysed: from two archives, or from one engine export.
fn load(
    archive: bool,
    a: &str,
    b: &str,
    docker_host: &str,
    limits: &Limits,
) -> anyhow::Result<(ImageContent, ImageContent)> {
    if archive {
        let read = |path: &str| -> anyhow::Result<ImageContent> {
            let archive = read_file(Path::new(path), limits)?;
            let image = archive.only()?;
            Ok(ImageContent::analyse(path, image, limits))
        };
        return Ok((read(a)?, read(b)?));
    }
    let engine = engine::Engine::new(docker_host)?;
    let id_a = engine.image_id(a)?;
    let id_b = engine.image_id(b)?;
    let export = engine.export(&[a, b])?;
    let input = format!("the export of {a} and {b} from {}", engine.address());
    let archive = read_archive(
        BufReader::with_capacity(256 * 1024, export),
        &input,
        limits,
        &DigestKey::Plain,
    )?;
    let pick = |name: &str, id: &str| -> anyhow::Result<ImageContent> {
        let image = archive.image(id)?;
        Ok(ImageContent::analyse(name, image, limits))
    };
    Ok((pick(a, &id_a)?, pick(b, &id_b)?))
}

fn read_file(path: &Path, limits: &Limits) -> anyhow::Result<Archive> {
    let name = path.display().to_string();
    let file = File::open(path).with_context(|| format!("{name}: cannot open"))?;
    Ok(read_archive(
        BufReader::with_capacity(256 * 1024, file),
        &name,
        limits,
        &DigestKey::Plain,
    )?)
}
