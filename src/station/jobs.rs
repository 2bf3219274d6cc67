//! Device work that runs beside the station loop: a capture request (a camera still, a feeder
//! batch of a hundred pages) and a travel-document read take seconds to minutes, and the loop
//! must keep committing the pages they produce, answering `status`, timing sessions out and
//! stopping on SIGTERM meanwhile. A job is started by the desk, runs on its own task, and comes
//! back to the loop as a [`JobDone`]; the command's single response goes out then.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::commands::Response;
use crate::devices::{Capture, CaptureHandle, CaptureRequest};
use crate::uplink::side::Outbound;

/// Where a command's one response goes.
#[derive(Debug)]
pub(super) enum Reply {
    /// To the case system, on the response topic it named (checked by the uplink).
    Mqtt(Box<MqttReply>),
    /// To a client of the local control socket.
    Local(oneshot::Sender<Response>),
}

#[derive(Debug)]
pub(super) struct MqttReply {
    pub topic: Option<String>,
    pub correlation: Option<Bytes>,
}

impl Reply {
    pub(super) fn send(self, response: Response, outbound: &mpsc::UnboundedSender<Outbound>) {
        match self {
            Reply::Mqtt(to) => {
                let _ = outbound.send(Outbound {
                    topic: to.topic,
                    payload: response.to_bytes(),
                    correlation: to.correlation,
                    expiry_secs: 60,
                });
            }
            Reply::Local(reply) => {
                let _ = reply.send(response);
            }
        }
    }
}

/// A job that ended, back in the station loop.
#[derive(Debug)]
pub(super) struct JobDone {
    /// The command's id.
    pub id: String,
    pub reply: Reply,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub(super) enum Outcome {
    /// A capture source's answer: pages delivered (each already sent as its own capture), or
    /// why not; `None` when the source stopped without answering.
    Capture {
        source: String,
        answer: Option<Result<u32, String>>,
    },
    /// A travel document read on a PC/SC reader, to be put into the session by the loop.
    Document {
        reader: String,
        read: Result<Box<Capture>, String>,
    },
}

/// Why a capture source did not take a request.
#[derive(Debug)]
pub(super) enum NotTaken {
    /// It already holds as many requests as it queues.
    Busy,
    /// Its supervisor has ended.
    Stopped,
}

/// Hands a capture request to a source without waiting; the answer comes back as a [`JobDone`].
pub(super) fn start_capture(
    handle: &CaptureHandle,
    source: String,
    label: String,
    mode: Option<String>,
    pending: Pending,
) -> Result<(), (Pending, NotTaken)> {
    let (reply, answer) = oneshot::channel();
    match handle.try_send(CaptureRequest { label, mode, reply }) {
        Ok(()) => {
            tokio::spawn(async move {
                let answer = answer.await.ok();
                pending.done(Outcome::Capture { source, answer });
            });
            Ok(())
        }
        Err(mpsc::error::TrySendError::Full(_)) => Err((pending, NotTaken::Busy)),
        Err(mpsc::error::TrySendError::Closed(_)) => Err((pending, NotTaken::Stopped)),
    }
}

/// Runs a blocking document read on the blocking pool; the outcome comes back as a [`JobDone`].
pub(super) fn start_read(
    reader: String,
    read: impl FnOnce() -> Result<Box<Capture>, String> + Send + 'static,
    pending: Pending,
) {
    tokio::spawn(async move {
        let read = tokio::task::spawn_blocking(read)
            .await
            .unwrap_or_else(|e| Err(format!("the read ended abnormally: {e}")));
        pending.done(Outcome::Document { reader, read });
    });
}

/// A command waiting for its job: its id, where its answer goes, and the loop's inbox.
pub(super) struct Pending {
    pub id: String,
    pub reply: Reply,
    pub jobs: mpsc::UnboundedSender<JobDone>,
}

impl Pending {
    fn done(self, outcome: Outcome) {
        let Pending { id, reply, jobs } = self;
        // The loop is gone only when the daemon has stopped; nobody is left to answer then.
        let _ = jobs.send(JobDone { id, reply, outcome });
    }
}
