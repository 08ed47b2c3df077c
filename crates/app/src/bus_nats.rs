//! The event bus across nodes: NATS JetStream behind the same [`EventBus`] trait.
//!
//! Every node publishes the events it committed to `switchboard.events.<tenant>` in the
//! stream `SWITCHBOARD_EVENTS`, and reads the whole subject space back through an ordered
//! consumer, so an agent connected to node A sees a message that arrived at node B. Local
//! events are delivered through NATS too (one path, one order).
//!
//! NATS only carries notifications: the database stays the source of truth. JetStream
//! acknowledges before it syncs to disk by default, so nothing is acknowledged to a provider
//! or a user on the strength of a publish; a page that misses a notification (a NATS outage, a
//! lagging subscriber) still gets the event, because the websocket reads every gap in the
//! tenant's sequence back from storage. The ordered consumer resumes from the last stream
//! sequence it saw after a reconnect, so brief disconnects lose nothing either.
//!
//! [`WebchatNatsRelay`] carries web chat messages to the customer pages connected to other
//! nodes over plain NATS subjects `switchboard.webchat.<tenant>.<conversation>`: the node
//! that sends an agent's reply is whichever claimed it, not the one holding the customer's
//! socket. A page that misses a relayed message sees it in its history when it reconnects.
//! [`TypingNatsRelay`] carries typing notices the same way on `switchboard.typing.<tenant>.
//! <conversation>` (a customer's to the desks, an agent's to the web chat pages, and both to
//! the other nodes' throttles); a lost one is simply not shown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use switchboard_core::Event;
use tokio::sync::{broadcast, mpsc};

use crate::agent_desk::{DeskLive, TypingNotice, TypingRelay};
use crate::bus::EventBus;
use crate::webchat::{WebchatHub, WebchatRelay};

/// Name of the JetStream stream holding events.
pub const STREAM: &str = "SWITCHBOARD_EVENTS";
/// Subject prefix; the tenant id follows.
pub const SUBJECT_PREFIX: &str = "switchboard.events";

/// Subject prefix of relayed web chat messages; tenant and conversation ids follow.
pub const WEBCHAT_PREFIX: &str = "switchboard.webchat";

/// Subject prefix of relayed typing notices; tenant and conversation ids follow.
pub const TYPING_PREFIX: &str = "switchboard.typing";

/// The NATS JetStream bus.
pub struct NatsBus {
    tx: broadcast::Sender<Arc<Event>>,
    outgoing: mpsc::UnboundedSender<Event>,
    client: async_nats::Client,
}

impl NatsBus {
    /// Connects, creates the stream if needed and starts the publisher and the consumer.
    pub async fn connect(url: &str) -> anyhow::Result<NatsBus> {
        let client = async_nats::connect(url).await.with_context(|| {
            format!("connecting to NATS at {url} (is nats-server running with -js?)")
        })?;
        let js = jetstream::new(client.clone());
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_string(),
                subjects: vec![format!("{SUBJECT_PREFIX}.>")],
                // Notifications are only useful for a short while: pages older than this
                // catch up from the database anyway.
                max_age: Duration::from_secs(3600),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .context("creating the JetStream stream SWITCHBOARD_EVENTS")?;
        let consumer = stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                filter_subject: format!("{SUBJECT_PREFIX}.>"),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .context("creating the JetStream consumer")?;
        let mut messages = consumer.messages().await.context("subscribing to events")?;

        let (tx, _) = broadcast::channel(8192);
        let to_pages = tx.clone();
        tokio::spawn(async move {
            while let Some(msg) = messages.next().await {
                match msg {
                    Ok(m) => match serde_json::from_slice::<Event>(&m.payload) {
                        Ok(e) => {
                            let _ = to_pages.send(Arc::new(e));
                        }
                        Err(e) => tracing::warn!(error = %e, "undecodable event on NATS; ignored"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "NATS event stream error; the consumer resumes")
                    }
                }
            }
            tracing::warn!("NATS event consumer ended");
        });

        // One publisher task keeps events in the order they were committed on this node.
        let (outgoing, mut rx) = mpsc::unbounded_channel::<Event>();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let subject = format!("{SUBJECT_PREFIX}.{}", e.tenant_id);
                let payload = match serde_json::to_vec(&e) {
                    Ok(p) => p,
                    Err(err) => {
                        tracing::error!(error = %err, "event not encodable");
                        continue;
                    }
                };
                match js.publish(subject, payload.into()).await {
                    Ok(ack) => {
                        if let Err(err) = ack.await {
                            tracing::warn!(error = %err, seq = e.seq, "event publish not acknowledged; pages will catch up from storage");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, seq = e.seq, "event publish failed; pages will catch up from storage")
                    }
                }
            }
        });
        Ok(NatsBus {
            tx,
            outgoing,
            client,
        })
    }

    /// The NATS connection (shared with the web chat relay).
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }
}

