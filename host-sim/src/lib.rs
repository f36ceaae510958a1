//! The host simulator: loads the KSN Usage task plugin, plays the management host and the
//! KSN services, and drives scenarios on one device or a fleet.

pub mod bench;
pub mod consumers;
pub mod crash;
pub mod device;
pub mod fleet;
pub mod loader;
pub mod network;
pub mod reference;
pub mod scenario;
pub mod shell;
pub mod storage;
pub mod world;
