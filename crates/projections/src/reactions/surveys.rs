//! Surveys (seed 004): a resolved ticket gets a satisfaction survey for its
//! customer, once; the customer answers it through the API
//! (`POST /api/v1/tickets/{id}/survey-answers`).
//!
//! The survey's id derives from the ticket, so a ticket resolved again
//! after a reopen keeps its one survey (the domain sends a survey once).

use async_trait::async_trait;
use chronicle_domain::ticket::{Ticket, TicketCommand};
use chronicle_store::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Cause, Reactor};
use crate::read::entity_id;
use crate::{ApplyError, Projection};

const NAME: &str = "surveys";

/// The survey process manager.
pub struct Surveys {
    reactor: Reactor,
}

impl Surveys {
    pub fn new(reactor: Reactor) -> Self {
        Self { reactor }
    }
}

/// The survey id of a ticket.
pub fn survey_id(ticket: Uuid) -> Uuid {
    Uuid::new_v5(&ticket, b"survey")
}

#[async_trait]
impl Projection for Surveys {
    fn issues_commands(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        _conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        for event in events.iter().filter(|e| e.event_type == "ticket.resolved") {
            let ticket = entity_id(event)?;
            self.reactor
                .issue::<Ticket>(
                    NAME,
                    Cause::event(event),
                    "survey",
                    ticket,
                    TicketCommand::SendSurvey {
                        survey_id: survey_id(ticket),
                        at: self.reactor.clock().now(),
                    },
                )
                .await?;
        }
        Ok(())
    }
}
