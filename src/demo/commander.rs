//! The demo case system's command side: signs commands with its key and sends them over MQTT 5
//! request/response (response topic + correlation data), one at a time, waiting for the answer.
//! Integrators do the same in their own language: see docs/case-system-integration.md.

use std::time::Duration;

use anyhow::{Context as _, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::commands::{self, Response};
use crate::record::keys::StationKey;
use crate::uplink::topics::PREFIX;

pub struct Commander {
    client: AsyncClient,
    responses: mpsc::UnboundedReceiver<(Vec<u8>, Vec<u8>)>,
    key: StationKey,
    station: String,
    response_topic: String,
    _poller: tokio::task::JoinHandle<()>,
}

impl Commander {
    pub async fn connect(port: u16, station: &str, key: StationKey) -> anyhow::Result<Commander> {
        // Under the station's responses topic: the station answers nowhere else unless
        // `[commands] response_topic_prefixes` says so.
        let response_topic = format!("{PREFIX}/{station}/responses/{}", uuid::Uuid::now_v7());
        let mut options = MqttOptions::new("demo-commander", "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        let (tx, responses) = mpsc::unbounded_channel();
        let topic = response_topic.clone();
        let sub_client = client.clone();
        let poller = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub_client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let correlation = p
                            .properties
                            .as_ref()
                            .and_then(|p| p.correlation_data.clone())
                            .map(|c| c.to_vec())
                            .unwrap_or_default();
                        let _ = tx.send((correlation, p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
            .await
            .context("the demo case system could not subscribe for responses")?;
        Ok(Commander {
            client,
            responses,
            key,
            station: station.to_string(),
            response_topic,
            _poller: poller,
        })
    }

    /// Sends one signed command and returns its accepted result, or fails with the refusal.
    pub async fn send(&mut self, command: &str, args: Value) -> anyhow::Result<Value> {
        self.send_within(command, args, Duration::from_secs(60))
            .await
    }

    /// As [`Commander::send`], giving up after `wait`.
    pub async fn send_within(
        &mut self,
        command: &str,
        args: Value,
        wait: Duration,
    ) -> anyhow::Result<Value> {
        let id = uuid::Uuid::now_v7().to_string();
        let signed = commands::sign(
            &self.key,
            &self.station,
            &id,
            commands::now_secs(),
            command,
            args,
        );
        let properties = PublishProperties {
            response_topic: Some(self.response_topic.clone()),
            correlation_data: Some(id.clone().into_bytes().into()),
            content_type: Some("application/jose".into()),
            ..Default::default()
        };
        self.client
            .publish_with_properties(
                format!("{PREFIX}/{}/commands", self.station),
                QoS::AtLeastOnce,
                false,
                signed.into_bytes(),
                properties,
            )
            .await?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (correlation, payload) = tokio::time::timeout_at(deadline, self.responses.recv())
                .await
                .with_context(|| format!("no response to {command}"))?
                .context("response channel closed")?;
            if correlation != id.as_bytes() {
                continue;
            }
            let response: Response = serde_json::from_slice(&payload)?;
            match response.status {
                commands::ResponseStatus::Accepted => {
                    return Ok(response.result.unwrap_or_default());
                }
                commands::ResponseStatus::Rejected => bail!(
                    "{command} rejected: {} ({})",
                    response.reason.unwrap_or_default(),
                    response.detail.unwrap_or_default()
                ),
            }
        }
    }
}
