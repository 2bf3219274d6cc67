//! Command ids seen (replay protection for `crate::commands`).

use rusqlite::params;

use super::{Outbox, OutboxError};

impl Outbox {
    /// Inserts a command id; false when it is already there. Ids with `iat` before
    /// `prune_before` are forgotten first (they would be refused as stale).
    pub fn remember_command(
        &self,
        id: &str,
        iat: i64,
        prune_before: i64,
    ) -> Result<bool, OutboxError> {
        self.conn
            .execute(
                "CREATE TABLE IF NOT EXISTS command_ids (id TEXT PRIMARY KEY, iat INTEGER NOT NULL)",
                [],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute("DELETE FROM command_ids WHERE iat < ?1", [prune_before])
            .map_err(|e| self.err(e))?;
        let inserted = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO command_ids (id, iat) VALUES (?1, ?2)",
                params![id, iat],
            )
            .map_err(|e| self.err(e))?;
        Ok(inserted == 1)
    }
}
