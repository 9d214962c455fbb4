//! A seeded, realistic workload of one tenant: tickets, leads (with their
//! design approvals) and contracts (with theirs) arriving over a period,
//! each living its lifecycle with business times (`at`) spread over hours
//! and days, including everything the reactions will issue (SLA breaches,
//! escalations, surveys, approval outcomes, expiries).
//!
//! Commands are decided by the domain (`Aggregate::decide` on the folded
//! state), so every event is one the real system could record; commands a
//! timer would find nothing to do for (an SLA met, a level already
//! decided) are refused by the domain and dropped, as they would be.
//!
//! Used by `chronicle-bench reports` and by the reports' acceptance test
//! (`tests/it/reports_check.rs` includes this file), so it depends only on
//! crates both have.

use std::collections::HashMap;

use chronicle_domain::approval::{Approval, ApprovalCommand, Decision, Subject, SubjectKind};
use chronicle_domain::contract::{
    Contact as ContractContact, Contract, ContractCommand, Counterparty, DraftContract, Grantee,
    Party, PartyKind, Terms,
};
use chronicle_domain::event::{encode, DomainEvent};
use chronicle_domain::lead::{
    BandwidthMbps, Contact as LeadContact, Lead, LeadCommand, NewDefect, Outcome, TestResult,
};
use chronicle_domain::policy::{Approver, LevelSpec, SlaStage};
use chronicle_domain::ticket::{AssignedBy, Contact, EscalatedBy, Ticket, TicketCommand};
use chronicle_domain::value::{
    Currency, Email, LeadScore, LongText, Money, Priority, ShortText, SurveyScore,
};
use chronicle_domain::Aggregate;
use chronicle_store::{
    ExpectedVersion, Metadata, NewEvent, StreamId, StreamRef, TenantId, TypeName,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Entities arrive from `start` for `days` days; steps after the end
    /// are dropped (those entities are still open).
    pub start: DateTime<Utc>,
    pub days: i64,
    /// Generate entities until their commands number at least this many
    /// (each command records at least one event).
    pub commands: usize,
}

/// One command at its business time.
#[derive(Debug, Clone)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub stream: Uuid,
    pub command: Command,
}

#[derive(Debug, Clone)]
pub enum Command {
    Ticket(TicketCommand),
    Lead(LeadCommand),
    Approval(ApprovalCommand),
    Contract(ContractCommand),
}

impl Command {
    fn stream_type(&self) -> &'static str {
        match self {
            Self::Ticket(_) => Ticket::STREAM_TYPE,
            Self::Lead(_) => Lead::STREAM_TYPE,
            Self::Approval(_) => Approval::STREAM_TYPE,
            Self::Contract(_) => Contract::STREAM_TYPE,
        }
    }

    /// Commands of timers, which the domain may find nothing to do for.
    fn is_a_timers(&self) -> bool {
        matches!(
            self,
            Self::Ticket(TicketCommand::RecordSlaBreach { .. })
                | Self::Approval(ApprovalCommand::Escalate { .. })
        )
    }
}

/// The SLA targets of the workload's tickets, seconds from the opening:
/// (assign, first response, resolve) per priority.
pub fn sla_targets(priority: Priority) -> [i64; 3] {
    match priority {
        Priority::P1 => [15 * 60, 60 * 60, 8 * 3600],
        Priority::P2 => [3600, 4 * 3600, 24 * 3600],
        Priority::P3 => [4 * 3600, 8 * 3600, 72 * 3600],
        Priority::P4 => [8 * 3600, 24 * 3600, 120 * 3600],
    }
}

const CATEGORIES: [&str; 5] = ["connectivity", "billing", "hardware", "software", "account"];
const PRODUCTS: [&str; 6] = [
    "fibre-1000",
    "fibre-500",
    "smarthub-3",
    "mesh-pro",
    "voip-basic",
    "tv-box",
];

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s.to_owned()).expect("valid text")
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s.to_owned()).expect("valid text")
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

/// The people of the tenant.
struct People {
    experts: Vec<Uuid>,
    sales: Vec<Uuid>,
    managers: Vec<Uuid>,
    approvers: Vec<Uuid>,
}

struct Gen {
    rng: StdRng,
    people: People,
    steps: Vec<Step>,
}

impl Gen {
    fn id(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid()
    }