/// What one relayed item carries: the node it came from and the item.
#[derive(serde::Serialize, serde::Deserialize)]
struct Relayed<T> {
    /// The node that delivered it to its own pages already.
    origin: String,
    #[serde(flatten)]
    item: T,
}

/// A best-effort relay between nodes over plain NATS (no JetStream, nothing stored): items
/// handed to the returned sender are published on `subject(item)`; items other nodes
/// published under `prefix` go to `receive`. `what` names the items in logs. The queue holds
/// at most `QUEUE` items: beyond that (NATS unreachable for long) new ones are dropped.
async fn start_relay<T>(
    client: async_nats::Client,
    node: String,
    prefix: &'static str,
    what: &'static str,
    subject: fn(&T) -> String,
    receive: impl Fn(T) + Send + 'static,
) -> anyhow::Result<mpsc::Sender<T>>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    const QUEUE: usize = 4096;
    let mut incoming = client
        .subscribe(format!("{prefix}.>"))
        .await
        .with_context(|| format!("subscribing to relayed {what} on NATS"))?;
    let me = node.clone();
    tokio::spawn(async move {
        while let Some(msg) = incoming.next().await {
            match serde_json::from_slice::<Relayed<T>>(&msg.payload) {
                // Our own pages got it before it was published.
                Ok(r) if r.origin == me => {}
                Ok(r) => receive(r.item),
                Err(e) => tracing::warn!(error = %e, "undecodable relayed {what}; ignored"),
            }
        }
        tracing::warn!("NATS relay subscription of {what} ended");
    });
    let (outgoing, mut rx) = mpsc::channel::<T>(QUEUE);
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            let subject = subject(&item);
            let relayed = Relayed {
                origin: node.clone(),
                item,
            };
            let payload = match serde_json::to_vec(&relayed) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "relayed {what} not encodable");
                    continue;
                }
            };
            if let Err(e) = client.publish(subject, payload.into()).await {
                tracing::warn!(error = %e, "relaying {what} failed; the other nodes miss it");
            }
        }
    });
    Ok(outgoing)
}

/// A web chat message in the relay (an object, so it can sit beside `origin`).
#[derive(serde::Serialize, serde::Deserialize)]
struct RelayedMessage {
    message: switchboard_core::Message,
}

/// Relays web chat messages between nodes over NATS (see the module docs).
pub struct WebchatNatsRelay {
    outgoing: mpsc::Sender<RelayedMessage>,
}

impl WebchatNatsRelay {
    /// Subscribes to the messages of the other nodes (delivering them to `hub`'s pages) and
    /// starts the publisher of this node's; `node` tells this node's own messages apart.
    pub async fn start(
        client: async_nats::Client,
        hub: WebchatHub,
        node: String,
    ) -> anyhow::Result<WebchatNatsRelay> {
        let outgoing = start_relay(
            client,
            node,
            WEBCHAT_PREFIX,
            "web chat messages",
            |r: &RelayedMessage| {
                format!(
                    "{WEBCHAT_PREFIX}.{}.{}",
                    r.message.tenant_id, r.message.conversation_id
                )
            },
            move |r: RelayedMessage| {
                hub.deliver(
                    r.message.conversation_id,
                    &switchboard_channels::webchat::ServerFrame::Message {
                        message: switchboard_channels::webchat::ChatMessage::from(&r.message),
                    },
                );
            },
        )
        .await?;
        Ok(WebchatNatsRelay { outgoing })
    }
}

