//! Stable machine codes for refusals, so that the API maps errors without
//! matching on strings.

/// Implemented by every domain error enum.
pub trait ErrorCode {
    /// A stable, dotted, lowercase code such as `ticket.not_assigned`.
    /// Codes are part of the public API: never rename one.
    fn code(&self) -> &'static str;
}
