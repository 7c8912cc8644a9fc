//! The service layer: what a front-end (the CLI, later `bgflow mcp` and `bgflow serve`)
//! does with runs, as data in and data out. It never prints.

pub mod guard;
pub mod launch;
pub mod recorder;
pub mod start;
pub mod stop;
