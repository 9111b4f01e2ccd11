//! The observer host lists, one module per environment. Edit these to add or move observers;
//! `cargo xtask check` tells what is wrong before anything is touched.

pub mod production;
pub mod sandbox;