/// Relays typing notices between nodes over NATS (see the module docs).
pub struct TypingNatsRelay {
    outgoing: mpsc::Sender<TypingNotice>,
}

impl TypingNatsRelay {
    /// Subscribes to the typing notices of the other nodes (shown on `desk`'s sockets and
    /// `hub`'s pages) and starts the publisher of this node's.
    pub async fn start(
        client: async_nats::Client,
        desk: Arc<DeskLive>,
        hub: WebchatHub,
        node: String,
    ) -> anyhow::Result<TypingNatsRelay> {
        let outgoing = start_relay(
            client,
            node,
            TYPING_PREFIX,
            "typing notices",
            |n: &TypingNotice| format!("{TYPING_PREFIX}.{}.{}", n.tenant_id, n.conversation_id),
            move |n: TypingNotice| desk.receive_relayed(&hub, n),
        )
        .await?;
        Ok(TypingNatsRelay { outgoing })
    }
}

impl TypingRelay for TypingNatsRelay {
    fn publish(&self, notice: &TypingNotice) {
        // Full queue: NATS is away; typing is not worth waiting for.
        let _ = self.outgoing.try_send(notice.clone());
    }
}

impl WebchatRelay for WebchatNatsRelay {
    fn publish(&self, message: &switchboard_core::Message) {
        // Full queue: NATS is away; the page sees the message in its history on reconnect.
        let _ = self.outgoing.try_send(RelayedMessage {
            message: message.clone(),
        });
    }
}

impl EventBus for NatsBus {
    fn publish(&self, events: &[Event]) {
        for e in events {
            let _ = self.outgoing.send(e.clone());
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_core::{ConversationId, TenantId};

    use super::*;
    use crate::agent_desk::Typist;

    /// What nodes exchange is a wire format: a node of the previous release must still read
    /// a web chat message (`{origin, message}`), and typing notices are flat objects.
    #[test]
    fn relayed_items_are_flat_objects_beside_their_origin() {
        let tenant: TenantId = "0192f3c4-5b6a-7c8d-9e0f-000000000001".parse().unwrap();
        let conv: ConversationId = "0192f3c4-5b6a-7c8d-9e0f-000000000002".parse().unwrap();
        let cases = [
            (
                Typist::Customer,
                json!({"origin": "node-a", "tenant_id": tenant, "conversation_id": conv,
                       "who": "customer"}),
            ),
            (
                Typist::Agent {
                    name: "Ann".into(),
                    webchat: true,
                },
                json!({"origin": "node-a", "tenant_id": tenant, "conversation_id": conv,
                       "who": "agent", "name": "Ann", "webchat": true}),
            ),
        ];
        for (typist, wire) in cases {
            let notice = TypingNotice {
                tenant_id: tenant,
                conversation_id: conv,
                typist,
            };
            let relayed = Relayed {
                origin: "node-a".to_string(),
                item: notice.clone(),
            };
            assert_eq!(serde_json::to_value(&relayed).unwrap(), wire);
            let back: Relayed<TypingNotice> = serde_json::from_value(wire).unwrap();
            assert_eq!((back.origin.as_str(), back.item), ("node-a", notice));
        }
        let v = serde_json::to_value(Relayed {
            origin: "node-a".to_string(),
            item: json!({"message": {"id": "m"}}),
        })
        .unwrap();
        assert_eq!(v, json!({"origin": "node-a", "message": {"id": "m"}}));
    }
}
