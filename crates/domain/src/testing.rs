//! Given / when / then over events, for the domain's own tests:
//!
//! ```text
//! given::<Ticket>([opened(), assigned()])
//!     .when(&resolve())
//!     .then([resolved()]);
//! given::<Ticket>([opened()]).when(&resolve()).then_err("ticket.not_assigned");
//! ```

use crate::aggregate::Aggregate;
use crate::error::ErrorCode;

pub struct Given<A: Aggregate> {
    state: A,
}

/// Folds `events` onto the empty state.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    Given {
        state: A::fold(events.iter()),
    }
}

pub struct When<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Given<A> {
    pub fn when(self, command: &A::Command) -> When<A> {
        let result = self.state.decide(command);
        When {
            state: self.state,
            result,
        }
    }

    pub fn state(&self) -> &A {
        &self.state
    }
}

impl<A: Aggregate> When<A>
where
    A::Event: PartialEq,
{
    /// Asserts the produced events and returns the state after them.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                events.iter().fold(self.state, |s, e| s.evolve(e))
            }
            Err(e) => panic!(
                "expected events {expected:?}, got refusal {} ({e})",
                e.code()
            ),
        }
    }

    /// Asserts a refusal with the given stable code.
    #[track_caller]
    pub fn then_err(self, code: &str) {
        match self.result {
            Ok(events) => panic!("expected refusal {code}, got events {events:?}"),
            Err(e) => assert_eq!(e.code(), code, "unexpected refusal: {e}"),
        }
    }
}
