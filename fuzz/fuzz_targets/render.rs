//! Hostile strings in every answer the CLI prints (one answer per input,
//! picked by its first byte): query answers as they
//! arrive off the wire (any string, any timestamp, any enum number), turned
//! into the CLI's output structs (`cli/output/`) and rendered by
//! `cli/render/` as table, wide table, JSON and YAML, with and without
//! colour.
//!
//! Asserted, besides "never panics":
//! - tables hold no control character but line feeds, no zero-width or bidi
//!   character, and no escape sequence but the CLI's own colour codes;
//! - JSON parses back (serde_json) to the output struct's value and holds
//!   every string placed in it exactly;
//! - YAML parses back (serde_norway) to the same value.
#![no_main]

use std::time::SystemTime;

use arbitrary::{Arbitrary, Result, Unstructured};
use envparity_aggregator::cli::output;
use envparity_aggregator::parity::Severity;
use envparity_aggregator::parity::explain::explain;
use envparity_aggregator::server::convert;
use envparity_fuzz::render::check_all;
use envparity_fuzz::report::{FuzzContainer, Time};
use envparity_fuzz::text::Text;
use envparity_proto::v1;
use libfuzzer_sys::fuzz_target;

/// Draws values from the input and remembers every string it handed out
/// for fields the output carries verbatim.
struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    placed: Vec<String>,
}

const WORDS: &[&str] = &[
    "shop",
    "staging",
    "production",
    "production-1",
    "LOG_LEVEL",
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "registry:5000/shop@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "1111111111111111111111111111111111111111111111111111111111111111",
    "image content differs",
];

impl Gen<'_, '_> {
    /// A string the output carries verbatim.
    fn s(&mut self) -> Result<String> {
        let s = self.loose()?;
        self.placed.push(s.clone());
        Ok(s)
    }

    /// A string the output may transform or merge (map keys, labels).
    fn loose(&mut self) -> Result<String> {
        Ok(Text::arbitrary(self.u)?.resolve(WORDS))
    }

    fn strings(&mut self) -> Result<Vec<String>> {
        self.many(Self::s)
    }

    fn ts(&mut self) -> Result<Option<prost_types::Timestamp>> {
        Ok(Option::<Time>::arbitrary(self.u)?.map(|t| t.resolve()))
    }

    fn many<T>(&mut self, f: impl Fn(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let n = self.u.int_in_range(0..=4)?;
        (0..n).map(|_| f(self)).collect()
    }

    fn i(&mut self) -> Result<i32> {
        // Mostly a known enum number, sometimes any.
        if self.u.ratio(7, 8)? {
            Ok(i32::from(self.u.int_in_range(0u8..=17)?))
        } else {
            self.u.arbitrary()
        }
    }

    /// The strings placed so far.
    fn placed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.placed)
    }

    fn side(&mut self) -> Result<v1::FindingSide> {
        Ok(v1::FindingSide {
            environment: self.s()?,
            hosts: self.strings()?,
            values: self.strings()?,
            stale_hosts: self.strings()?,
        })
    }

    fn finding(&mut self) -> Result<v1::Finding> {
        Ok(v1::Finding {
            kind: self.i()?,
            severity: self.i()?,
            service: self.s()?,
            key: self.s()?,
            a: if self.u.arbitrary()? {
                Some(self.side()?)
            } else {
                None
            },
            b: if self.u.arbitrary()? {
                Some(self.side()?)
            } else {
                None
            },
            basis: self.s()?,
            summary: self.s()?,
            host: self.s()?,
            state: self.i()?,
            first_seen: self.ts()?,
            last_seen: self.ts()?,
            waiver: if self.u.arbitrary()? {
                Some(v1::WaiverNote {
                    reason: self.s()?,
                    owner: self.s()?,
                    expires: self.ts()?,
                    expired: self.u.arbitrary()?,
                })
            } else {
                None
            },
            id: self.s()?,
        })
    }

    fn findings(&mut self) -> Result<Vec<v1::Finding>> {
        self.many(Self::finding)
    }

    fn container(&mut self) -> Result<v1::Container> {
        let c = FuzzContainer::arbitrary(self.u)?.resolve();
        self.placed.extend([c.name.clone(), c.id.clone()]);
        if let Some(img) = &c.image {
            self.placed
                .extend([img.reference.clone(), img.image_id.clone()]);
            self.placed.extend(img.repo_digests.iter().cloned());
        }
        for e in &c.explicit_env {
            self.placed.extend([e.name.clone(), e.fingerprint.clone()]);
            self.placed.extend(e.value.clone());
        }
        Ok(c)
    }
}