    fn push(&mut self, at: DateTime<Utc>, stream: Uuid, command: Command) {
        self.steps.push(Step {
            at,
            stream,
            command,
        });
    }

    /// A positive duration around `mean` seconds (exponential), at least 1 s.
    fn wait(&mut self, mean: f64) -> Duration {
        let u: f64 = self.rng.gen_range(1e-9..1.0);
        secs(((-u.ln()) * mean).round().max(1.0) as i64)
    }

    fn pick(&mut self, from: &[Uuid]) -> Uuid {
        *from.choose(&mut self.rng).expect("people")
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    // -----------------------------------------------------------------
    // Tickets
    // -----------------------------------------------------------------

    fn ticket(&mut self, t0: DateTime<Utc>) {
        use TicketCommand as C;
        let id = self.id();
        let customer = self.id();
        let priority = *[
            Priority::P1,
            Priority::P2,
            Priority::P2,
            Priority::P3,
            Priority::P3,
            Priority::P3,
            Priority::P4,
            Priority::P4,
        ]
        .choose(&mut self.rng)
        .expect("priorities");
        let category = *CATEGORIES.choose(&mut self.rng).expect("categories");
        let product = *PRODUCTS.choose(&mut self.rng).expect("products");
        let push = |g: &mut Self, at, c| g.push(at, id, Command::Ticket(c));
        push(
            self,
            t0,
            C::Open {
                actor: customer,
                customer_id: customer,
                contact: Contact {
                    name: short("Dana Whitfield"),
                    email: Email::parse("email", "dana@example.com").expect("valid"),
                },
                product: short(product),
                category: short(category),
                priority,
                required_skill: short("networking"),
                title: short("The service drops every evening"),
                description: long("Since the last update the connection drops around 7pm."),
                at: t0,
            },
        );
        let targets = sla_targets(priority);
        let mut t = t0;
        let mut expert = self.pick(&self.people.experts.clone());
        let mut rejected = vec![];
        let manager = self.pick(&self.people.managers.clone());
        let mut completed = [None::<DateTime<Utc>>; 3];

        // Assignment, with up to two rejections.
        t += self.wait(targets[0] as f64 * 0.7);
        let by = if self.chance(0.7) {
            AssignedBy::Matching
        } else {
            AssignedBy::Manager {
                manager_id: manager,
            }
        };
        push(
            self,
            t,
            C::AssignExpert {
                expert_id: expert,
                by,
                at: t,
            },
        );
        completed[0] = Some(t);
        let mut accepted = false;
        for _ in 0..2 {
            if !self.chance(0.15) {
                break;
            }
            if self.chance(0.3) {
                t += self.wait(600.0);
                push(
                    self,
                    t,
                    C::Accept {
                        actor: expert,
                        at: t,
                    },
                );
                completed[1].get_or_insert(t);
            }
            t += self.wait(900.0);
            push(
                self,
                t,
                C::Reject {
                    actor: expert,
                    reason: long("Outside my region."),
                    at: t,
                },
            );
            rejected.push(expert);
            loop {
                expert = self.pick(&self.people.experts.clone());
                if !rejected.contains(&expert) {
                    break;
                }
            }
            t += self.wait(1800.0);
            push(
                self,
                t,
                C::AssignExpert {
                    expert_id: expert,
                    by: AssignedBy::Matching,
                    at: t,
                },
            );
        }
        // First response: a comment or the acceptance.
        if self.chance(0.2) {
            t += self.wait(targets[1] as f64 * 0.3);
            let comment_id = self.id();
            push(
                self,
                t,
                C::Comment {
                    actor: expert,
                    comment_id,
                    body: long("Could you send the hub's event log?"),
                    at: t,
                },
            );
            completed[1].get_or_insert(t);
        }
        if !accepted {
            t += self.wait(targets[1] as f64 * 0.4);
            push(
                self,
                t,
                C::Accept {
                    actor: expert,
                    at: t,
                },
            );
            completed[1].get_or_insert(t);
            accepted = true;
        }
        let _ = accepted;
        t += self.wait(600.0);
        push(
            self,
            t,
            C::StartWork {
                actor: expert,
                at: t,
            },
        );
        if self.chance(0.1) {
            t += self.wait(3600.0);
            let other = *[Priority::P1, Priority::P2, Priority::P3, Priority::P4]
                .iter()
                .filter(|p| **p != priority)
                .collect::<Vec<_>>()
                .choose(&mut self.rng)
                .expect("priorities");
            push(
                self,
                t,
                C::ChangePriority {
                    actor: manager,
                    priority: *other,
                    at: t,
                },
            );
        }
        if self.chance(0.1) {
            t += self.wait(3600.0);
            let by = if self.chance(0.5) {
                EscalatedBy::System
            } else {
                EscalatedBy::User { user_id: manager }
            };
            push(
                self,
                t,
                C::Escalate {
                    by,
                    reason: short("taking too long"),
                    at: t,
                },
            );
        }
        for _ in 0..self.rng.gen_range(0..3) {
            t += self.wait(3600.0);
            let comment_id = self.id();
            push(
                self,
                t,
                C::Comment {
                    actor: customer,
                    comment_id,
                    body: long("Any news?"),
                    at: t,
                },
            );
        }
        t = t0.max(t) + self.wait(targets[2] as f64 * 0.6);
        push(
            self,
            t,
            C::Resolve {
                actor: expert,
                resolution: long("Rolled back the firmware."),
                at: t,
            },
        );
        completed[2] = Some(t);
        if self.chance(0.08) {
            t += self.wait(12.0 * 3600.0);
            push(
                self,
                t,
                C::Reopen {
                    actor: customer,
                    reason: long("It came back."),
                    at: t,
                },
            );
            t += self.wait(8.0 * 3600.0);
            push(
                self,
                t,
                C::Resolve {
                    actor: expert,
                    resolution: long("Replaced the hub."),
                    at: t,
                },
            );
            completed[2] = Some(t);
        }
        // The SLA timers: a breach at each late stage's due time (plus the
        // timer's delay); the domain refuses those that were in time.
        for (i, stage) in [SlaStage::Assign, SlaStage::FirstResponse, SlaStage::Resolve]
            .into_iter()
            .enumerate()
        {
            let due = t0 + secs(targets[i]);
            let late = completed[i].is_none_or(|c| c > due);
            if late || self.chance(0.02) {
                let at = due + secs(self.rng.gen_range(1..300));
                push(self, at, C::RecordSlaBreach { stage, due, at });
            }
        }
        let survey = self.id();
        if self.chance(0.7) {
            t += secs(60);
            push(
                self,
                t,
                C::SendSurvey {
                    survey_id: survey,
                    at: t,
                },
            );
            if self.chance(0.6) {
                let answered = t + self.wait(6.0 * 3600.0);
                let score = *[1, 2, 3, 4, 4, 5, 5, 5]
                    .choose(&mut self.rng)
                    .expect("scores");
                push(
                    self,
                    answered,
                    C::AnswerSurvey {
                        actor: customer,
                        survey_id: survey,
                        score: SurveyScore::parse("score", score).expect("1-5"),
                        comment: None,
                        at: answered,
                    },
                );
            }
        }
        if self.chance(0.85) {
            t += self.wait(24.0 * 3600.0);
            push(
                self,
                t,
                C::Close {
                    actor: customer,
                    at: t,
                },
            );
        }
    }

    // -----------------------------------------------------------------
    // Approvals
    // -----------------------------------------------------------------

    /// An approval of `subject` requested at `t`, ending as `outcome`
    /// (approve, reject, request changes, or cancel); returns when it
    /// ended.
    fn approval(
        &mut self,
        id: Uuid,
        subject: Subject,
        requested_by: Uuid,
        t: DateTime<Utc>,
        outcome: Decision,
        cancel: bool,
    ) -> DateTime<Utc> {
        use ApprovalCommand as C;
        let levels: Vec<LevelSpec> = (0..self.rng.gen_range(1..=3))
            .map(|_| {
                let mut approvers = self.people.approvers.clone();
                approvers.shuffle(&mut self.rng);
                LevelSpec {
                    approvers: approvers[..3].iter().map(|a| Approver::User(*a)).collect(),
                    required: self.rng.gen_range(1..=2),
                    due_secs: self
                        .rng
                        .gen_bool(0.7)
                        .then(|| self.rng.gen_range(1..=3) * 86_400),
                }
            })
            .collect();
        let push = |g: &mut Self, at, c| g.push(at, id, Command::Approval(c));
        push(
            self,
            t,
            C::Request {
                subject,
                value: None,
                levels: levels.clone(),
                requested_by,
                at: t,
            },
        );
        let last = levels.len() - 1;
        let stop_level = self.rng.gen_range(0..=last);
        let mut t = t;
        for (index, level) in levels.iter().enumerate() {
            let opened = t;
            t += self.wait(86_400.0);
            if let Some(due) = level.due_secs {
                let due_at = opened + secs(due as i64);
                if due_at < t {
                    let at = due_at + secs(self.rng.gen_range(1..600));
                    push(
                        self,
                        at.min(t),
                        C::Escalate {
                            level: index as u16,
                            at: at.min(t),
                        },
                    );
                }
            }
            let approvers: Vec<Uuid> = level
                .approvers
                .iter()
                .filter_map(|a| match a {
                    Approver::User(u) => Some(*u),
                    Approver::Role(_) => None,
                })
                .collect();
            if index == stop_level && (cancel || outcome != Decision::Approve) {
                if cancel {
                    return t;
                }
                if level.required > 1 && self.chance(0.5) {
                    push(
                        self,
                        t,
                        C::Decide {
                            decision: Decision::Approve,
                            comment: None,
                            actor: approvers[0],
                            actor_roles: vec!["approver".into()],
                            at: t,
                        },
                    );
                    t += self.wait(3600.0);
                }
                push(
                    self,
                    t,
                    C::Decide {
                        decision: outcome,
                        comment: Some(long("Not like this.")),
                        actor: approvers[1],
                        actor_roles: vec!["approver".into()],
                        at: t,
                    },
                );
                return t;
            }
            for approver in approvers.iter().take(usize::from(level.required)) {
                push(
                    self,
                    t,
                    C::Decide {
                        decision: Decision::Approve,
                        comment: None,
                        actor: *approver,
                        actor_roles: vec!["approver".into()],
                        at: t,
                    },
                );
                t += secs(self.rng.gen_range(1..600));
            }
        }
        t
    }

    // -----------------------------------------------------------------
    // Leads
    // -----------------------------------------------------------------

    fn lead(&mut self, t0: DateTime<Utc>) {
        use LeadCommand as C;
        let id = self.id();
        let push = |g: &mut Self, at, c| g.push(at, id, Command::Lead(c));
        let currency = *["EUR", "EUR", "EUR", "USD", "GBP"]
            .choose(&mut self.rng)
            .expect("currencies");
        let seller = self.pick(&self.people.sales.clone());
        let amount = self.rng.gen_range(10..5_000) * 100_000;
        push(
            self,
            t0,
            C::Capture {
                company: short("Initech GmbH"),
                contact: LeadContact {
                    name: short("Peter Gibbons"),
                    email: Email::parse("email", "peter@initech.example").expect("valid"),
                    phone: None,
                },
                site_address: short("Hauptstrasse 1, Berlin"),
                service: short("Dedicated Internet Access"),
                bandwidth_mbps: BandwidthMbps::parse("bandwidth", 1000).expect("valid"),
                estimated_value: Money::new(
                    "value",
                    amount,
                    Currency::parse("currency", currency).expect("valid"),
                )
                .expect("valid"),
                source: short("web form"),
                actor: seller,
                at: t0,
            },
        );
        let mut t = t0;
        let close = |g: &mut Self, t: DateTime<Utc>, outcome: Outcome| {
            push(
                g,
                t,
                C::Close {
                    outcome,
                    reason: None,
                    actor: seller,
                    at: t,
                },
            )
        };
        let drop_out = |g: &mut Self| -> Option<Outcome> {
            if g.chance(0.07) {
                Some(if g.chance(0.7) {
                    Outcome::Lost
                } else {
                    Outcome::Cancelled
                })
            } else {
                None
            }
        };
        if self.chance(0.85) {
            t += self.wait(3600.0);
            let owner = self.pick(&self.people.sales.clone());
            push(
                self,
                t,
                C::AssignOwner {
                    owner,
                    actor: seller,
                    at: t,
                },
            );
        }
        t += self.wait(86_400.0);
        let score = LeadScore::parse("score", self.rng.gen_range(0..=100)).expect("valid");
        push(
            self,
            t,
            C::Qualify {
                score,
                actor: seller,
                at: t,
            },
        );
        if self.chance(0.1) {
            t += self.wait(86_400.0);
            push(
                self,
                t,
                C::Qualify {
                    score: LeadScore::parse("score", 80).expect("valid"),
                    actor: seller,
                    at: t,
                },
            );
        }
        if let Some(outcome) = drop_out(self) {
            let at = t + self.wait(86_400.0);
            return close(self, at, outcome);
        }
        t += self.wait(2.0 * 86_400.0);
        let feasible = self.chance(0.88);
        push(
            self,
            t,
            C::CheckServiceability {
                feasible,
                notes: None,
                actor: seller,
                at: t,
            },
        );
        if !feasible {
            let at = t + self.wait(86_400.0);
            return close(self, at, Outcome::Lost);
        }
        if self.chance(0.05) {
            let owner = self.pick(&self.people.sales.clone());
            push(
                self,
                t + secs(60),
                C::AssignOwner {
                    owner,
                    actor: seller,
                    at: t + secs(60),
                },
            );
        }
        let mut approved = false;
        for round in 0..3 {
            t += self.wait(3.0 * 86_400.0);
            // Design versions start at 1, one per submission.
            let version = round + 1;
            push(
                self,
                t,
                C::SubmitDesign {
                    summary: short("Dual uplink"),
                    specification: long("Two diverse fibre paths into the site."),
                    documents: vec![],
                    actor: seller,
                    at: t,
                },
            );
            if self.chance(0.3) {
                t += self.wait(7200.0);
                push(
                    self,
                    t,
                    C::CommentOnDesign {
                        design_version: version,
                        body: long("Check the second path."),
                        actor: seller,
                        at: t,
                    },
                );
            }
            t += self.wait(86_400.0);
            let approval = self.id();
            push(
                self,
                t,
                C::RequestDesignApproval {
                    approval_id: approval,
                    actor: seller,
                    at: t,
                },
            );
            let cancel = self.chance(0.04);
            let outcome = if self.chance(0.7) || round == 2 {
                Decision::Approve
            } else if self.chance(0.7) {
                Decision::Reject
            } else {
                Decision::RequestChanges
            };
            let subject = Subject {
                kind: SubjectKind::LeadDesign,
                id,
            };
            let ended = self.approval(approval, subject, seller, t + secs(1), outcome, cancel);
            t = ended + secs(1);
            if cancel {
                // The lead closes while its design awaits approval; the
                // process manager cancels the approval.
                let outcome = Outcome::Cancelled;
                close(self, t, outcome);
                self.push(
                    t + secs(1),
                    approval,
                    Command::Approval(ApprovalCommand::Cancel {
                        reason: Some(short("lead closed")),
                        actor: seller,
                        at: t + secs(1),
                    }),
                );
                return;
            }
            if outcome == Decision::Approve {
                push(
                    self,
                    t,
                    C::ApproveDesign {
                        approval_id: approval,
                        at: t,
                    },
                );
                approved = true;
                break;
            }
            push(
                self,
                t,
                C::RejectDesign {
                    approval_id: approval,
                    reason: Some(long("Too expensive.")),
                    at: t,
                },
            );
        }
        if !approved {
            let at = t + self.wait(86_400.0);
            return close(self, at, Outcome::Lost);
        }
        let tasks: Vec<Uuid> = (0..self.rng.gen_range(1..=3)).map(|_| self.id()).collect();
        for task in &tasks {
            t += self.wait(3600.0);
            push(
                self,
                t,
                C::AddImplementationTask {
                    task_id: *task,
                    title: short("Install the router"),
                    actor: seller,
                    at: t,
                },
            );
            let assignee = self.pick(&self.people.experts.clone());
            t += self.wait(3600.0);
            push(
                self,
                t,
                C::AssignImplementationTask {
                    task_id: *task,
                    assignee,
                    actor: seller,
                    at: t,
                },
            );
        }
        for task in &tasks {
            t += self.wait(2.0 * 86_400.0);
            push(
                self,
                t,
                C::CompleteImplementationTask {
                    task_id: *task,
                    actor: seller,
                    at: t,
                },
            );
        }
        t += self.wait(86_400.0);
        push(
            self,
            t,
            C::CompleteImplementation {
                actor: seller,
                at: t,
            },
        );
        if let Some(outcome) = drop_out(self) {
            let at = t + self.wait(86_400.0);
            return close(self, at, outcome);
        }
        if self.chance(0.2) {
            let defect = self.id();
            t += self.wait(86_400.0);
            push(
                self,
                t,
                C::RecordActivationTest {
                    name: short("throughput"),
                    result: TestResult::Failed,
                    defects: vec![NewDefect {
                        defect_id: defect,
                        title: short("Packet loss on path B"),
                    }],
                    actor: seller,
                    at: t,
                },
            );
            t += self.wait(86_400.0);
            push(
                self,
                t,
                C::ResolveDefect {
                    defect_id: defect,
                    resolution: None,
                    actor: seller,
                    at: t,
                },
            );
        }
        t += self.wait(86_400.0);
        push(
            self,
            t,
            C::RecordActivationTest {
                name: short("throughput"),
                result: TestResult::Passed,
                defects: vec![],
                actor: seller,
                at: t,
            },
        );
        t += self.wait(3600.0);
        push(
            self,
            t,
            C::PassTesting {
                actor: seller,
                at: t,
            },
        );
        t += self.wait(86_400.0);
        push(
            self,
            t,
            C::HandOverToSupport {
                notes: None,
                actor: seller,
                at: t,
            },
        );
        t += self.wait(5.0 * 86_400.0);
        let outcome = if self.chance(0.9) {
            Outcome::Won
        } else {
            Outcome::Lost
        };
        close(self, t, outcome);
    }

    // -----------------------------------------------------------------
    // Contracts
    // -----------------------------------------------------------------

    fn contract(&mut self, t0: DateTime<Utc>) {
        use ContractCommand as C;
        let id = self.id();
        let push = |g: &mut Self, at, c| g.push(at, id, Command::Contract(c));
        let owner = self.pick(&self.people.sales.clone());
        let currency = Currency::parse(
            "currency",
            ["EUR", "EUR", "USD", "GBP"]
                .choose(&mut self.rng)
                .expect("currencies"),
        )
        .expect("valid");
        let mut value =
            Money::new("value", self.rng.gen_range(50..20_000) * 100_000, currency).expect("valid");
        let start: NaiveDate = t0.date_naive() + Duration::days(self.rng.gen_range(0..20));
        let term = if self.chance(0.3) {
            self.rng.gen_range(20..90)
        } else {
            self.rng.gen_range(90..720)
        };
        let mut end: NaiveDate = start + Duration::days(term);
        push(
            self,
            t0,
            C::Draft(DraftContract {
                title: short("Managed fibre"),
                parties: vec![Party {
                    name: short("Globex Corp"),
                    kind: PartyKind::Organisation,
                    role: short("customer"),
                }],
                counterparty: Counterparty {
                    organisation: short("Globex Corp"),
                    contact: ContractContact {
                        name: short("Hank Scorpio"),
                        email: Email::parse("email", "hank@globex.example").expect("valid"),
                    },
                },
                value,
                start_date: start,
                end_date: end,
                body: long("The supplier provides managed fibre."),
                owner,
                at: t0,
            }),
        );
        let mut t = t0;
        let amend = |g: &mut Self, t: DateTime<Utc>, value: Money, end: NaiveDate| {
            push(
                g,
                t,
                C::Amend {
                    terms: Some(Terms {
                        value,
                        start_date: start,
                        end_date: end,
                    }),
                    body: None,
                    actor: owner,
                    at: t,
                },
            )
        };
        if self.chance(0.3) {
            t += self.wait(86_400.0);
            value = Money::new("value", value.amount_minor + 1_000_000, currency).expect("valid");
            amend(self, t, value, end);
        }
        if self.chance(0.2) {
            t += self.wait(3600.0);
            push(
                self,
                t,
                C::Share {
                    grantee: Grantee::Role("legal".into()),
                    actor: owner,
                    at: t,
                },
            );
        }
        let mut approved = false;
        for round in 0..2 {
            t += self.wait(86_400.0);
            let approval = self.id();
            push(
                self,
                t,
                C::SubmitForApproval {
                    approval_id: approval,
                    actor: owner,
                    at: t,
                },
            );
            let outcome = if round == 1 || self.chance(0.85) {
                Decision::Approve
            } else if self.chance(0.66) {
                Decision::Reject
            } else {
                Decision::RequestChanges
            };
            let subject = Subject {
                kind: SubjectKind::Contract,
                id,
            };
            let ended = self.approval(approval, subject, owner, t + secs(1), outcome, false);
            t = ended + secs(1);
            if outcome == Decision::Approve {
                push(
                    self,
                    t,
                    C::Approve {
                        approval_id: approval,
                        at: t,
                    },
                );
                approved = true;
                break;
            }
            push(
                self,
                t,
                C::Reject {
                    approval_id: approval,
                    reason: long("Terms not acceptable."),
                    at: t,
                },
            );
            if self.chance(0.4) {
                return;
            }
            t += self.wait(86_400.0);
            value = Money::new("value", value.amount_minor.max(200_000) - 100_000, currency)
                .expect("valid");
            amend(self, t, value, end);
        }
        if !approved {
            return;
        }
        t += self.wait(3.0 * 86_400.0);
        push(
            self,
            t,
            C::Sign {
                signatory_name: short("Hank Scorpio"),
                actor: owner,
                at: t,
            },
        );
        let start_at = start.and_hms_opt(9, 0, 0).expect("valid").and_utc();
        t = (t + self.wait(3600.0)).max(start_at);
        push(self, t, C::Activate { at: t });
        let end_at = |end: NaiveDate| end.and_hms_opt(6, 0, 0).expect("valid").and_utc();
        if self.chance(0.1) {
            let span = (end_at(end) - t).num_seconds().max(2);
            t += secs(self.rng.gen_range(1..span));
            push(
                self,
                t,
                C::Terminate {
                    reason: long("Customer left."),
                    actor: owner,
                    at: t,
                },
            );
            return;
        }
        if self.chance(0.4) {
            let renew =
                (end_at(end) - Duration::days(self.rng.gen_range(5..60))).max(t + secs(3600));
            if renew < end_at(end) {
                t = renew;
                let new_end = end + Duration::days(365);
                push(
                    self,
                    t,
                    C::Renew {
                        new_end_date: new_end,
                        actor: owner,
                        at: t,
                    },
                );
                end = new_end;
            }
        }
        t = end_at(end).max(t + secs(60)) + secs(self.rng.gen_range(0..7200));
        push(self, t, C::Expire { at: t });
    }
}

/// The steps of a workload, in business-time order.
pub fn plan(config: &Config) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let people = |rng: &mut StdRng, n: usize| -> Vec<Uuid> {
        (0..n).map(|_| Uuid::from_u128(rng.gen())).collect()
    };
    let people = People {
        experts: people(&mut rng, 30),
        sales: people(&mut rng, 12),
        managers: people(&mut rng, 4),
        approvers: people(&mut rng, 8),
    };
    let mut gen = Gen {
        rng,
        people,
        steps: Vec::new(),
    };
    let span = config.days * 86_400;
    while gen.steps.len() < config.commands {
        // Whole seconds, as the times of every step.
        let t0 = config.start + secs(gen.rng.gen_range(0..span));
        match gen.rng.gen_range(0..26) {
            0..=19 => gen.ticket(t0),
            20..=22 => gen.lead(t0),
            _ => gen.contract(t0),
        }
    }
    let end = config.start + secs(span);
    let mut steps = std::mem::take(&mut gen.steps);
    steps.retain(|s| s.at < end);
    // Stable: a stream's steps at the same time stay in script order.
    steps.sort_by_key(|s| s.at);
    steps
}

