//! The OS helpers the actors share: files, processes, signals and logs.
//!
//! - [`rundir`]: run folders made and removed safely (no symlink followed, owner files).
//! - [`keep`]: which run folders stay once their test is over (`--keep`, `--keep-max`).
//! - [`script`]: `before.sh`/`after.sh` in their own process group, with a timeout.
//! - [`marks`]: the mark of a run's scripts in their environment; finding and stopping what
//!   they left.
//! - [`strays`]: SIPp processes left by a killed run.
//! - [`owner`]: who made a link or a run folder (pid, start time, pid namespace).
//! - [`signal`]: OS signals, caught from the process's first instant, handed to the run as
//!   [`signal::Interrupts`] (tests inject their own).
//! - [`detached`]: blocking work on threads of its own, which the end of the process does not
//!   wait for (pre-run work a suite controls), given up on the second interrupt.
//! - [`last_resort`]: what an actor's `Drop` still has to undo, on a thread the run waits for.
//! - [`logging`]: the general log and each run's `sipplauncher.log`.
//! - [`sockets`]: which process holds a port (named when the DNS port is taken).
//! - [`usage`]: what a run cost: its own CPU, its children's, the host's load.

pub mod detached;
pub mod keep;
pub mod last_resort;
pub mod logging;
pub mod marks;
pub mod owner;
pub mod rundir;
pub mod script;
pub mod signal;
pub mod sockets;
pub mod strays;
pub mod usage;