fn hosts(g: &mut Gen<'_, '_>) -> Result<v1::ListHostsResponse> {
    let hosts = g.many(|g| {
        Ok(v1::HostSummary {
            host_id: g.s()?,
            environment: g.s()?,
            labels: g.many(|g| {
                Ok(v1::Label {
                    key: g.loose()?,
                    value: g.loose()?,
                })
            })?,
            host: Some(v1::HostFacts {
                kernel_version: g.s()?,
                os_id: g.s()?,
                os_name: g.s()?,
                os_version: g.s()?,
                architecture: g.s()?,
                hostname: g.s()?,
            }),
            engine: Some(v1::EngineFacts {
                server_version: g.s()?,
                api_version: g.s()?,
                storage_driver: g.s()?,
                cgroup_driver: g.s()?,
                cgroup_version: g.s()?,
                operating_system: g.s()?,
                os_type: g.s()?,
                architecture: g.s()?,
                kernel_version: g.loose()?,
                runtime: String::new(),
            }),
            state: g.i()?,
            last_seen: g.ts()?,
            container_count: g.u.arbitrary()?,
            agent_version: g.s()?,
            snapshot_received_at: g.ts()?,
            refused_reason: g.s()?,
            refused_at: g.ts()?,
            containers_dropped: g.u.arbitrary()?,
            unmanaged: g.strings()?,
        })
    })?;
    Ok(v1::ListHostsResponse { hosts })
}

fn status(g: &mut Gen<'_, '_>) -> Result<v1::GetStatusResponse> {
    Ok(v1::GetStatusResponse {
        environments: g.strings()?,
        rows: g.many(|g| {
            Ok(v1::StatusRow {
                service: g.s()?,
                cells: g.many(|g| {
                    Ok(v1::StatusCell {
                        environment: g.s()?,
                        replicas: g.u.arbitrary()?,
                        digests: g.strings()?,
                        versions: g.strings()?,
                        drift: g.u.arbitrary()?,
                        stale: g.u.arbitrary()?,
                    })
                })?,
            })
        })?,
        findings: g.findings()?,
        rows_total: g.u.arbitrary()?,
        next_page: g.s()?,
        summary: if g.u.arbitrary()? {
            Some(v1::StatusSummary {
                services: g.u.arbitrary()?,
                services_drifting: g.u.arbitrary()?,
                hosts: g.u.arbitrary()?,
                hosts_not_current: g.u.arbitrary()?,
                findings: Some(tally(g)?),
                host_states: Vec::new(),
            })
        } else {
            None
        },
        environment_summaries: Vec::new(),
    })
}

fn tally(g: &mut Gen<'_, '_>) -> Result<v1::FindingTally> {
    Ok(v1::FindingTally {
        critical: g.u.arbitrary()?,
        warning: g.u.arbitrary()?,
        info: g.u.arbitrary()?,
        pending: g.u.arbitrary()?,
        waived: g.u.arbitrary()?,
    })
}

fn service(g: &mut Gen<'_, '_>) -> Result<v1::GetServiceResponse> {
    Ok(v1::GetServiceResponse {
        service: g.s()?,
        instances: g.many(|g| {
            Ok(v1::ServiceInstance {
                environment: g.s()?,
                host_id: g.s()?,
                host_state: g.i()?,
                container: Some(g.container()?),
                // Hostile configuration files: paths, reasons, formats, key
                // paths and clear values are any strings.
                config_files: Some(v1::ContainerConfigFiles {
                    container_id: g.s()?,
                    files: g.many(|g| {
                        Ok(v1::ConfigFile {
                            path: g.s()?,
                            format: g.s()?,
                            state: g.i()?,
                            reason: g.s()?,
                            keys: g.many(|g| {
                                Ok(v1::ConfigKey {
                                    path: g.s()?,
                                    fingerprint: g.s()?,
                                    value: Some(g.s()?),
                                })
                            })?,
                            fingerprint: g.s()?,
                            secret: false,
                        })
                    })?,
                }),
            })
        })?,
    })
}

fn gate(g: &mut Gen<'_, '_>) -> Result<v1::GateResponse> {
    Ok(v1::GateResponse {
        allowed: g.u.arbitrary()?,
        previous_environment: g.s()?,
        candidate: g.s()?,
        running_since: g.ts()?,
        reasons: g.strings()?,
        blocking: g.findings()?,
        min_time_in_previous: if g.u.arbitrary()? {
            Some(prost_types::Duration {
                seconds: g.u.arbitrary()?,
                nanos: g.u.arbitrary()?,
            })
        } else {
            None
        },
    })
}

fn history(g: &mut Gen<'_, '_>) -> Result<v1::GetHistoryResponse> {
    Ok(v1::GetHistoryResponse {
        service: g.s()?,
        events: g.many(|g| {
            Ok(v1::HistoryEvent {
                observed_at: g.ts()?,
                received_at: g.ts()?,
                environment: g.s()?,
                host_id: g.s()?,
                container: g.s()?,
                change: g.s()?,
                old_image: g.s()?,
                new_image: g.s()?,
            })
        })?,
        findings: g.many(|g| {
            Ok(v1::FindingRecord {
                id: g.s()?,
                kind: g.i()?,
                severity: g.i()?,
                environments: g.strings()?,
                key: g.s()?,
                host: g.s()?,
                summary: g.s()?,
                first_seen: g.ts()?,
                last_seen: g.ts()?,
                resolved_at: g.ts()?,
                service: g.s()?,
            })
        })?,
        older_events: g.u.arbitrary()?,
        older_findings: g.u.arbitrary()?,
    })
}

