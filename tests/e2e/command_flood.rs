//! A flood on the commands topic (issue 13, defect 5 and the burst rule): 2000 messages that are
//! not the case system's, each naming an allowed response topic, far more than the station's
//! 32-slot command channel holds. The station answers none of them, its journal gets a bounded
//! number of lines for them, and a real signed command sent during the flood is answered.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;
use crate::harness_mqtt::*;

const FLOOD: usize = 2000;

#[test]
fn a_flood_of_foreign_commands_gets_no_answer_and_a_real_one_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let port = broker.port;
    let setup = setup_station(dir.path(), port, &dir.path().join("no-reader"));
    trust_case_system_commands(&setup, "");
    let daemon = start_daemon(&setup);
    wait_until(Duration::from_secs(30), "the station answering", || {
        send_command(port, dir.path(), "ping", json!({}), &["--timeout", "2"])["status"]
            == "accepted"
    });

    // Whatever the station publishes where the flood asks for answers.
    let flood_topic = format!("countersign/v1/{STATION}/responses/flood");
    let mut watcher = Proc::spawn(
        "mosquitto_sub",
        Command::new("mosquitto_sub")
            .args(["-V", "mqttv5", "-p", &port.to_string(), "-q", "1"])
            .args(["-t", &flood_topic, "-W", "40"])
            .stdout(Stdio::piped()),
    );
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let flood = {
        let topic = format!("countersign/v1/{STATION}/commands");
        let flood_topic = flood_topic.clone();
        std::thread::spawn(move || {
            for payload in ["not a command", "{\"id\":\"x\",\"command\":\"ping\"}"] {
                let status = Command::new("mosquitto_pub")
                    .args(["-V", "mqttv5", "-p", &port.to_string(), "-q", "1"])
                    .args(["-t", &topic, "-m", payload])
                    .args(["--repeat", &(FLOOD / 2).to_string()])
                    .args(["-D", "publish", "response-topic", &flood_topic])
                    .status()
                    .unwrap();
                assert!(status.success(), "mosquitto_pub");
            }
        })
    };
    // The case system's own command, in the middle of the flood.
    std::thread::sleep(Duration::from_millis(200));
    let ping = send_command(port, dir.path(), "ping", json!({}), &["--timeout", "20"]);
    assert_eq!(ping["status"], "accepted", "{ping}\n{}", daemon.stderr());
    flood.join().unwrap();
    let flooded_in = started.elapsed();

    // Every foreign message was taken in (counted) or dropped at the full queue (logged).
    let mut counted = 0;
    wait_until(Duration::from_secs(30), "the flood counted", || {
        let status = send_command(port, dir.path(), "status", json!({}), &["--timeout", "5"]);
        let rejected = &status["result"]["rejected_commands"];
        counted = rejected["unsigned"].as_u64().unwrap_or(0);
        let log = daemon.stderr();
        counted as usize == FLOOD || log.contains("command queue was full")
    });
    // Nothing answered on the flood's topic.
    std::thread::sleep(Duration::from_secs(1));
    watcher.sigterm();
    let _ = watcher.wait_exit(Duration::from_secs(5));
    let mut answers = String::new();
    use std::io::Read as _;
    watcher
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut answers)
        .unwrap();
    assert!(
        answers.is_empty(),
        "the station answered the flood: {}",
        answers.lines().take(3).collect::<Vec<_>>().join(" | ")
    );
    // A bounded journal: at most 10 refusal lines a minute, 1 queue-full line a minute.
    let log = daemon.stderr();
    let minutes = flooded_in.as_secs() / 60 + 1;
    let refusals = log.matches("command refused, not answered").count() as u64;
    let full = log.matches("command queue was full").count() as u64;
    assert!(
        refusals <= 10 * minutes && full <= minutes,
        "{refusals} refusal lines and {full} queue-full lines for {FLOOD} messages in {flooded_in:?}"
    );
    eprintln!(
        "flood: {FLOOD} foreign commands in {flooded_in:?}: {counted} refused at the gate, \
         the rest dropped at the full queue; {refusals} + {full} log lines; no answer"
    );
}
