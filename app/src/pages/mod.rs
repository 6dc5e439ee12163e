//! One component per route.

pub mod login;
pub mod sessions;
