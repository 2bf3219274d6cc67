//! An embedded MQTT 5 broker (rumqttd) on a free loopback port, for the demo only. Production
//! counters talk to the deployment's broker (Mosquitto, EMQX, ...); the tests use Mosquitto.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

pub struct EmbeddedBroker {
    pub port: u16,
}

/// Starts the broker on its own thread and waits until it accepts connections.
pub fn start() -> anyhow::Result<EmbeddedBroker> {
    // rumqttd cannot report the port it bound, so pick a free one first; retry on the rare race.
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let config: rumqttd::Config =
            toml::from_str(&config_toml(port)).context("embedded broker configuration")?;
        let mut broker = rumqttd::Broker::new(config);
        std::thread::Builder::new()
            .name("demo-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded broker stopped");
                }
            })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(EmbeddedBroker { port });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    bail!("the embedded MQTT broker did not start on a loopback port")
}

fn config_toml(port: u16) -> String {
    format!(
        r#"
id = 0

[router]
id = 0
max_connections = 64
max_outgoing_packet_count = 200
max_segment_size = 10485760
max_segment_count = 10

[v5.1]
name = "demo-v5"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1

[v5.1.connections]
connection_timeout_ms = 60000
max_payload_size = 4194304
max_inflight_count = 100
dynamic_filters = true
"#
    )
}
