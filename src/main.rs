//! Placeholder entry point so this branch builds on its own; the real one lives on another branch.

fn main() {}
