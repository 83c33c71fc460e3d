//! Partitioned runs: task `I` of `N` takes a share of the units (input files) of about `1/N` of
//! the input bytes;
//! a `--prepare` invocation prepares one two-pass stage at a time for the tasks (see
//! [`Mode`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One share of a partitioned run, written `I/N` (0-based `I`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// This task's number, from 0.
    pub index: usize,
    /// How many tasks share the run.
    pub count: usize,
}

/// Most tasks that can share a run (`--task I/N`).
pub const MAX_TASKS: usize = 1 << 16;

impl Task {
    /// Which of the plan's units, given their input sizes in plan order, are this task's. Every
    /// unit, largest first (equal sizes in plan order), goes to the task with the fewest bytes
    /// so far (on a tie, the lowest-numbered): tasks get similar shares of the input whatever
    /// the file sizes, and every task of the run computes the same shares from the same plan.
    pub fn owned(&self, sizes: &[u64]) -> Vec<bool> {
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        order.sort_by_key(|&i| (Reverse(sizes[i]), i));
        // (bytes so far, task), lightest first; only tasks that can receive a unit take part.
        let mut tasks: BinaryHeap<Reverse<(u64, usize)>> = (0..self.count.min(sizes.len()))
            .map(|t| Reverse((0, t)))
            .collect();
        let mut owned = vec![false; sizes.len()];
        for unit in order {
            let Some(Reverse((load, lightest))) = tasks.pop() else {
                break;
            };
            tasks.push(Reverse((load + sizes[unit], lightest)));
            owned[unit] = lightest == self.index;
        }
        owned
    }
}

impl FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("expected I/N with 0 <= I < N (e.g. 0/4), got `{s}`");
        let (index, count) = s.split_once('/').ok_or_else(usage)?;
        let (index, count) = (
            index.trim().parse().map_err(|_| usage())?,
            count.trim().parse().map_err(|_| usage())?,
        );
        if index >= count {
            return Err(usage());
        }
        if count > MAX_TASKS {
            return Err(format!("`{s}`: at most {MAX_TASKS} tasks share a run"));
        }
        Ok(Task { index, count })
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which share of a run's work one invocation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every unit through every stage, then the manifest.
    Whole,
    /// One task's units, through the stages before the first two-pass stage and on through
    /// every two-pass stage whose preparation is recorded for the documents now reaching it.
    Task(Task),
    /// Every unit, up to the first two-pass stage whose preparation is not recorded: that stage
    /// observes every document, prepares and records it; nothing runs after it.
    Prepare,
}

/// What a finished `--prepare` invocation reports.
#[derive(Debug)]
pub struct PrepareSummary {
    /// The two-pass stage prepared now; `None` when every one was prepared already.
    pub prepared: Option<String>,
    /// The next two-pass stage after it, which a later `--prepare` prepares.
    pub next: Option<String>,
    /// Whether the config has a two-pass stage at all.
    pub any_two_pass: bool,
    /// Units in the run.
    pub units: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// What a finished task reports.
#[derive(Debug)]
pub struct TaskSummary {
    /// The task.
    pub task: Task,
    /// Units this task owns.
    pub units: usize,
    /// Of those, units an earlier invocation had finished.
    pub resumed: usize,
    /// Documents ingested from its units.
    pub documents: u64,
    /// Bytes of its input.
    pub input_bytes: u64,
    /// Of those, bytes of the resumed units (not read again).
    pub resumed_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Stages the task ran: those before the first two-pass stage without a recorded
    /// preparation.
    pub stages: usize,
    /// Stages in the config.
    pub total_stages: usize,
    /// The two-pass stage the task stopped before, if it did not run every stage.
    pub stopped_before: Option<String>,
    /// Units of the task whose first pass of that stage is summarized for `--prepare`.
    pub summarized: usize,
    /// The ids of the task's units.
    pub unit_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Task;

    #[test]
    fn tasks_parse_and_share_the_units_between_them_by_size() {
        let tasks: Vec<Task> = ["0/3", "1/3", "2/3"].map(|t| t.parse().unwrap()).to_vec();
        let sizes = [44, 6, 35, 25, 13, 12, 11, 8, 7, 5];
        let owned: Vec<Vec<bool>> = tasks.iter().map(|t| t.owned(&sizes)).collect();
        for unit in 0..sizes.len() {
            assert_eq!(owned.iter().filter(|o| o[unit]).count(), 1, "unit {unit}");
        }
        // Round robin would give 44 + 25 + 11 + 5 = 85 to task 0 and 6 + 13 + 8 = 27 to task 1.
        let loads: Vec<u64> = owned
            .iter()
            .map(|o| (0..sizes.len()).filter(|&u| o[u]).map(|u| sizes[u]).sum())
            .collect();
        assert_eq!(loads, [57, 54, 55]);
        assert_eq!(tasks[0].owned(&[]), Vec::<bool>::new());
        assert_eq!(
            tasks[2].owned(&[1, 1]),
            [false, false],
            "more tasks than units"
        );
        assert_eq!(tasks[1].to_string(), "1/3");
        for bad in [
            "3/3",
            "1",
            "a/2",
            "0/0",
            "-1/2",
            "0/65537",
            "0/18446744073709551615",
        ] {
            assert!(bad.parse::<Task>().is_err(), "{bad}");
        }
        assert_eq!("65535/65536".parse::<Task>().map(|t| t.count), Ok(65536));
    }

    proptest! {
        /// Each unit goes to the task with the fewest bytes so far (the lowest-numbered on a
        /// tie), largest units first: what a scan of every task's load gives.
        #[test]
        fn shares_are_those_of_the_lightest_task_rule(
            sizes in proptest::collection::vec(0u64..100, 0..40),
            count in 1usize..12,
        ) {
            let mut order: Vec<usize> = (0..sizes.len()).collect();
            order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
            let mut load = vec![0u64; count];
            let mut want = vec![0; sizes.len()];
            for unit in order {
                let lightest = (0..count).min_by_key(|&t| (load[t], t)).unwrap();
                load[lightest] += sizes[unit];
                want[unit] = lightest;
            }
            for index in 0..count {
                let owned = Task { index, count }.owned(&sizes);
                let expected: Vec<bool> = want.iter().map(|&t| t == index).collect();
                prop_assert_eq!(owned, expected, "task {}", index);
            }
        }
    }
}
