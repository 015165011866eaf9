//! containerd's container events, from its own event service.
//!
//! The CRI's `GetContainerEvents` is unimplemented in containerd 1.6 and
//! serves one subscriber (the kubelet) in early 1.7, so the agent subscribes
//! to containerd's event bus instead, for the CRI's namespace (`k8s.io`),
//! and keeps the topics that can change a snapshot. containerd replays
//! nothing: the collection after every subscription reads everything, as
//! for Docker.

use std::path::Path;

use envparity_cri::K8S_NAMESPACE;
use envparity_cri::channel::connect_unix;
use envparity_cri::events_v1::events_client::EventsClient;
use envparity_cri::events_v1::{ContainerRef, Envelope, SubscribeRequest};
use futures_util::{StreamExt, stream};
use prost::Message;

use super::changes::ContainerEvent;
use super::cri_call::{CRI_TIMEOUT, CriError};
use super::{EventStream, RuntimeError};

/// The topics that can change what a snapshot holds.
pub const WATCHED_TOPICS: &[&str] = &[
    "/tasks/start",
    "/tasks/exit",
    "/tasks/delete",
    "/tasks/paused",
    "/tasks/resumed",
    "/containers/create",
    "/containers/update",
    "/containers/delete",
];

/// The topic of a container gone for good.
pub const REMOVED_TOPIC: &str = "/containers/delete";

/// Subscribes to the events in the CRI namespace of the containerd at
/// `socket`, on a connection of its own without the per-call timeout (which
/// would cut the stream). The stream ends when containerd stops, and fails
/// when the subscription does.
pub fn subscribe(socket: &Path) -> EventStream {
    let socket = socket.to_owned();
    let request = SubscribeRequest {
        filters: vec![format!("namespace=={K8S_NAMESPACE}")],
    };
    let failed = {
        let socket = socket.clone();
        move |status: tonic::Status| {
            RuntimeError::from(CriError::Call {
                socket: socket.clone(),
                operation: "Subscribe events".to_owned(),
                status,
            })
        }
    };
    let subscribed = {
        let failed = failed.clone();
        async move {
            let channel = connect_unix(&socket, CRI_TIMEOUT, None)
                .await
                .map_err(|e| RuntimeError::from(CriError::from(e)))?;
            EventsClient::new(channel)
                .subscribe(request)
                .await
                .map_err(failed)
        }
    };
    let events = stream::once(subscribed).flat_map(move |answer| {
        let failed = failed.clone();
        match answer {
            Ok(envelopes) => envelopes
                .into_inner()
                .filter_map(move |item| {
                    let failed = failed.clone();
                    async move {
                        match item {
                            Ok(envelope) => container_event(&envelope).map(Ok),
                            Err(status) => Some(Err(failed(status))),
                        }
                    }
                })
                .boxed(),
            Err(error) => stream::once(async move { Err(error) }).boxed(),
        }
    });
    Box::pin(events)
}

/// The container event an envelope tells of; `None` for a topic that cannot
/// change a snapshot. An event whose payload does not decode names no
/// container, which makes the agent read them all.
pub fn container_event(envelope: &Envelope) -> Option<ContainerEvent> {
    if envelope.namespace != K8S_NAMESPACE || !WATCHED_TOPICS.contains(&envelope.topic.as_str()) {
        return None;
    }
    let id = envelope
        .event
        .as_ref()
        .and_then(|any| ContainerRef::decode(any.value.as_slice()).ok())
        .map(|r| r.container_id);
    Some(ContainerEvent {
        id,
        action: envelope.topic.clone(),
        removed: envelope.topic == REMOVED_TOPIC,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(namespace: &str, topic: &str, id: &str) -> Envelope {
        Envelope {
            timestamp: None,
            namespace: namespace.to_owned(),
            topic: topic.to_owned(),
            event: Some(prost_types::Any {
                type_url: "containerd.events.TaskStart".to_owned(),
                value: ContainerRef {
                    container_id: id.to_owned(),
                }
                .encode_to_vec(),
            }),
        }
    }

    #[test]
    fn task_and_container_events_name_their_container() {
        let start = container_event(&envelope("k8s.io", "/tasks/start", "c1")).unwrap();
        assert_eq!((start.id.as_deref(), start.removed), (Some("c1"), false));
        let gone = container_event(&envelope("k8s.io", "/containers/delete", "c2")).unwrap();
        assert_eq!((gone.id.as_deref(), gone.removed), (Some("c2"), true));
    }

    #[test]
    fn other_namespaces_and_topics_are_not_events() {
        assert_eq!(
            container_event(&envelope("moby", "/tasks/start", "c1")),
            None
        );
        assert_eq!(
            container_event(&envelope("k8s.io", "/images/update", "x")),
            None
        );
        assert_eq!(
            container_event(&envelope("k8s.io", "/tasks/exec-started", "c")),
            None
        );
    }

    #[test]
    fn an_undecodable_payload_names_no_container() {
        let mut e = envelope("k8s.io", "/tasks/exit", "c1");
        e.event.as_mut().unwrap().value = vec![0xff, 0xff];
        assert_eq!(container_event(&e).unwrap().id, None);
    }
}
