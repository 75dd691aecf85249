fn main() -> std::process::ExitCode {
    corelog::cli::run()
}
