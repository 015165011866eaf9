//! The agent's limiter (`envparity_agent::limit::apply`): whatever an engine
//! reports, what the agent sends after cutting it down is accepted by the
//! aggregator, fits the message limit, and says what it cut.
//!
//! Input: a generated report (the `snapshot` target's generator: hostile,
//! oversize and mixed-width strings, many labels and env entries), with the
//! host-level fields an agent always sets made valid, then cut down.
//!
//! Asserted, besides "never panics":
//! - the cut-down snapshot passes `validate::snapshot`;
//! - it encodes within `MAX_SNAPSHOT_BYTES`;
//! - every container whose content changed carries a reason in `cut`, every
//!   reason is bounded and inert, and every cut is returned to be logged;
//! - containers left out are counted in `containers_dropped`;
//! - what was cut down fits: a second pass cuts nothing more.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use envparity_aggregator::server::validate;
use envparity_fuzz::report::FuzzReport;
use envparity_proto::limits::{MAX_CUT_LEN, MAX_CUTS, MAX_SNAPSHOT_BYTES};
use envparity_proto::names::is_hostile;
use envparity_proto::v1::AgentInfo;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(report) = FuzzReport::arbitrary(&mut u) else {
        return;
    };
    let mut s = report.resolve();
    // What the agent sets itself, from its own validated configuration.
    s.host_id = "host-1".to_owned();
    s.environment = "production".to_owned();
    s.agent = Some(AgentInfo {
        version: "0.1.0".to_owned(),
        boot_id: "boot".to_owned(),
    });
    s.sequence = 1;
    s.content_hash = "0".repeat(64);
    s.labels.clear(); // host labels come from the agent's checked config
    for c in &mut s.containers {
        // The collector always names a service and an image, and every env
        // entry has its fingerprint.
        c.service.get_or_insert_with(Default::default);
        c.image.get_or_insert_with(Default::default);
        for v in c.explicit_env.iter_mut().chain(&mut c.image_env) {
            if v.fingerprint.is_empty() {
                v.fingerprint = "f".repeat(64);
            }
        }
    }
    let before: Vec<_> = s.containers.clone();
    let cuts = envparity_agent::limit::apply(&mut s);

    if let Err(e) = validate::snapshot(&s) {
        panic!("the limiter's output is refused: {e}");
    }
    assert!(
        s.encoded_len() <= MAX_SNAPSHOT_BYTES,
        "{} bytes",
        s.encoded_len()
    );
    for c in &s.containers {
        assert!(c.cut.len() <= MAX_CUTS);
        for reason in &c.cut {
            assert!(
                !reason.is_empty() && reason.len() <= MAX_CUT_LEN,
                "{reason:?}"
            );
            assert!(!reason.chars().any(is_hostile), "{reason:?}");
        }
        // A container changed in any way says so.
        let original = before.iter().find(|b| {
            let mut b = (*b).clone();
            b.cut = c.cut.clone();
            b == *c
        });
        assert!(
            original.is_some() || !c.cut.is_empty(),
            "container {:?} was changed without a reason",
            c.name
        );
    }
    assert_eq!(
        before.len(),
        s.containers.len() + s.containers_dropped as usize,
        "every container is sent or counted"
    );
    for c in s.containers.iter().filter(|c| !c.cut.is_empty()) {
        assert!(
            cuts.iter().any(|x| x.container == c.name),
            "the cuts of {:?} are returned to be logged",
            c.name
        );
    }
    // What was cut down fits: a second pass finds nothing more to cut.
    let mut again = s.clone();
    for c in &mut again.containers {
        c.cut.clear();
    }
    let more = envparity_agent::limit::apply(&mut again);
    assert!(more.is_empty(), "cut again: {more:?}");
});