/// The steps of a workload of at least `events` events: the events per
/// command are measured on a first plan (in memory) and the plan grown to
/// match. Returns the steps and how many events they record.
pub fn plan_at_least(
    config: &Config,
    tenant: &str,
    events: u64,
) -> Result<(Vec<Step>, u64), String> {
    let mut config = config.clone();
    config.commands = config.commands.max(1);
    loop {
        let steps = plan(&config);
        let mut executor = Executor::new(tenant);
        let mut recorded = 0u64;
        for window in windows(&steps, Duration::days(7)) {
            recorded += executor
                .window(window)?
                .iter()
                .map(|a| a.events.len() as u64)
                .sum::<u64>();
        }
        if recorded >= events {
            return Ok((steps, recorded));
        }
        config.commands =
            (config.commands as f64 * events as f64 / recorded.max(1) as f64 * 1.01) as usize + 1;
    }
}

/// One append: a stream's events of a window, after `expected`.
pub struct Append {
    pub stream: StreamRef,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// A domain state per stream, folded as the steps are decided.
enum State {
    Ticket(Ticket),
    Lead(Lead),
    Approval(Approval),
    Contract(Contract),
}

/// Decides steps against the folded states and gathers their events.
pub struct Executor {
    tenant: TenantId,
    states: HashMap<Uuid, (State, u64)>,
    /// Steps the domain refused (timers with nothing to do).
    pub refused: usize,
}

fn decide<A: Aggregate>(state: &mut A, command: &A::Command) -> Result<Vec<Encoded>, String> {
    let events = state.decide(command).map_err(|e| format!("{e:?}"))?;
    let mut out = Vec::with_capacity(events.len());
    for event in &events {
        *state = std::mem::take(state).evolve(event);
        out.push(encoded(event));
    }
    Ok(out)
}

struct Encoded {
    event_type: &'static str,
    schema_version: u16,
    data: serde_json::Value,
}

fn encoded<E: DomainEvent>(event: &E) -> Encoded {
    let e = encode(event);
    Encoded {
        event_type: e.event_type,
        schema_version: e.schema_version,
        data: e.data,
    }
}

impl Executor {
    pub fn new(tenant: &str) -> Self {
        Self {
            tenant: TenantId::parse(tenant).expect("valid tenant"),
            states: HashMap::new(),
            refused: 0,
        }
    }

