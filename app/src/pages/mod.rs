//! One component per route.

pub mod sessions;
