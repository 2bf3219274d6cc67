#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    countersign::cli::main()
}
