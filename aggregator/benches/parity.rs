//! The parity engine on synthetic fleets of 100, 1,000 and 10,000 hosts × 50
//! containers (`envparity_tests::synthetic`, the fleet `envparity-loadgen`
//! sends): a full evaluation, and the re-evaluation after one host changed
//! (only the services that host runs, over every host, then the ledger; the
//! aggregator also narrows the hosts to those running the services, which
//! the load generator's figures include). `cargo bench -p
//! envparity-aggregator --bench parity`; the figures and how to read them
//! are in docs/benchmarks.md.
//!
//! Sample sizes are small (10) so that the whole run stays within a few
//! minutes on two cores; criterion's confidence intervals say how much that
//! costs.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use envparity_aggregator::parity::{Cover, HostLevel, HostView, Ledger, Policy, Scope, evaluate};
use envparity_proto::v1::HostSnapshot;
use envparity_tests::synthetic::Shape;

fn views<'a>(shape: &'a Shape, snapshots: &'a [HostSnapshot]) -> Vec<HostView<'a>> {
    snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| HostView {
            host_id: &s.host_id,
            environment: shape.environment(i),
            current: true,
            stale: false,
            last_seen: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            snapshot: s,
            held: None,
            only: None,
        })
        .collect()
}

fn services(s: &HostSnapshot) -> impl Iterator<Item = String> + '_ {
    s.containers
        .iter()
        .filter_map(|c| c.service.as_ref().map(|s| s.name.clone()))
}

fn parity(c: &mut Criterion) {
    let policy = Policy::default();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut group = c.benchmark_group("evaluate");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for hosts in [100, 1_000, 10_000] {
        let shape = Shape {
            hosts,
            ..Shape::default()
        };
        let mut snapshots: Vec<HostSnapshot> = (0..hosts).map(|i| shape.snapshot(i, 0)).collect();
        let scope = Scope::all(&policy, &shape.environments);
        group.throughput(Throughput::Elements(hosts as u64));

        let all = views(&shape, &snapshots);
        group.bench_with_input(BenchmarkId::new("full", hosts), &all, |b, all| {
            b.iter(|| evaluate(all, &policy, &scope));
        });
        // The host-level kinds alone (kernel, OS, engine, stale hosts): what a
        // new host, or a host whose facts changed, re-evaluates over the fleet.
        let host_level = scope.clone().with_services(BTreeSet::new());
        group.bench_with_input(BenchmarkId::new("host_level", hosts), &all, |b, all| {
            b.iter(|| evaluate(all, &policy, &host_level));
        });
        let mut ledger = Ledger::new();
        ledger.observe(evaluate(&all, &policy, &scope), Cover::Everything, now);
        drop(all);

        // Host 0 starts a canary: re-evaluate the services it ran or runs
        // now, and fold the findings into the ledger.
        let changed = shape.snapshot(0, 1);
        let reach: BTreeSet<String> = services(&snapshots[0]).chain(services(&changed)).collect();
        snapshots[0] = changed;
        let scope = scope.clone().with_services(reach.clone());
        let all = views(&shape, &snapshots);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(
            BenchmarkId::new("one_host_changed", hosts),
            &all,
            |b, all| {
                b.iter_batched(
                    || ledger.clone(),
                    |mut ledger| {
                        let findings = evaluate(all, &policy, &scope);
                        let covers = Cover::Only {
                            services: &reach,
                            host_level: HostLevel::All,
                        };
                        ledger.observe(findings, covers, now)
                    },
                    BatchSize::LargeInput,
                );
            },
        );
    }
    group.finish();
}

criterion_group!(benches, parity);
criterion_main!(benches);
