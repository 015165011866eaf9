//! Limits on one report, shared by both ends: the aggregator refuses a
//! report over any of them whole (`INVALID_ARGUMENT` naming the part), and
//! the agent applies them to what it collects before it sends anything, so
//! that one oversized container is cut down and flagged rather than making
//! its whole host unreportable. Generous for real hosts, small enough that
//! one misbehaving agent cannot exhaust the aggregator.

/// Largest encoded request accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Most containers in one snapshot.
pub const MAX_CONTAINERS: usize = 5_000;
/// Most env entries (explicit + image) per container.
pub const MAX_ENV_ENTRIES: usize = 4_096;
/// Most labels per container or host.
pub const MAX_LABELS: usize = 1_024;
/// Longest identifier (host id, container id or name, service name).
pub const MAX_ID_LEN: usize = 253;
/// Longest other string: a label key or value, an env name, value or
/// fingerprint, an image reference.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Encoded bytes the agent allows one container before it shortens the
/// container's labels, env and command line (the aggregator does not check
/// it: it bounds the whole message).
pub const MAX_CONTAINER_BYTES: usize = 1024 * 1024;
/// Encoded bytes the agent allows a whole snapshot: the message limit less
/// room for the request around it.
pub const MAX_SNAPSHOT_BYTES: usize = MAX_MESSAGE_BYTES - 64 * 1024;
/// Most configuration files reported per container.
pub const MAX_CONFIG_FILES: usize = 256;
/// Most keys reported per configuration file; a file with more is "not
/// parsed" rather than cut, so that no key reads as missing.
pub const MAX_CONFIG_KEYS: usize = 4_096;
/// Encoded bytes the agent allows one container's configuration files; the
/// files past it (by path) are left out and named in the container's `cut`.
pub const MAX_CONTAINER_CONFIG_BYTES: usize = 512 * 1024;
/// Encoded bytes the agent allows all configuration files of a snapshot
/// together: half the snapshot's room, so that containers always fit beside
/// them. The files of the containers past it (by id) are left out (unknown,
/// not missing) and named in each container's `cut`.
pub const MAX_SNAPSHOT_CONFIG_BYTES: usize = MAX_SNAPSHOT_BYTES / 2;
/// Most reasons one container's `cut` list carries.
pub const MAX_CUTS: usize = 8;
/// Longest reason in a container's `cut` list.
pub const MAX_CUT_LEN: usize = 256;
