//! Document imaging benchmark (being written).

fn main() {}