    /// Decides one step: its events (none when a timer's command is
    /// refused or changes nothing) and the stream version before them.
    fn step(&mut self, step: &Step) -> Result<(u64, Vec<Encoded>), String> {
        let (state, version) = self.states.entry(step.stream).or_insert_with(|| {
            let state = match step.command {
                Command::Ticket(_) => State::Ticket(Ticket::default()),
                Command::Lead(_) => State::Lead(Lead::default()),
                Command::Approval(_) => State::Approval(Approval::default()),
                Command::Contract(_) => State::Contract(Contract::default()),
            };
            (state, 0)
        });
        let decided = match (state, &step.command) {
            (State::Ticket(s), Command::Ticket(c)) => decide(s, c),
            (State::Lead(s), Command::Lead(c)) => decide(s, c),
            (State::Approval(s), Command::Approval(c)) => decide(s, c),
            (State::Contract(s), Command::Contract(c)) => decide(s, c),
            _ => Err("a stream of another type".into()),
        };
        let before = *version;
        match decided {
            Ok(events) => {
                *version += events.len() as u64;
                Ok((before, events))
            }
            Err(_) if step.command.is_a_timers() => {
                self.refused += 1;
                Ok((before, vec![]))
            }
            Err(e) => Err(format!(
                "{} {} at {}: {e} ({:?})",
                step.command.stream_type(),
                step.stream,
                step.at,
                step.command
            )),
        }
    }

