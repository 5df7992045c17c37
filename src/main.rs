fn main() -> std::process::ExitCode {
    match agentry::cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", agentry::cli::describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
