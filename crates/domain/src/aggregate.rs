//! The shape every aggregate shares.

use crate::error::ErrorCode;
use crate::event::DomainEvent;

/// An event-sourced aggregate: a state folded from its events, and the
/// decision function that turns a command into new events.
///
/// `Default` is the state of a stream that does not exist yet.
pub trait Aggregate: Default + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The stream type stored in the event envelope (`"ticket"`, `"lead"`).
    const STREAM_TYPE: &'static str;

    type Command: Send + Sync;
    type Event: DomainEvent + Send + Sync;
    type Error: ErrorCode + std::error::Error + Send + Sync + 'static;

    /// Decides what happens when `command` meets the current state. Must not
    /// panic on any input; a refusal is an `Err` with a stable code.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event. Events are facts: `evolve` never refuses.
    fn evolve(self, event: &Self::Event) -> Self;

    /// Folds a sequence of events onto the empty state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::default(), |state, event| state.evolve(event))
    }
}