fn alerts(g: &mut Gen<'_, '_>) -> Result<v1::ListAlertsResponse> {
    Ok(v1::ListAlertsResponse {
        alerts: g.many(|g| {
            Ok(v1::Alert {
                id: g.s()?,
                kind: g.i()?,
                severity: g.i()?,
                service: g.s()?,
                env_a: g.s()?,
                env_b: g.s()?,
                host: g.s()?,
                key: g.s()?,
                summary: g.s()?,
                first_seen: g.ts()?,
                fired_at: g.ts()?,
            })
        })?,
        min_severity: g.i()?,
        sinks: g.strings()?,
    })
}

/// Renders one answer, picked by the input's first byte: all of the
/// input then goes into that answer.
fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let which = u.int_in_range(0u8..=8)?;
    let mut g = Gen {
        u,
        placed: Vec::new(),
    };
    match which {
        0 => {
            let resp = hosts(&mut g)?;
            let hosts = output::Hosts::from_proto(&resp, SystemTime::now());
            check_all(&hosts, &g.placed(), |o, v| o.hosts(v));
        }
        1 => {
            let resp = status(&mut g)?;
            let all = g.u.arbitrary()?;
            check_all(
                &output::Status::from_proto(&resp, all),
                &g.placed(),
                |o, v| o.status(v),
            );
        }
        2 => {
            let findings = output::Findings {
                schema_version: output::SCHEMA_VERSION,
                min_severity: Some(Severity::Info),
                kind: None,
                service: None,
                fail_on: if g.u.arbitrary()? {
                    Some(Severity::Warning)
                } else {
                    None
                },
                passed: g.u.arbitrary()?,
                findings: g
                    .findings()?
                    .iter()
                    .map(output::Finding::from_proto)
                    .collect(),
            };
            check_all(&findings, &g.placed(), |o, v| o.findings(v));
        }
        3 => {
            let (env_a, env_b) = (g.s()?, g.s()?);
            let svc = if g.u.arbitrary()? { Some(g.s()?) } else { None };
            let resp = v1::GetFindingsResponse {
                findings: g.findings()?,
                environments: vec![],
                evaluated_at: g.ts()?,
                total: g.u.arbitrary()?,
                next_page: String::new(),
                tally: Some(tally(&mut g)?),
            };
            let diff = output::Diff::from_proto(env_a, env_b, svc, &resp);
            check_all(&diff, &g.placed(), |o, v| o.diff(v));
        }
        4 => {
            let resp = service(&mut g)?;
            check_all(&output::Service::from_proto(&resp), &g.placed(), |o, v| {
                o.service(v)
            });
            let instances: Vec<_> = resp
                .instances
                .iter()
                .filter_map(|i| {
                    Some((
                        i.environment.clone(),
                        i.host_id.clone(),
                        i.container.clone()?,
                    ))
                })
                .collect();
            if let [first, .., last] = instances.as_slice() {
                let e = explain(&resp.service, &first.0, &last.0, &instances);
                let mut explained = convert::explanation(&e);
                // The replicas' hostile configuration files, as the query
                // adds them.
                explained.replicas = resp
                    .instances
                    .iter()
                    .map(|i| v1::ReplicaConfigFiles {
                        environment: i.environment.clone(),
                        host_id: i.host_id.clone(),
                        container_name: i
                            .container
                            .as_ref()
                            .map(|c| c.name.clone())
                            .unwrap_or_default(),
                        config_files: i.config_files.clone(),
                    })
                    .collect();
                check_all(&output::Explain::from_proto(&explained), &[], |o, v| {
                    o.explain(v)
                });
            }
        }
        5 => {
            let (svc, to) = (g.s()?, g.s()?);
            let resp = gate(&mut g)?;
            let gate = output::Gate::from_proto(svc, to, &resp);
            check_all(&gate, &g.placed(), |o, v| o.gate(v));
        }
        6 => {
            let resp = history(&mut g)?;
            check_all(&output::History::from_proto(&resp), &g.placed(), |o, v| {
                o.history(v)
            });
        }
        7 => {
            let resp = alerts(&mut g)?;
            check_all(&output::Alerts::from_proto(&resp), &g.placed(), |o, v| {
                o.alerts(v)
            });
        }
        _ => {
            let resp = v1::GetPolicyResponse {
                toml: g.s()?,
                source: g.s()?,
                loaded_at: g.ts()?,
            };
            check_all(
                &output::PolicyShow::from_proto(&resp),
                &g.placed(),
                |o, v| o.policy(v),
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary fills in zeros when the input runs out, so an error here
    // only means a malformed length: nothing was built, nothing to check.
    let _ = run(&mut Unstructured::new(data));
});
