//! Tests of the bounds, the per-peer accounting and the idle and age timeouts.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::activity::Busy;
use super::limits::MAX_CONNECTIONS;
use super::*;
use crate::metrics::Metrics;

fn conns(limits: ConnLimits) -> Arc<Conns> {
    Conns::new(limits, Arc::new(Metrics::new()))
}

fn at(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

#[test]
fn limits_follow_the_descriptor_limit_and_keep_room_for_trusted_peers() {
    let small = ConnLimits::for_nofile(1_024);
    assert_eq!(small.max_connections, 896);
    assert!(small.max_anonymous < small.max_connections);
    let big = ConnLimits::for_nofile(1 << 20);
    assert_eq!(big.max_connections, MAX_CONNECTIONS);
}

#[test]
fn anonymous_connections_cannot_take_the_trusted_room() {
    let limits = ConnLimits {
        max_connections: 10,
        max_anonymous: 4,
        max_anonymous_per_peer: 3,
        ..ConnLimits::for_nofile(1_024)
    };
    let c = conns(limits);
    let attacker = |port| at([10, 0, 0, 1], port);
    let mut held = Vec::new();
    for port in 0..3 {
        held.push(c.establish(attacker(port), Class::Anonymous).unwrap());
    }
    assert_eq!(
        c.establish(attacker(9), Class::Anonymous).unwrap_err(),
        Refusal::AnonymousPerPeer
    );
    held.push(c.establish(at([10, 0, 0, 2], 1), Class::Anonymous).unwrap());
    assert_eq!(
        c.establish(at([10, 0, 0, 3], 1), Class::Anonymous)
            .unwrap_err(),
        Refusal::Anonymous
    );
    // Agents still get the other six slots, then nobody does.
    for port in 0..6 {
        held.push(
            c.establish(at([10, 1, 0, 1], port), Class::Trusted)
                .unwrap(),
        );
    }
    assert_eq!(
        c.establish(at([10, 1, 0, 2], 1), Class::Trusted)
            .unwrap_err(),
        Refusal::Connections
    );
    assert_eq!(c.established(), (10, 4));
    // Slots come back when connections close.
    held.clear();
    assert_eq!(c.established(), (0, 0));
    assert!(c.counts().anonymous_by_peer.is_empty());
    c.establish(attacker(1), Class::Anonymous).unwrap();
}

#[test]
fn handshakes_are_bounded_per_peer_and_in_total() {
    let limits = ConnLimits {
        max_handshakes: 3,
        max_handshakes_per_peer: 2,
        ..ConnLimits::for_nofile(1_024)
    };
    let c = conns(limits);
    let a = c.handshake(at([10, 0, 0, 1], 1)).unwrap();
    let _b = c.handshake(at([10, 0, 0, 1], 2)).unwrap();
    assert_eq!(
        c.handshake(at([10, 0, 0, 1], 3)).unwrap_err(),
        Refusal::HandshakesPerPeer
    );
    let _c = c.handshake(at([10, 0, 0, 2], 1)).unwrap();
    assert_eq!(
        c.handshake(at([10, 0, 0, 3], 1)).unwrap_err(),
        Refusal::Handshakes
    );
    drop(a);
    c.handshake(at([10, 0, 0, 3], 1)).unwrap();
}

#[tokio::test]
async fn an_idle_connection_closes_and_a_busy_one_does_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = ConnLimits {
        idle_anonymous: Duration::from_millis(200),
        ..ConnLimits::for_nofile(1_024)
    };
    let c = conns(limits);
    let peer = at([127, 0, 0, 1], 4242);
    let (client, server) = tokio::io::duplex(64);
    let slot = c.establish(peer, Class::Anonymous).unwrap();
    let mut guarded = c.guard(server, slot);
    // A request in flight keeps it open past the idle time...
    let busy = Busy::new(c.activity(peer).unwrap());
    let mut buf = [0u8; 8];
    let mut client = client;
    let read = tokio::time::timeout(Duration::from_millis(500), guarded.read(&mut buf)).await;
    assert!(read.is_err(), "closed while a request was in flight");
    drop(busy);
    // ...and once it ends, the connection closes after the idle time,
    // even though the peer keeps writing (pings are not requests).
    client.write_all(b"ping").await.unwrap();
    let started = Instant::now();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(2), guarded.read(&mut buf)).await {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => break e,
            Err(_) => panic!("an idle connection stayed open"),
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(150));
    drop(guarded);
    assert_eq!(c.established(), (0, 0));
    assert!(c.activity(peer).is_none());
    assert!(
        c.live.lock().unwrap().is_empty(),
        "a closed connection left its entry behind"
    );
}

#[tokio::test]
async fn an_http1_connection_closes_at_its_maximum_age_while_trickling() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = conns(ConnLimits::for_nofile(1_024));
    let (mut client, server) = tokio::io::duplex(64);
    let slot = c.establish(at([127, 0, 0, 1], 1), Class::Trusted).unwrap();
    let mut guarded = Guarded::http1(
        server,
        slot,
        Duration::from_millis(300),
        Duration::from_millis(600),
    );
    let writer = tokio::spawn(async move {
        // One byte every 100 ms: never idle, but never done either.
        for _ in 0..30 {
            if client.write_all(b"G").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 8];
    let err = loop {
        match guarded.read(&mut buf).await {
            Ok(0) => panic!("unexpected end of stream"),
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2));
    writer.abort();
}