    /// Decides `steps` (in order) and groups their events into one append
    /// per stream, in the order the streams first appear.
    pub fn window(&mut self, steps: &[Step]) -> Result<Vec<Append>, String> {
        let mut appends: Vec<Append> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for step in steps {
            let (before, events) = self.step(step)?;
            if events.is_empty() {
                continue;
            }
            let i = *index.entry(step.stream).or_insert_with(|| {
                appends.push(Append {
                    stream: StreamRef {
                        tenant: self.tenant.clone(),
                        stream_type: TypeName::parse(step.command.stream_type()).expect("valid"),
                        id: StreamId::parse(step.stream.to_string()).expect("valid"),
                    },
                    expected: if before == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(before)
                    },
                    events: Vec::new(),
                });
                appends.len() - 1
            });
            for e in events {
                appends[i].events.push(NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: TypeName::parse(e.event_type).map_err(|e| e.to_string())?,
                    schema_version: e.schema_version,
                    data: e.data,
                    metadata: Metadata {
                        actor: Some("workload".into()),
                        source: Some("workload".into()),
                        ..Metadata::default()
                    },
                    personal: None,
                });
            }
        }
        Ok(appends)
    }
}

/// Splits steps into windows of `length` of business time.
pub fn windows(steps: &[Step], length: Duration) -> Vec<&[Step]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < steps.len() {
        let until = steps[start].at + length;
        let end = start + steps[start..].partition_point(|s| s.at < until);
        out.push(&steps[start..end]);
        start = end;
    }
    out
}
