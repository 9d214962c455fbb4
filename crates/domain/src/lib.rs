//! Chronicle's domain: every business rule, and nothing else.
//!
//! Each aggregate is a module with its commands, events, state and error
//! enum, and implements [`Aggregate`]: `decide(state, command)` returns the
//! events a command produces (or a typed refusal) and `evolve(state, event)`
//! applies one event. Both are pure: no IO, no async, no clock or random
//! reads. Time and ids arrive inside the commands.
//!
//! Invariants kept here (see `ARCHITECTURE.md`):
//! - this crate depends on no async runtime, database, HTTP or other IO crate;
//! - an invalid value object cannot be constructed ([`value`]);
//! - every refusal has a stable machine code ([`error::ErrorCode`]);
//! - every event type has a stable name and schema version ([`event::DomainEvent`]).

pub mod aggregate;
pub mod approval;
pub mod catalog;
pub mod contract;
pub mod error;
pub mod event;
pub mod knowledge;
pub mod lead;
pub mod notification;
pub mod policy;
pub mod privacy;
pub mod ticket;
pub mod user;
pub mod value;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use aggregate::Aggregate;
pub use error::ErrorCode;
pub use event::DomainEvent;
