//! The domain crate's one integration-test binary (see STYLE.md, point 21):
//! one module per concern.

mod schemas;
