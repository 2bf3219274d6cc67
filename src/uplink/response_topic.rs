//! Where a command's response may go. The MQTT 5 response topic is the requester's choice, and
//! any publisher on the broker can send a command (signed or not, valid or not): followed
//! unchecked, it would make the station write into its own `records`/`status` topics or another
//! station's tree. A response goes to the requested topic only when that lies under this
//! station's responses topic or under a configured case-system prefix
//! (`[commands] response_topic_prefixes`); anything else goes to the default responses topic,
//! with a rate-limited warning.

use tracing::warn;

use super::topics::{PREFIX, Topics};
use crate::logging::RateLimitedLog;

/// The longest response topic accepted, bytes.
pub const MAX_TOPIC_BYTES: usize = 256;

/// Why a prefix cannot be configured (for config validation), or None when it is fine.
pub fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        Some("must not be empty")
    } else if prefix.len() > MAX_TOPIC_BYTES {
        Some("must be at most 256 bytes")
    } else if prefix.contains(['+', '#', '\0']) {
        Some("must not contain the MQTT wildcards + and # (or NUL)")
    } else if prefix.starts_with(&format!("{PREFIX}/")) || PREFIX.starts_with(prefix) {
        Some("must not lie in countersign/v1/ (the stations' own topics)")
    } else {
        None
    }
}

/// The rule for one station.
#[derive(Debug, Clone)]
pub struct ResponseTopics {
    default: String,
    prefixes: Vec<String>,
    warnings: RateLimitedLog,
}

impl ResponseTopics {
    pub fn new(topics: &Topics, prefixes: &[String]) -> ResponseTopics {
        ResponseTopics {
            default: topics.responses.clone(),
            // A bad prefix is refused at config load; here it is simply never matched.
            prefixes: prefixes
                .iter()
                .filter(|p| prefix_problem(p).is_none())
                .cloned()
                .collect(),
            warnings: RateLimitedLog::default(),
        }
    }

    /// Whether the station may publish a response on `topic`.
    pub fn allows(&self, topic: &str) -> bool {
        if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES || topic.contains(['+', '#', '\0']) {
            return false;
        }
        let under_default = topic == self.default
            || topic
                .strip_prefix(self.default.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        if under_default {
            return true;
        }
        // Never another tree of countersign's, whatever a prefix says.
        !topic.starts_with(&format!("{PREFIX}/"))
            && self.prefixes.iter().any(|p| topic.starts_with(p.as_str()))
    }

    /// The topic to publish a response on: the requested one when allowed, else the default.
    pub fn choose(&mut self, requested: Option<&str>) -> String {
        match requested {
            None => self.default.clone(),
            Some(topic) if self.allows(topic) => topic.to_string(),
            Some(topic) => {
                self.warn_refused(topic.len());
                self.default.clone()
            }
        }
    }

    fn warn_refused(&mut self, len: usize) {
        let Some(held_back) = self.warnings.allow() else {
            return;
        };
        // The topic itself is the sender's text: its length only.
        warn!(
            topic_bytes = len,
            held_back,
            default = %self.default,
            "a command asked for a response topic outside this station's responses and the \
             configured prefixes; answering on the default responses topic"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefixes: &[&str]) -> ResponseTopics {
        let prefixes: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        ResponseTopics::new(&Topics::for_station("w1"), &prefixes)
    }

    #[test]
    fn only_our_responses_and_configured_prefixes_are_followed() {
        let mut r = rule(&["casesys/replies/"]);
        let default = "countersign/v1/w1/responses";
        for ok in [
            default,
            "countersign/v1/w1/responses/case-7",
            "casesys/replies/w1/42",
        ] {
            assert_eq!(r.choose(Some(ok)), ok);
        }
        let long = format!("casesys/replies/{}", "x".repeat(300));
        for bad in [
            "countersign/v1/w1/records",
            "countersign/v1/w1/acks",
            "countersign/v1/w1/status",
            "countersign/v1/w1/commands",
            "countersign/v1/w1/events",
            "countersign/v1/w1/blobs/b1",
            "countersign/v1/w1/responsesX",
            "countersign/v1/w2/responses",
            "countersign/v1/w2/records",
            "casesys/replies/+",
            "casesys/replies/#",
            "casesys/other",
            "",
            long.as_str(),
        ] {
            assert_eq!(r.choose(Some(bad)), default, "{bad:?}");
        }
        assert_eq!(r.choose(None), default);
        // Without configured prefixes only the station's own responses tree.
        assert_eq!(rule(&[]).choose(Some("casesys/replies/1")), default);
    }

    #[test]
    fn prefixes_in_the_stations_tree_or_with_wildcards_are_config_errors() {
        for bad in [
            "",
            "countersign/v1/",
            "countersign/v1/w2/",
            "countersign",
            "a/+/",
            "a/#",
        ] {
            assert!(prefix_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(prefix_problem("casesys/replies/"), None);
        // A bad prefix that got past validation is never matched.
        let mut r = rule(&["countersign/v1/"]);
        assert_eq!(
            r.choose(Some("countersign/v1/w2/records")),
            "countersign/v1/w1/responses"
        );
    }
}
