//! Where each partition is read from next (its `Cursor`): the start offset
//! asked for, a group's committed offset, a reset after OFFSET_OUT_OF_RANGE
//! (`--offset-reset`), and the leader after NOT_LEADER_OR_FOLLOWER. With
//! `--group`, also the membership around them: heartbeats, rejoining on a
//! rebalance, committing positions that moved, and leaving at the end.

use std::thread;

use super::{Consumer, Cursor, OffsetReset, StartOffset, RETRY_BACKOFF};
use crate::cli::console::{self, PartitionLeader, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::consumer_group::needs_rejoin;
use crate::cli::kafka::ToolError;

impl Consumer {
    /// Heartbeats; on a rebalance commits, rejoins and restarts the cursors.
    pub(super) fn keep_membership(&mut self) -> Result<(), ToolError> {
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        match member.heartbeat_if_due(&mut self.client) {
            Ok(()) => Ok(()),
            Err(error) if needs_rejoin(&error) => {
                // Kafka accepts commits of the current generation while it prepares a rebalance.
                if let Err(error) = self.commit_positions() {
                    eprintln!("corelog consume: offsets not committed before rejoining: {error}");
                }
                let Some(member) = self.member.as_mut() else {
                    return Ok(());
                };
                let assigned = member.rejoin(&mut self.client)?;
                self.start_group_cursors(&assigned)
            }
            Err(error) => Err(error),
        }
    }

    /// Cursors for `assigned` at the committed offsets, else at the start position.
    pub(super) fn start_group_cursors(&mut self, assigned: &[i32]) -> Result<(), ToolError> {
        let Some(member) = self.member.as_ref() else {
            return Ok(());
        };
        eprintln!(
            "joined group {} generation {} with partitions {assigned:?} of topic {}",
            member.group(),
            member.generation(),
            self.topic
        );
        let committed = member.committed(&mut self.client, assigned)?;
        let uncommitted: Vec<i32> = assigned
            .iter()
            .copied()
            .filter(|p| !committed.contains_key(p))
            .collect();
        let mut cursors = self.start_cursors(&uncommitted, self.start)?;
        for (partition, offset) in &committed {
            cursors.push(Cursor {
                partition: *partition,
                leader: self.leader_of(*partition),
                position: *offset,
            });
        }
        cursors.sort_by_key(|cursor| cursor.partition);
        self.committed = committed;
        self.cursors = cursors;
        Ok(())
    }

    pub(super) fn start_cursors(
        &mut self,
        partitions: &[i32],
        start: StartOffset,
    ) -> Result<Vec<Cursor>, ToolError> {
        let positions: Vec<(i32, i64)> = match start {
            StartOffset::At(offset) => partitions.iter().map(|p| (*p, offset)).collect(),
            StartOffset::Earliest => self.list_offsets(partitions, EARLIEST_TIMESTAMP)?,
            StartOffset::Latest => self.list_offsets(partitions, LATEST_TIMESTAMP)?,
        };
        Ok(positions
            .into_iter()
            .map(|(partition, position)| Cursor {
                partition,
                leader: self.leader_of(partition),
                position,
            })
            .collect())
    }

    fn list_offsets(
        &mut self,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<Vec<(i32, i64)>, ToolError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let asked: Vec<PartitionLeader> = self
            .leaders
            .iter()
            .filter(|p| partitions.contains(&p.partition))
            .copied()
            .collect();
        console::list_offsets(&mut self.client, &self.topic, &asked, timestamp)
    }

    fn leader_of(&self, partition: i32) -> i32 {
        self.leaders
            .iter()
            .find(|p| p.partition == partition)
            .map_or(-1, |p| p.leader)
    }

    /// OFFSET_OUT_OF_RANGE: jump to the earliest or latest offset, and say so.
    pub(super) fn reset_position(&mut self, index: usize) -> Result<(), ToolError> {
        let cursor = self.cursors[index];
        let (timestamp, name) = match self.reset {
            OffsetReset::Earliest => (EARLIEST_TIMESTAMP, "earliest"),
            OffsetReset::Latest => (LATEST_TIMESTAMP, "latest"),
        };
        let offsets = self.list_offsets(&[cursor.partition], timestamp)?;
        let Some((_, offset)) = offsets.first() else {
            return Err(ToolError::Protocol(format!(
                "ListOffsets skipped partition {}",
                cursor.partition
            )));
        };
        eprintln!(
            "corelog consume: offset {} of {} partition {} is out of range; resetting to the {name} offset {offset}",
            cursor.position, self.topic, cursor.partition
        );
        self.cursors[index].position = *offset;
        Ok(())
    }

    pub(super) fn refresh_leaders(&mut self) -> Result<(), ToolError> {
        thread::sleep(RETRY_BACKOFF);
        self.leaders = console::topic_partitions(&mut self.client, &self.topic, false)?.partitions;
        for index in 0..self.cursors.len() {
            self.cursors[index].leader = self.leader_of(self.cursors[index].partition);
        }
        Ok(())
    }

    /// Commits positions that moved since the last commit (group members only).
    pub(super) fn commit_positions(&mut self) -> Result<(), ToolError> {
        let Some(member) = self.member.as_ref() else {
            return Ok(());
        };
        let changed: Vec<(i32, i64)> = self
            .cursors
            .iter()
            .filter(|cursor| self.committed.get(&cursor.partition) != Some(&cursor.position))
            .map(|cursor| (cursor.partition, cursor.position))
            .collect();
        match member.commit(&mut self.client, &changed) {
            Ok(()) => {
                self.committed.extend(changed);
                Ok(())
            }
            // The heartbeat will notice the rebalance and rejoin; commit again then.
            Err(error) if needs_rejoin(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Group members commit what they printed and leave the group.
    pub(super) fn finish(&mut self) -> Result<(), ToolError> {
        let committed = self.commit_positions();
        let left = match self.member.take() {
            Some(member) => member.leave(&mut self.client),
            None => Ok(()),
        };
        committed.and(left)
    }
}
