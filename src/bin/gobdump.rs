//! Placeholder so this branch builds on its own; the real tool lives on another branch.

fn main() {}
