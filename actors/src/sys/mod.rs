//! The OS helpers the actors share: files, processes, signals and logs.
//!
//! - [`rundir`]: run folders made and removed safely (no symlink followed, owner files).
//! - [`script`]: `before.sh`/`after.sh` in their own process group, with a timeout.
//! - [`marks`]: the mark of a run's scripts in their environment; finding and stopping what
//!   they left.
//! - [`strays`]: SIPp processes left by a killed run.
//! - [`owner`]: who made a link or a run folder (pid, start time, pid namespace).
//! - [`signal`]: OS signals turned into messages to the Supervisor.
//! - [`logging`]: the general log and each run's `sipplauncher.log`.

pub mod logging;
pub mod marks;
pub mod owner;
pub mod rundir;
pub mod script;
pub mod signal;
pub mod strays;
